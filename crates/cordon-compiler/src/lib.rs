//! The policy compiler: a pure function from a policy file, an inventory of
//! containers and the live edits of named sets to the nftables ruleset that
//! enforces them.
//!
//! ```text
//! compile(&PolicyFile, &Inventory, &SetOverrides) -> Compiled { ruleset, assignments, warnings }
//! ```
//!
//! [`evaluate`] answers, from the same inputs, what the ruleset does to one
//! flow a container starts (for `cordon verify`).
//!
//! Nothing here touches the kernel or Docker, so all of it is tested without
//! root. `docs/design.md` explains the ruleset's design. The ruleset's
//! types, renderings and names are the contract in `cordon_ruleset`.

mod compile;
pub mod evaluate;
mod governed;
pub mod words;

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use compile::compile;
use cordon_ruleset::{nft, PolicyKey};

/// The compiler's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// The ruleset to install.
    pub ruleset: nft::Ruleset,
    /// Which policy each container got, in inventory order.
    pub assignments: Vec<Assignment>,
    /// Things the operator should know (unknown policy labels, containers
    /// cordon cannot enforce on), one line each.
    pub warnings: Vec<String>,
}

/// The policy a container got.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Assignment {
    /// Container name.
    pub container: String,
    /// Container id.
    pub id: String,
    /// The policy it got (serialised as shown: the policy's name,
    /// `default`, or `unknown policy NAME`).
    pub policy: PolicyKey,
    /// The addresses enforced for it (on bridges, with a known port).
    pub addresses: Vec<IpAddr>,
    /// Whether cordon can enforce its policy at all (see
    /// [`cordon_inventory::enforcement`]).
    #[serde(default)]
    pub enforcement: cordon_inventory::Enforcement,
    /// For a container sharing another's network namespace
    /// (`--network container:X`): the policy of X, which is what governs
    /// its traffic. `None` otherwise, or when X is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governed_by: Option<String>,
}

/// Live edits of named sets made with `cordon set add|del`, kept across
/// applies: a set's members are `(file ∪ added) − removed`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SetOverrides {
    /// Per set name.
    #[serde(default)]
    pub sets: BTreeMap<String, SetDelta>,
}

/// The live edits of one set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SetDelta {
    /// Added with `cordon set add`.
    #[serde(default)]
    pub added: Vec<IpNet>,
    /// Removed with `cordon set del`.
    #[serde(default)]
    pub removed: Vec<IpNet>,
}

impl SetOverrides {
    /// The members of set `name` whose file definition is `file`.
    pub fn effective(&self, name: &str, file: &[IpNet]) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = file.iter().map(IpNet::trunc).collect();
        if let Some(d) = self.sets.get(name) {
            for a in &d.added {
                if !out.contains(a) {
                    out.push(a.trunc());
                }
            }
            out.retain(|n| !d.removed.contains(n));
        }
        out
    }

    /// Records an addition: it cancels an earlier removal of the same entry.
    pub fn add(&mut self, name: &str, net: IpNet) {
        let d = self.sets.entry(name.to_string()).or_default();
        let net = net.trunc();
        d.removed.retain(|n| *n != net);
        if !d.added.contains(&net) {
            d.added.push(net);
        }
    }

    /// Records a removal: it cancels an earlier addition of the same entry.
    pub fn remove(&mut self, name: &str, net: IpNet) {
        let d = self.sets.entry(name.to_string()).or_default();
        let net = net.trunc();
        d.added.retain(|n| *n != net);
        if !d.removed.contains(&net) {
            d.removed.push(net);
        }
    }
}
