//! The logic of bitdrop's fuzz targets, one module per target, each with
//! `pub fn run(data: &[u8])` that panics on a failed check.
//!
//! The cargo-fuzz binaries (`fuzz_targets/*.rs`) are `fuzz_target!(|data| run(data))`;
//! the crate root's `tests/fuzz_corpus.rs` includes this file with `#[path]` and replays
//! the committed corpus and every crash through the same functions on stable Rust. So
//! this code names sibling modules through `super::`, never `crate::`.

pub mod api_never_panics;
pub mod batch;
pub mod batch_api;
pub mod blas;
pub mod common;
pub mod layer_ops;
pub mod sampler;
