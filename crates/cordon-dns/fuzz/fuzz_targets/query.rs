//! Fuzz target: the query path: question, refusal, allowlist match
//! (body in `cordon_dns_fuzz::query`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cordon_dns_fuzz::query(data);
});
