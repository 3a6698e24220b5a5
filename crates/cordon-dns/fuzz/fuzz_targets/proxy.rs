//! Fuzz target: Proxy::handle with a fake context and a loopback upstream replying with fuzzer bytes
//! (body in `cordon_dns_fuzz::proxy`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cordon_dns_fuzz::proxy(data);
});
