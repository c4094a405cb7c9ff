//! bitdrop on a microcontroller: the checks, the training run and the measurements that
//! the firmware images in `src/bin/` and `src/main.rs` run under qemu-system-arm.
//!
//! Everything here is `no_std` without an allocator: buffers are statics or locals, and
//! every result goes out through semihosting.
//!
//! - [`sampler`]: frequency, per-lane balance, determinism and known answers of
//!   `bitdrop::sample::bernoulli`;
//! - [`layers`]: every single-example layer operation against `bitdrop::reference`;
//! - [`train`]: a two-layer MLP with dropout learning 4x4 glyphs on the device;
//! - [`count`]: instruction counts from SysTick under `qemu -icount shift=0`;
//! - [`stack`]: stack high-water marks by painting.

#![no_std]

pub mod count;
pub mod layers;
pub mod report;
pub mod sampler;
pub mod stack;
pub mod train;

pub use report::Report;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

/// The generator of every test: the same one the crate's host tests use, so known
/// answers computed on x86_64 apply here unchanged.
pub type TestRng = Xoshiro256PlusPlus;

/// A generator seeded like the host tests seed theirs.
pub fn rng(seed: u64) -> TestRng {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// A uniform `f32` in `[-1, 1)` (24 random bits: exact in `f32`).
pub fn uniform(rng: &mut TestRng) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u32 << 23) as f32 - 1.0
}

/// Prints one line to the host's standard output through semihosting.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { cortex_m_semihosting::hprintln!($($arg)*) };
}

/// Which core this image is built for, for the log.
pub const CORE: &str = if cfg!(armv6m) {
    "Cortex-M0 (thumbv6m-none-eabi, soft float)"
} else {
    "Cortex-M4F (thumbv7em-none-eabihf)"
};
