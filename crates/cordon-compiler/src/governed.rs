//! Containers that share another container's network namespace
//! (`--network container:X`) have no interface of their own: every packet
//! they send leaves through X's interfaces with X's addresses, so X's
//! policy governs them, whatever policy selects them.

use cordon_inventory::Unenforced;

use crate::Assignment;

/// Fills [`Assignment::governed_by`] with X's policy for every container
/// sharing X's namespace, and warns when that policy is not the one the
/// container's own selection gives it, or when X is unknown.
pub(crate) fn resolve(assignments: &mut [Assignment], warnings: &mut Vec<String>) {
    let policy_of = |id: &str| {
        assignments
            .iter()
            .find(|a| a.id == id)
            .map(|a| (a.container.clone(), a.policy.clone()))
    };
    let mut found = Vec::new();
    for (i, a) in assignments.iter().enumerate() {
        let Some(Unenforced::SharedNetns { container, id, .. }) = a.enforcement.reason() else {
            continue;
        };
        match id.as_deref().and_then(policy_of) {
            Some((x, p)) => {
                if p != a.policy {
                    warnings.push(format!(
                        "container {}: shares the network namespace of {x}, so policy {p} governs its traffic, not its own policy {}",
                        a.container, a.policy
                    ));
                }
                found.push((i, Some(p.to_string())));
            }
            None => warnings.push(format!(
                "container {}: shares the network namespace of container {container}, which cordon does not know; its policy {} is not enforced",
                a.container, a.policy
            )),
        }
    }
    for (i, p) in found {
        assignments[i].governed_by = p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_inventory::Enforcement;

    fn a(name: &str, id: &str, policy: &str, shares: Option<&str>) -> Assignment {
        Assignment {
            container: name.into(),
            id: id.into(),
            policy: policy.into(),
            addresses: vec![],
            enforcement: match shares {
                None => Enforcement::Enforced,
                Some(x) => Enforcement::Unenforced {
                    reason: Unenforced::SharedNetns {
                        container: x.into(),
                        name: (x != "gone").then(|| x.into()),
                        id: (x != "gone").then(|| format!("id-{x}")),
                    },
                },
            },
            governed_by: None,
        }
    }

    #[test]
    fn the_owner_policy_governs_and_a_difference_is_warned() {
        let mut v = vec![
            a("app", "id-app", "web", None),
            a("side", "id-side", "locked", Some("app")),
            a("same", "id-same", "web", Some("app")),
            a("orphan", "id-orphan", "locked", Some("gone")),
        ];
        let mut w = Vec::new();
        resolve(&mut v, &mut w);
        assert_eq!(v[0].governed_by, None);
        assert_eq!(v[1].governed_by.as_deref(), Some("web"));
        assert_eq!(v[2].governed_by.as_deref(), Some("web"));
        assert_eq!(v[3].governed_by, None);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("side") && w[0].contains("policy web governs"),
            "{w:?}"
        );
        assert!(w[0].contains("not its own policy locked"), "{w:?}");
        assert!(
            w[1].contains("orphan") && w[1].contains("does not know"),
            "{w:?}"
        );
    }
}
