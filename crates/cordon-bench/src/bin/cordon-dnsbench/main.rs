//! `cordon-dnsbench`: the DNS proxy benchmark's pieces, run by
//! `scripts/bench-dns` inside the network namespaces it creates.
//!
//! * `cordon-dnsbench proxy POLICY CLIENT...` — cordon's DNS proxy exactly
//!   as the daemon starts it (`cordon_daemon::dns::start`: port 15353, UDP
//!   and TCP, answers opened in `inet cordon`'s timeout sets over netlink
//!   before they are released), with the CLIENT addresses assigned to the
//!   policy `bench`. Prints `ready` once listening; runs until killed.
//! * `cordon-dnsbench proxy-no-opening POLICY CLIENT...` — for comparison
//!   only: the same `cordon_dns::proxy` with the daemon's settings and a
//!   context that opens nothing, UDP on port 15354, to show what opening
//!   the firewall costs.
//! * `cordon-dnsbench load SERVER CONCURRENCY SECS NAMES` — a closed-loop
//!   UDP load: CONCURRENCY queries outstanding, A and AAAA for
//!   `n0.bench.test` … `n{NAMES-1}.bench.test` in turn; prints one JSON
//!   line (answers per second, latency percentiles in µs, losses, answers
//!   that were not NOERROR with an address).
//! * `cordon-dnsbench probe SERVER NAME` — one A query; prints the answer's
//!   response code and number of answer records.

mod load;
mod proxy;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let result = match arg(1) {
        "proxy" => proxy::run(arg(2), &args[3.min(args.len())..], true),
        "proxy-no-opening" => proxy::run(arg(2), &args[3.min(args.len())..], false),
        "load" => load::run(arg(2), arg(3), arg(4), arg(5)),
        "probe" => load::probe(arg(2), arg(3)),
        _ => Err("usage: cordon-dnsbench proxy[-no-opening] POLICY CLIENT... | load SERVER CONCURRENCY SECS NAMES | probe SERVER NAME".into()),
    };
    if let Err(e) = result {
        eprintln!("cordon-dnsbench: {e}");
        std::process::exit(2);
    }
}
