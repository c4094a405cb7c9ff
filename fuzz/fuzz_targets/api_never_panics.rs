#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bitdrop_fuzz::api_never_panics::run(data));
