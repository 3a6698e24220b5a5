//! The part of `cordon status` that lists containers whose own policy
//! cordon cannot enforce (host network, another driver, another
//! container's network namespace), with the reason.

use std::fmt::Write as _;

use cordon_inventory::{escape, Shown, Unenforced};

use super::ContainerStatus;

/// One line of explanation for an unenforced container: the reason, and
/// for a shared namespace which policy governs it instead, with a warning
/// when that is not its own. `None` when it is enforced.
pub fn explain(c: &ContainerStatus) -> Option<String> {
    let reason = c.enforcement.reason()?;
    let mut line = reason.to_string();
    if let Unenforced::SharedNetns { .. } = reason {
        match &c.governed_by {
            Some(p) if *p == c.policy => {
                let _ = write!(line, " (policy {p}, the same as its own)");
            }
            Some(p) => {
                let _ = write!(
                    line,
                    " (policy {p}); WARNING: its own policy {} is not applied",
                    c.policy
                );
            }
            None => {
                let _ = write!(line, "; WARNING: no policy governs its traffic");
            }
        }
    }
    Some(line)
}

/// Appends the `NOT ENFORCED` section to `out` when any container is
/// unenforced; nothing otherwise.
pub fn render(out: &mut String, containers: &[ContainerStatus]) {
    let rows: Vec<(&ContainerStatus, String)> = containers
        .iter()
        .filter_map(|c| Some((c, explain(c)?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nNOT ENFORCED: cordon cannot apply these containers' own policies"
    );
    let _ = writeln!(out, "{:<24} {:<16} REASON", "CONTAINER", "POLICY");
    for (c, why) in rows {
        // Names, policies and reasons come from Docker: escaped, so a
        // label or network name cannot forge a row.
        let _ = writeln!(
            out,
            "{:<24} {:<16} {}",
            Shown(&c.name),
            Shown(&c.policy),
            escape(&why)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_inventory::Enforcement;

    fn status(name: &str, policy: &str, reason: Option<Unenforced>) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            id: "0123456789ab".into(),
            policy: policy.into(),
            addresses: vec![],
            counters: Default::default(),
            judged: Default::default(),
            logged: None,
            last_drop: None,
            enforcement: reason.map_or(Enforcement::Enforced, |reason| Enforcement::Unenforced {
                reason,
            }),
            governed_by: None,
        }
    }

    #[test]
    fn enforced_containers_add_nothing() {
        let mut out = String::new();
        render(&mut out, &[status("web", "web", None)]);
        assert_eq!(out, "");
    }

    #[test]
    fn each_reason_is_listed() {
        let shared = Unenforced::SharedNetns {
            container: "app".into(),
            name: Some("app".into()),
            id: Some("id".into()),
        };
        let mut side = status("side", "locked", Some(shared.clone()));
        side.governed_by = Some("web".into());
        let mut same = status("same", "web", Some(shared));
        same.governed_by = Some("web".into());
        let rows = [
            status("web", "web", None),
            status("hostnet", "locked", Some(Unenforced::HostNetwork)),
            status(
                "mv",
                "locked",
                Some(Unenforced::Driver {
                    network: "lan".into(),
                    driver: "macvlan".into(),
                }),
            ),
            side,
            same,
        ];
        let mut out = String::new();
        render(&mut out, &rows);
        assert!(out.contains("NOT ENFORCED"), "{out}");
        assert!(!out.contains("\nweb "), "{out}");
        let line = |n: &str| {
            out.lines()
                .find(|l| l.starts_with(&format!("{n} ")))
                .unwrap_or_else(|| panic!("no line for {n} in\n{out}"))
                .to_string()
        };
        assert!(line("hostnet").contains("host's network"), "{out}");
        assert!(line("mv").contains("driver macvlan"), "{out}");
        let side = line("side");
        assert!(
            side.contains("shares the network namespace of container app"),
            "{side}"
        );
        assert!(side.contains("(policy web)"), "{side}");
        assert!(
            side.contains("WARNING: its own policy locked is not applied"),
            "{side}"
        );
        let same = line("same");
        assert!(
            same.contains("the same as its own") && !same.contains("WARNING"),
            "{same}"
        );
    }
}
