//! aarch64: NEON, part of the base architecture.

pub(super) mod neon;
