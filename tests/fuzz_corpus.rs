//! Replays the fuzz corpus and every crash ever found (`fuzz/corpus/<target>/` and
//! `fuzz/artifacts/<target>/`) through the fuzz targets' own check logic, on stable
//! Rust and without libFuzzer, so that `cargo test` keeps them passing forever.
//!
//! The targets' logic lives in `fuzz/src/` as plain modules (`run(&[u8])`), included
//! here by path; `arbitrary` is a dev-dependency for them. Under miri the replay is far
//! too slow (thousands of kernel calls per file) and is skipped.
#![cfg(feature = "std")]

#[allow(dead_code, unreachable_pub, clippy::all)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;

/// Runs `run` on every file of the target's corpus and artifacts; the corpus must not
/// be empty. A failing file is named before its panic is passed on.
fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("readable directory entry").path()));
    }
    files.sort();
    let corpus = files
        .iter()
        .filter(|f| f.starts_with(root.join("corpus")))
        .count();
    assert!(corpus > 0, "fuzz/corpus/{target}/ is empty");
    for file in &files {
        let data = std::fs::read(file).expect("readable corpus file");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
            eprintln!("fuzz target {target} failed on {}", file.display());
            resume_unwind(panic);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "too slow under miri")]
fn layer_ops() {
    replay("layer_ops", fuzz::layer_ops::run);
}

#[test]
#[cfg_attr(miri, ignore = "too slow under miri")]
fn blas() {
    replay("blas", fuzz::blas::run);
}

#[test]
#[cfg_attr(miri, ignore = "too slow under miri")]
fn batch() {
    replay("batch", fuzz::batch::run);
}

#[test]
#[cfg_attr(miri, ignore = "too slow under miri")]
fn sampler() {
    replay("sampler", fuzz::sampler::run);
}

#[test]
#[cfg_attr(miri, ignore = "too slow under miri")]
fn api_never_panics() {
    replay("api_never_panics", fuzz::api_never_panics::run);
}
