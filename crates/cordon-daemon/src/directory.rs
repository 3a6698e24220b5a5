//! Who is who: container addresses and host-side interfaces to container
//! names and policies. The engine rewrites it after every sync; the DNS
//! proxy (which container asked?) and the drop log (which container sent
//! or would have received this packet?) read it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use cordon_compiler::Assignment;
use cordon_inventory::Inventory;
use cordon_ruleset::PolicyKey;

/// A container as the proxy and the logs name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its policy.
    pub key: PolicyKey,
    /// The policy as shown (`default`, `web`, `unknown policy x`).
    pub policy: String,
    /// Its name.
    pub container: String,
    /// Its id (12 hex digits).
    pub id: String,
}

/// The lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// Enforced address → container.
    pub by_addr: HashMap<IpAddr, Client>,
    /// Host-side veth name → container.
    pub by_iface: HashMap<String, Client>,
    /// The Docker networks' subnets (answers of the DNS proxy may carry
    /// them only for rules that name them).
    pub subnets: Vec<ipnet::IpNet>,
}

/// The directory, shared.
pub type Shared = Arc<RwLock<Directory>>;

impl Directory {
    /// Built from the compiler's assignments and the inventory (for the
    /// interfaces).
    pub fn build(assignments: &[Assignment], inventory: &Inventory) -> Directory {
        let mut d = Directory {
            subnets: inventory
                .networks
                .iter()
                .flat_map(|n| n.subnets.iter().copied())
                .collect(),
            ..Directory::default()
        };
        for a in assignments {
            let client = Client {
                key: a.policy.clone(),
                policy: a.policy.to_string(),
                container: a.container.clone(),
                id: a.id.chars().take(12).collect(),
            };
            for x in &a.addresses {
                d.by_addr.insert(*x, client.clone());
            }
            let ifaces = inventory
                .containers
                .iter()
                .filter(|c| c.id == a.id)
                .flat_map(|c| c.endpoints.iter().filter_map(|e| e.host_iface.clone()));
            for i in ifaces {
                d.by_iface.insert(i, client.clone());
            }
        }
        d
    }
}
