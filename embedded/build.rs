//! Puts `memory.x` on the linker's search path (cortex-m-rt's `link.x` includes it) and
//! tells the code which core it is built for (`cfg(armv6m)` on the Cortex-M0).
//!
//! `memory.x` is the MPS2 AN386 map. The micro:bit (Cortex-M0 image) has the same
//! origins and less memory; `.cargo/config.toml` narrows the stack top for it.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rerun-if-changed=memory.x");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(armv6m)");
    if env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv6m")) {
        println!("cargo::rustc-cfg=armv6m");
    }
}
