//! The daemon benchmark's floor: how long handing the kernel one set
//! element through the `nft` binary takes (a process spawn and one
//! transaction), as any daemon built on `nft` would pay per change.

use std::process::Command;
use std::time::Instant;

/// `cordon-bench nft-add N FAMILY TABLE SET`: runs `nft add element` N
/// times (10.1.x.y, all distinct) into an existing IPv4 set and prints the
/// wall time of each in µs, one a line. Run inside a throw-away namespace.
pub fn command(n: &str, family: &str, table: &str, set: &str) -> Result<(), String> {
    let n: usize = n.parse().map_err(|_| format!("N `{n}` is not a number"))?;
    for k in 0..n {
        let elem = format!("{{ 10.1.{}.{} }}", k / 250, k % 250 + 1);
        let t = Instant::now();
        let st = Command::new("nft")
            .args(["add", "element", family, table, set, &elem])
            .status()
            .map_err(|e| format!("cannot run nft: {e}"))?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        if !st.success() {
            return Err(format!(
                "nft add element {family} {table} {set} {elem}: {st}"
            ));
        }
        println!("{us:.1}");
    }
    Ok(())
}
