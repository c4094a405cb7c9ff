//! Dropout kernels that skip the work of dropped units.
//!
//! When dropout drops input unit `i` of a dense layer `z = W ã + b`, column `i` of
//! `dW = dz ãᵀ` is zero and row `i` of the back-propagated `Wᵀ dz` is multiplied by zero:
//! those weights are not updated in that step. Frameworks multiply by a zero mask and do
//! all the work anyway. bitdrop keeps the mask as packed bits ([`Mask`], one bit per
//! unit) and every kernel reads the bits to skip the dropped units' weights instead.
//!
//! | step | dense formula | a dropped input unit `i` |
//! |---|---|---|
//! | forward | `z = W ã + b`, `ã = r ⊙ a / keep` | column `i` of `W` is never read |
//! | weight gradient | `dW = dz ãᵀ` | column `i` of `dW` is not computed, not written |
//! | input gradient | `da = (Wᵀ dz) ⊙ r / keep` | row `i` is not computed; `da_i` is exactly 0 |
//! | SGD step | `W -= lr · dz ãᵀ` | column `i` of `W` is not touched |
//!
//! # The contract
//!
//! - Bit `i` of a mask is bit `i % 64` of word `i / 64`; bits past the length are zero.
//! - [`KeepProb`] is validated in `(0, 1]`; the [sampler](sample) keeps each unit with
//!   probability exactly `keep`, and the same RNG state gives the same mask on every
//!   target.
//! - Dropped entries are skipped, not multiplied by zero: a skipped output entry is
//!   bitwise untouched and a skipped input entry is never read, even when it holds NaN.
//! - Every public function checks shapes, lengths, strides and mask lengths and returns
//!   [`Error`] on a mismatch, writing nothing. No public safe function panics, allocates
//!   in the core, or has undefined behaviour.
//! - Results agree with the dense [`reference`](mod@reference) within a floating-point bound
//!   proportional to the sum of absolute products.
//!
//! # Example
//!
//! ```
//! use bitdrop::{KeepProb, MaskMut, MatRef, reference, sample, words_for};
//! use rand_xoshiro::{Xoshiro256PlusPlus, rand_core::SeedableRng};
//!
//! let (n_out, n_in) = (3, 100);
//! let w: Vec<f32> = (0..n_out * n_in).map(|k| k as f32 * 0.01).collect();
//! let w = MatRef::row_major(&w, n_out, n_in)?;
//! let x = vec![1.0f32; n_in];
//!
//! let keep = KeepProb::new(0.8)?;
//! let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
//! let mut words = [0u64; words_for(100)];
//! let mut mask = MaskMut::new(&mut words, n_in)?;
//! sample::bernoulli(&mut rng, keep, &mut mask);
//!
//! let mut z = [0.0f32; 3];
//! reference::forward(w, &x, Some(mask.as_mask()), keep, None, None, &mut z)?;
//! # Ok::<(), bitdrop::Error>(())
//! ```
//!
//! # Crate features
//!
//! - `std` (default): runtime CPU feature detection, for bitdrop's kernels and for
//!   matrixmultiply's; implies `alloc`.
//! - `alloc`: owned conveniences ([`layer::BatchWorkspace`]), the matrixmultiply-backed
//!   path of the shared-mask batch operations and [`layer::ThinnedBatch`], a whole step on
//!   the kept weights gathered once (see [the batch path](layer#the-batch-path);
//!   matrixmultiply allocates a packing buffer in each GEMM call). The core (masks,
//!   sampler, kernels, and the batch operations on bitdrop's own kernels) needs neither
//!   and builds for `thumbv6m-none-eabi`.
// Without `alloc` the alloc-only items above do not exist: point their links at the text.
#![cfg_attr(
    not(feature = "alloc"),
    doc = "",
    doc = "[`layer::BatchWorkspace`]: crate::layer#the-batch-path",
    doc = "[`layer::ThinnedBatch`]: crate::layer#the-batch-path"
)]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(test, feature = "std"))]
extern crate std;

#[cfg(feature = "alloc")]
extern crate alloc;

mod arch;
pub mod blas;
mod element;
mod error;
mod keep;
pub mod layer;
mod level;
mod mask;
mod mat;
pub mod reference;
pub mod sample;

pub use element::Element;
pub use error::Error;
pub use keep::KeepProb;
pub use level::Level;
#[cfg(feature = "std")]
pub use level::with_level;
pub use mask::{BatchMask, KeptIter, Mask, MaskBatch, MaskBatchMut, MaskMut, words_for};
pub use mat::{MatMut, MatRef};

// The README's examples run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
