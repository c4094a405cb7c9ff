//! Puts the memory layout of the target's QEMU machine on the linker's search path as
//! `memory.x` (cortex-m-rt's `link.x` includes it), and tells the code which core it is
//! built for.

use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Cortex-M0 (armv6-m): the micro:bit; everything else: the MPS2 AN386 board.
    let armv6m = target.starts_with("thumbv6m");
    let layout = if armv6m { "memory-microbit.x" } else { "memory.x" };
    fs::copy(layout, out.join("memory.x")).expect("copy the memory layout");
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rerun-if-changed=memory.x");
    println!("cargo::rerun-if-changed=memory-microbit.x");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(armv6m)");
    if armv6m {
        println!("cargo::rustc-cfg=armv6m");
    }
}
