//! CIS section 4: container images and build files, from image inspect
//! and image history, and (4.1) each container's user as configured and
//! as its process runs.

use super::{automated, by_hand, container_object, not_scored, per_container, Check, Meta};
use crate::facts::{ContainerFacts, Facts, ImageFacts};
use crate::model::{Object, Outcome, Severity};

/// Names of environment variables that usually hold secrets.
const SECRET_WORDS: [&str; 7] = [
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
];

fn image_object(i: &ImageFacts) -> Object {
    Object {
        kind: "image",
        name: i.name(),
        id: i.inspect.id.clone(),
    }
}

/// An automated check of every image in use.
fn image(severity: Severity, m: Meta, judge: fn(&ImageFacts) -> Outcome) -> Check {
    automated(4, severity, m, move |f: &Facts| {
        f.images.values().map(judge).collect()
    })
}

/// True when a user spec (`USER`, `--user`) means root.
pub fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or("");
    name.is_empty() || name == "root" || name == "0"
}

/// History lines (`CreatedBy`), oldest first.
fn history(i: &ImageFacts) -> Vec<String> {
    i.history
        .iter()
        .rev()
        .map(|h| h.created_by.clone())
        .collect()
}

/// Section 4's checks.
pub fn checks() -> Vec<Check> {
    vec![
        automated(
            4,
            Severity::Medium,
            Meta {
                id: "4.1",
                title: "Ensure that a user for the container has been created",
                source: "container inspect Config.User; in effect: /proc/<pid>/status Uid and /proc/<pid>/uid_map",
                remediation: "USER in the Dockerfile, or docker run --user UID:GID",
            },
            |f: &Facts| per_container(f, user),
        ),
        by_hand(
            4,
            "4.2",
            "Ensure that containers use only trusted base images",
            "a person",
            "build from images you trust and pin them by digest",
        ),
        by_hand(
            4,
            "4.3",
            "Ensure that unnecessary packages are not installed in the container",
            "a person",
            "use minimal base images",
        ),
        by_hand(
            4,
            "4.4",
            "Ensure images are scanned and rebuilt to include security patches",
            "a person / an image scanner",
            "scan images and rebuild them regularly",
        ),
        not_scored(
            4,
            Meta {
                id: "4.5",
                title: "Ensure Content trust for Docker is Enabled",
                source: "DOCKER_CONTENT_TRUST",
                remediation: "sign and verify images with a maintained tool (e.g. cosign, notation)",
            },
            "Docker Content Trust (Notary v1) is retired upstream; not scored",
        ),
        image(
            Severity::Low,
            Meta {
                id: "4.6",
                title: "Ensure that HEALTHCHECK instructions have been added to container images",
                source: "image inspect Config.Healthcheck",
                remediation: "HEALTHCHECK CMD ... in the Dockerfile",
            },
            healthcheck,
        ),
        image(
            Severity::Low,
            Meta {
                id: "4.7",
                title: "Ensure update instructions are not used alone in Dockerfiles",
                source: "image history CreatedBy",
                remediation: "combine `apt-get update` with the install in one RUN",
            },
            update_alone,
        ),
        by_hand(
            4,
            "4.8",
            "Ensure setuid and setgid permissions are removed",
            "a person (find / -perm /6000 in the image)",
            "remove setuid/setgid bits in the Dockerfile",
        ),
        image(
            Severity::Low,
            Meta {
                id: "4.9",
                title: "Ensure that COPY is used instead of ADD in Dockerfiles",
                source: "image history CreatedBy",
                remediation: "use COPY; fetch remote files with a verified download",
            },
            add_instructions,
        ),
        image(
            Severity::High,
            Meta {
                id: "4.10",
                title: "Ensure secrets are not stored in Dockerfiles",
                source: "image inspect Config.Env; image history CreatedBy",
                remediation: "pass secrets at run time (secrets, mounted files), never in ENV or build lines",
            },
            secrets,
        ),
        by_hand(
            4,
            "4.11",
            "Ensure only verified packages are installed",
            "a person",
            "verify package signatures in builds",
        ),
        by_hand(
            4,
            "4.12",
            "Ensure all signed artifacts are validated",
            "a person",
            "verify signatures of everything the build fetches",
        ),
    ]
}

