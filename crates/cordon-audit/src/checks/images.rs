//! CIS section 4: container images and build files, from image inspect
//! and image history, and (4.1) each container's user as configured and
//! as its process runs.

use super::{automated, container_object, manual, not_scored, per_container, Check, Meta};
use crate::facts::{Facts, ImageFacts};
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

fn per_image(f: &Facts, check: impl Fn(&ImageFacts) -> Outcome) -> Vec<Outcome> {
    f.images.values().map(check).collect()
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
            |f: &Facts| {
                per_container(f, |_, c| {
                    let user = c.config().user.clone().unwrap_or_default();
                    let root = is_root_user(&user);
                    let conf = if user.is_empty() { "unset (root)".to_string() } else { user.clone() };
                    let out = Outcome::verdict(container_object(c), !root, format!("user {conf}"));
                    match &c.proc {
                        Some(p) => {
                            let inner = p.inner_uid();
                            let eff = format!(
                                "uid {} in the container (host uid {})",
                                inner.map_or("?".into(), |u| u.to_string()),
                                p.uid.map_or("?".into(), |u| u.to_string())
                            );
                            // Only a numeric user can be compared without the image's passwd.
                            let numeric = user.split(':').next().and_then(|u| u.parse::<u64>().ok());
                            let want_root = root || numeric == Some(0);
                            let mismatch = match (inner, numeric) {
                                (Some(i), Some(n)) => i != n,
                                (Some(i), None) => want_root && i != 0,
                                _ => false,
                            };
                            out.compare(conf, eff, mismatch)
                        }
                        None => out,
                    }
                })
            },
        ),
        manual(4, Meta { id: "4.2", title: "Ensure that containers use only trusted base images", source: "a person", remediation: "build from images you trust and pin them by digest" }),
        manual(4, Meta { id: "4.3", title: "Ensure that unnecessary packages are not installed in the container", source: "a person", remediation: "use minimal base images" }),
        manual(4, Meta { id: "4.4", title: "Ensure images are scanned and rebuilt to include security patches", source: "a person / an image scanner", remediation: "scan images and rebuild them regularly" }),
        not_scored(
            4,
            Meta { id: "4.5", title: "Ensure Content trust for Docker is Enabled", source: "DOCKER_CONTENT_TRUST", remediation: "sign and verify images with a maintained tool (e.g. cosign, notation)" },
            "Docker Content Trust (Notary v1) is retired upstream; not scored",
        ),
        automated(
            4,
            Severity::Low,
            Meta {
                id: "4.6",
                title: "Ensure that HEALTHCHECK instructions have been added to container images",
                source: "image inspect Config.Healthcheck",
                remediation: "HEALTHCHECK CMD ... in the Dockerfile",
            },
            |f: &Facts| {
                per_image(f, |i| {
                    let hc = i.inspect.config.as_ref().and_then(|c| c.healthcheck.as_ref()).and_then(|h| h.test.clone());
                    let ok = hc.as_ref().is_some_and(|t| !t.is_empty() && t[0] != "NONE");
                    Outcome::verdict(image_object(i), ok, if ok { "the image has a HEALTHCHECK" } else { "the image has no HEALTHCHECK" })
                })
            },
        ),
        automated(
            4,
            Severity::Low,
            Meta {
                id: "4.7",
                title: "Ensure update instructions are not used alone in Dockerfiles",
                source: "image history CreatedBy",
                remediation: "combine `apt-get update` with the install in one RUN",
            },
            |f: &Facts| {
                per_image(f, |i| {
                    let alone: Vec<String> = history(i)
                        .into_iter()
                        .filter(|l| {
                            let l = l.to_lowercase();
                            ["apt-get update", "apt update", "apk update", "yum update", "dnf update"].iter().any(|u| l.contains(u))
                                && !["install", "upgrade", "add "].iter().any(|w| l.contains(w))
                        })
                        .collect();
                    Outcome::verdict(
                        image_object(i),
                        alone.is_empty(),
                        if alone.is_empty() { "no update instruction alone".to_string() } else { format!("{} RUN line(s) update alone", alone.len()) },
                    )
                })
            },
        ),
        manual(4, Meta { id: "4.8", title: "Ensure setuid and setgid permissions are removed", source: "a person (find / -perm /6000 in the image)", remediation: "remove setuid/setgid bits in the Dockerfile" }),
        automated(
            4,
            Severity::Low,
            Meta {
                id: "4.9",
                title: "Ensure that COPY is used instead of ADD in Dockerfiles",
                source: "image history CreatedBy",
                remediation: "use COPY; fetch remote files with a verified download",
            },
            |f: &Facts| {
                per_image(f, |i| {
                    // The oldest layer is the base image's root filesystem, added by design.
                    let adds = history(i)
                        .into_iter()
                        .skip(1)
                        .filter(|l| l.contains(" ADD ") || l.starts_with("ADD ") || l.contains("#(nop) ADD"))
                        .count();
                    Outcome::verdict(image_object(i), adds == 0, format!("{adds} ADD instruction(s) above the base layer"))
                })
            },
        ),
        automated(
            4,
            Severity::High,
            Meta {
                id: "4.10",
                title: "Ensure secrets are not stored in Dockerfiles",
                source: "image inspect Config.Env; image history CreatedBy",
                remediation: "pass secrets at run time (secrets, mounted files), never in ENV or build lines",
            },
            |f: &Facts| {
                per_image(f, |i| {
                    let mut hits: Vec<String> = i
                        .inspect
                        .config
                        .as_ref()
                        .and_then(|c| c.env.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|e| {
                            let (k, v) = e.split_once('=')?;
                            (secretish(k) && !v.is_empty()).then(|| format!("ENV {k}"))
                        })
                        .collect();
                    hits.extend(history(i).iter().filter(|l| {
                        l.split(|c: char| c.is_whitespace() || c == '&' || c == ';')
                            .any(|w| w.split_once('=').is_some_and(|(k, v)| secretish(k) && !v.is_empty()))
                    }).map(|_| "a build line sets a secret-like variable".to_string()));
                    hits.dedup();
                    // Evidence names the variables, never their values.
                    Outcome::verdict(
                        image_object(i),
                        hits.is_empty(),
                        if hits.is_empty() { "no secret-like variables".to_string() } else { hits.join("; ") },
                    )
                })
            },
        ),
        manual(4, Meta { id: "4.11", title: "Ensure only verified packages are installed", source: "a person", remediation: "verify package signatures in builds" }),
        manual(4, Meta { id: "4.12", title: "Ensure all signed artifacts are validated", source: "a person", remediation: "verify signatures of everything the build fetches" }),
    ]
}

fn secretish(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
}
