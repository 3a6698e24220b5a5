//! Fuzz target: the first-flight parser (body in
//! `cordon_l7_fuzz::first_flight`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cordon_l7_fuzz::first_flight(data);
});
