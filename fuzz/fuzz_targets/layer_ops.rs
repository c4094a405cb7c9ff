#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bitdrop_fuzz::layer_ops::run(data));