fn user(_: &Facts, c: &ContainerFacts) -> Outcome {
    let user = c.config().user.clone().unwrap_or_default();
    let root = is_root_user(&user);
    let conf = if user.is_empty() {
        "unset (root)".to_string()
    } else {
        user.clone()
    };
    let out = Outcome::verdict(container_object(c), !root, format!("user {conf}"));
    let Some(p) = &c.proc else {
        return out;
    };
    let inner = p.inner_uid();
    let shown = |u: Option<u64>| u.map_or("?".into(), |u| u.to_string());
    let eff = format!(
        "uid {} in the container (host uid {})",
        shown(inner),
        shown(p.uid.map(u64::from))
    );
    // Only a numeric user can be compared without the image's passwd.
    let numeric = user.split(':').next().and_then(|u| u.parse::<u64>().ok());
    let mismatch = match (inner, numeric) {
        (Some(i), Some(n)) => i != n,
        (Some(i), None) => root && i != 0,
        _ => false,
    };
    out.compare(conf, eff, mismatch)
}

fn healthcheck(i: &ImageFacts) -> Outcome {
    let test = i
        .inspect
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.clone());
    let ok = test.is_some_and(|t| !t.is_empty() && t[0] != "NONE");
    let ev = if ok {
        "the image has a HEALTHCHECK"
    } else {
        "the image has no HEALTHCHECK"
    };
    Outcome::verdict(image_object(i), ok, ev)
}

fn update_alone(i: &ImageFacts) -> Outcome {
    const UPDATES: [&str; 5] = [
        "apt-get update",
        "apt update",
        "apk update",
        "yum update",
        "dnf update",
    ];
    let alone = history(i)
        .into_iter()
        .filter(|l| {
            let l = l.to_lowercase();
            UPDATES.iter().any(|u| l.contains(u))
                && !["install", "upgrade", "add "].iter().any(|w| l.contains(w))
        })
        .count();
    let ev = format!("{alone} RUN line(s) update without installing");
    Outcome::verdict(image_object(i), alone == 0, ev)
}

fn add_instructions(i: &ImageFacts) -> Outcome {
    // The oldest layer is the base image's root filesystem, added by design.
    let adds = history(i)
        .into_iter()
        .skip(1)
        .filter(|l| l.contains(" ADD ") || l.starts_with("ADD ") || l.contains("#(nop) ADD"))
        .count();
    let ev = format!("{adds} ADD instruction(s) above the base layer");
    Outcome::verdict(image_object(i), adds == 0, ev)
}

fn secrets(i: &ImageFacts) -> Outcome {
    let env = i.inspect.config.as_ref().and_then(|c| c.env.clone());
    let mut hits: Vec<String> = env
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            let (k, v) = e.split_once('=')?;
            (secretish(k) && !v.is_empty()).then(|| format!("ENV {k}"))
        })
        .collect();
    let sets_secret = |l: &String| {
        l.split(|c: char| c.is_whitespace() || c == '&' || c == ';')
            .filter_map(|w| w.split_once('='))
            .any(|(k, v)| secretish(k) && !v.is_empty())
    };
    let lines = history(i).iter().filter(|l| sets_secret(l)).count();
    if lines > 0 {
        hits.push(format!("{lines} build line(s) set a secret-like variable"));
    }
    // Evidence names the variables, never their values.
    let ev = if hits.is_empty() {
        "no secret-like variables".to_string()
    } else {
        hits.join("; ")
    };
    Outcome::verdict(image_object(i), hits.is_empty(), ev)
}

fn secretish(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
}
