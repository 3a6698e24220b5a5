//! Fuzz target: the answer path: addresses from an upstream message
//! (body in `cordon_dns_fuzz::answer`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cordon_dns_fuzz::answer(data);
});
