#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bitdrop_fuzz::sampler::run(data));
