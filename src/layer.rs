//! Dropout-layer operations: the forward pass, both gradients and a fused SGD step,
//! computed only for kept units.
//!
//! A dense layer has weights `W` (`n_out x n_in`) and takes its input through inverted
//! dropout: `ã = r ⊙ x / keep` with a [`Mask`] `r` over the `n_in` inputs. The scale
//! `1 / keep` is folded into the kernels' `alpha`; a dropped input unit `i` is skipped:
//!
//! | function | computes, for kept `i` | for a dropped `i` |
//! |---|---|---|
//! | [`forward`] | `z = Σ_i W[:,i] · x_i / keep + b` | column `i` of `W` and `x_i` never read |
//! | [`weight_grad`] | `dW[:,i] += dz · x_i / keep` | column `i` of `dW` not written |
//! | [`input_grad`] | `dx_i = (Wᵀ dz)_i / keep` | `dx_i = 0`; column `i` of `W` never read |
//! | [`sgd_step`] | `W[:,i] -= lr · dz · x_i / keep` | column `i` of `W` not written |
//!
//! # Which function when
//!
//! - One example: [`forward`], [`weight_grad`], [`input_grad`], [`sgd_step`]. Store `W`
//!   column-major: each input unit then owns a contiguous column, and a dropped unit's
//!   column is skipped with its memory traffic, so time scales with `keep`.
//! - Dropout on the layer's outputs too (the next layer's input mask): the `_both`
//!   variants. A dropped output `j` is row `j` of `W` and `dW`: not read, not written,
//!   and `dz_j` is not read (it is zero anyway). Only the kept x kept block is touched.
//! - A mini-batch with one mask shared by all examples ("one thinned network per step"):
//!   the `_batch` variants. Examples are the columns of `x`, `z`, `dz`, `dx`
//!   (`n x m` views); whole columns of the batched `dW = dZ·Ãᵀ` and whole rows of `dX`
//!   are skipped, so the work scales with `keep` at any batch size.
//! - A whole training step of such a layer (forward pass, input gradient, SGD step) with
//!   `alloc`: a [`ThinnedBatch`], which gathers the kept block of `W` once for the step
//!   instead of once per operation.
//! - A mask per example (PyTorch's `nn.Dropout`): the `_per_example` variants, one
//!   masked single-example kernel per example; store `x` and `dz` column-major so each
//!   example is contiguous. For large batches a dense matrix product on the masked
//!   input ([`dropout`] it first) is the faster choice: per-example masks leave no whole
//!   column to skip.
//!
//! Every function checks all shapes, lengths and mask lengths first and returns
//! [`Error`] without writing anything on a mismatch.
//!
//! # The batch path
//!
//! The shared-mask `_batch` operations take a trailing `workspace: &mut [T]` of at least
//! [`batch_workspace_len`]`(n_out, n_in, m)` elements (one length for all four; with the
//! `alloc` feature, [`BatchWorkspace`] owns one). What runs:
//!
//! - **`alloc` (and `std`)**: matrixmultiply's `sgemm`/`dgemm`. A mask that keeps every
//!   unit counts as no mask; with no mask left (`keep = 1` and all-ones masks, or no
//!   dropout at all) the GEMM runs directly on your matrices and the workspace is not
//!   touched. Otherwise the kept rows of `X` (and, for `dX` and the forward pass, the kept
//!   columns of `W`; with `out_mask`, the kept rows of `W` and `dZ`) are gathered into the
//!   workspace, one GEMM per block of kept output rows (sized so that a block's gathered
//!   and compact rows take about 512 KiB, one L2 cache) runs on the compact operands with `alpha = 1 / keep` (`-lr / keep` for the SGD step), and the compact
//!   result is scattered into the kept columns of `dW`, the kept rows of `dX` (dropped rows
//!   are written as exactly 0) or the kept rows of `Z`. With both masks only the kept x
//!   kept block is computed. The FLOPs scale with `keep` (`keep_in · keep_out` with both
//!   masks); the gather and scatter add one pass over the kept part of `W` or `dW`.
//!   bitdrop allocates nothing; matrixmultiply allocates (and frees) its own packing
//!   buffer in each GEMM call.
//! - **A [`ThinnedBatch`]** (`alloc`) runs the same GEMMs, but gathers the kept block of
//!   `W` once, when it is made, for all the operations of a step: the forward pass and
//!   `dX` multiply with that copy, and the SGD step updates the copy and writes it back
//!   over the kept block of `W` (a copy where the free function adds a compact update
//!   into `W`). Its workspace, [`thinned_workspace_len`], has room for that block too.
//! - **without `alloc`** (microcontrollers): bitdrop's masked kernels (one masked
//!   matrix-vector product per kept column of the output), which need no workspace:
//!   [`batch_workspace_len`] is 0 there. Nothing allocates.
//!
//! Layouts: any strides work on both paths. On the matrixmultiply path, store `W` (and
//! `dW`) column-major for the cheapest gather and scatter (a kept unit's column is one
//! contiguous copy); row-major works at the cost of walking the mask bit by bit along
//! each row.

// Without `alloc` the alloc-only items above do not exist: point their links at the text.
#![cfg_attr(
    not(feature = "alloc"),
    doc = "",
    doc = "[`BatchWorkspace`]: self#the-batch-path",
    doc = "[`ThinnedBatch`]: self#the-batch-path",
    doc = "[`thinned_workspace_len`]: self#the-batch-path"
)]

#[cfg(feature = "alloc")]
mod thinned;
#[cfg(feature = "alloc")]
pub use thinned::{ThinnedBatch, thinned_workspace_len};

use crate::arch::DroppedRows;
use crate::error::{check_len, check_mask_len, check_shape};
use crate::mask::valid_bits;
use crate::mat::{column, column_mut};
use crate::{Element, Error, KeepProb, Mask, MaskBatch, MatMut, MatRef, arch};

fn check_out_mask(arg: &'static str, n_out: usize, out: Option<Mask<'_>>) -> Result<(), Error> {
    out.map_or(Ok(()), |m| check_mask_len(arg, n_out, m.len()))
}

/// Writes `b_j` into `z_j` for kept outputs `j`.
fn write_bias<T: Element>(b: &[T], out: Option<Mask<'_>>, z: &mut MatMut<'_, T>) {
    match out {
        None => b.iter().enumerate().for_each(|(j, &v)| *z.at_mut(j, 0) = v),
        Some(out) => out.iter_kept().for_each(|j| *z.at_mut(j, 0) = b[j]),
    }
}

/// Writes the bias into every column of a batch `z` (kept outputs only) and returns the
/// `beta` that adds the product to it: 1, or 0 without a bias (`z` then overwritten).
fn bias_into<T: Element>(bias: Option<&[T]>, out: Option<Mask<'_>>, z: &mut MatMut<'_, T>) -> T {
    let Some(b) = bias else {
        return T::ZERO;
    };
    // In memory order, whole slices where the layout allows (an element-wise walk took
    // 2% of a 1024-wide layer step at m = 128).
    if z.col_stride() == 1 && z.row_stride() != 1 {
        // Row-major: row j is b_j throughout.
        let rows = z.rows();
        let mut fill_row = |j: usize| {
            if let Some(row) = z.row_slice_mut(j) {
                row.fill(b[j]);
            }
        };
        match out {
            None => (0..rows).for_each(&mut fill_row),
            Some(out) => out.iter_kept().for_each(&mut fill_row),
        }
        return T::ONE;
    }
    for k in 0..z.cols() {
        match (z.col_slice_mut(k), out) {
            (Some(col), None) => col.copy_from_slice(b),
            (Some(col), Some(out)) => out.iter_kept().for_each(|j| col[j] = b[j]),
            (None, _) => {
                if let Some(mut zk) = z.reborrow_mut().col(k) {
                    write_bias(b, out, &mut zk);
                }
            }
        }
    }
    T::ONE
}

/// Writes exactly 0 into the rows of `dx` whose input unit is dropped.
///
/// Walks `dx` in memory order: column by column when its rows are the strided direction
/// (a column-major batch), row by row otherwise.
fn zero_dropped<T: Element>(mask: Mask<'_>, dx: &mut MatMut<'_, T>) {
    // The dropped units of word `w` (bits past the mask's length cleared).
    let dropped = |w: usize, word: u64| !word & valid_bits(mask.len() - 64 * w);
    // Plain loops over the bits: this runs once per example of a batch.
    if dx.row_stride() < dx.col_stride() {
        for k in 0..dx.cols() {
            for (w, &word) in mask.words().iter().enumerate() {
                let mut bits = dropped(w, word);
                while bits != 0 {
                    *dx.at_mut(64 * w + bits.trailing_zeros() as usize, k) = T::ZERO;
                    bits &= bits - 1;
                }
            }
        }
    } else {
        for (w, &word) in mask.words().iter().enumerate() {
            let mut bits = dropped(w, word);
            while bits != 0 {
                let i = 64 * w + bits.trailing_zeros() as usize;
                for k in 0..dx.cols() {
                    *dx.at_mut(i, k) = T::ZERO;
                }
                bits &= bits - 1;
            }
        }
    }
}

/// `z = W (r ⊙ x / keep) + b` for kept outputs, on column views (checked by the caller).
fn forward_col<T: Element>(
    w: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out: Option<Mask<'_>>,
    bias: Option<&[T]>,
    mut z: MatMut<'_, T>,
) -> Result<(), Error> {
    let beta = match bias {
        Some(b) => {
            write_bias(b, out, &mut z);
            T::ONE
        }
        None => T::ZERO,
    };
    arch::gemv(z, keep.scale_as(), w, x, beta, out, Some(mask))
}

/// `dx = (Wᵀ dz) ⊙ r / keep` on column views (checked by the caller).
fn input_grad_col<T: Element>(
    w: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out: Option<Mask<'_>>,
    mut dx: MatMut<'_, T>,
) -> Result<(), Error> {
    let scale = keep.scale_as();
    // With `W` row-major, the rows of `Wᵀ dz` run along `W`'s contiguous rows, where a
    // vector level would keep each dropped lane out with a select per chunk, and skip
    // only the chunks with no kept unit: few of them unless keep is tiny, and no memory
    // is saved. When a sixteenth or more of the units are kept, every row is computed
    // and the dropped ones are zeroed below, which costs less (measured at 1024²: 1.2x
    // dense the masked way at keep 0.5, 1.01x this way; 1.07x against 1.02x at keep
    // 0.1). Whatever `W`'s dropped columns hold reaches only the dropped rows, and they
    // are overwritten.
    // (The level first: without `std` it is a constant, and one lane folds this away.)
    let all_rows = arch::vectorized()
        && w.col_stride() == 1
        && w.row_stride() != 1
        && dx.row_stride() == 1
        && mask.count_kept() >= mask.len().div_ceil(16);
    arch::gemv(
        dx.reborrow_mut(),
        scale,
        w.t(),
        dz,
        T::ZERO,
        (!all_rows).then_some(mask),
        out,
    )?;
    zero_dropped(mask, &mut dx);
    Ok(())
}

/// Forward pass of one example: `z = W · (r ⊙ x / keep) + bias`.
///
/// `w` is `n_out x n_in` (any layout; column-major skips dropped units' memory), `x`
/// and `mask` have `n_in` entries, `bias` (optional) and `z` have `n_out`. Column `i` of
/// `w` and `x_i` are never read for a dropped unit `i`.
///
/// # Errors
///
/// [`Error::Length`] if `x`, `bias` or `z` do not match `w`; [`Error::MaskLength`] if
/// `mask.len() != n_in`. Nothing is written then.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatRef, layer};
///
/// let w = [1.0f32, 2.0, 3.0, 4.0]; // [[1, 3], [2, 4]], column-major
/// let w = MatRef::col_major(&w, 2, 2)?;
/// let mask = Mask::new(&[0b01], 2)?; // input 1 dropped
/// let mut z = [0.0f32; 2];
/// layer::forward(w, &[1.0, f32::NAN], mask, KeepProb::new(0.5)?, Some(&[0.5, 0.5]), &mut z)?;
/// assert_eq!(z, [2.5, 4.5]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn forward<T: Element>(
    w: MatRef<'_, T>,
    x: &[T],
    mask: Mask<'_>,
    keep: KeepProb,
    bias: Option<&[T]>,
    z: &mut [T],
) -> Result<(), Error> {
    forward_checked(w, x, ("mask", mask), keep, None, bias, z)
}

/// [`forward`] with the layer's output mask too: a dropped output `j` (row `j` of `w`)
/// is neither read nor computed, and `z_j` is left untouched.
///
/// # Errors
///
/// As [`forward`]; also [`Error::MaskLength`] if `out_mask.len() != n_out`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatRef, layer};
///
/// let w = MatRef::row_major(&[1.0f64, 1.0, f64::NAN, f64::NAN], 2, 2)?;
/// let all = Mask::new(&[0b11], 2)?;
/// let out = Mask::new(&[0b01], 2)?; // output 1 dropped: row 1 never read
/// let mut z = [0.0, -7.0];
/// layer::forward_both(w, &[1.0, 2.0], all, KeepProb::ONE, out, None, &mut z)?;
/// assert_eq!(z, [3.0, -7.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn forward_both<T: Element>(
    w: MatRef<'_, T>,
    x: &[T],
    in_mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Mask<'_>,
    bias: Option<&[T]>,
    z: &mut [T],
) -> Result<(), Error> {
    forward_checked(w, x, ("in_mask", in_mask), keep, Some(out_mask), bias, z)
}

fn forward_checked<T: Element>(
    w: MatRef<'_, T>,
    x: &[T],
    (mask_arg, mask): (&'static str, Mask<'_>),
    keep: KeepProb,
    out: Option<Mask<'_>>,
    bias: Option<&[T]>,
    z: &mut [T],
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    check_len("x", n_in, x.len())?;
    check_len("z", n_out, z.len())?;
    if let Some(b) = bias {
        check_len("bias", n_out, b.len())?;
    }
    check_mask_len(mask_arg, n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out)?;
    forward_col(w, column(x), mask, keep, out, bias, column_mut(z))
}

/// Weight gradient of one example, accumulated: `dW[:,i] += dz · x_i / keep` for kept
/// `i`; column `i` of `dw` is not written for a dropped `i`.
///
/// Like BLAS `ger` it accumulates, so a batch of examples sums into `dw`; zero `dw` once
/// per step (with [`MatMut::fill`]).
///
/// # Errors
///
/// [`Error::Length`] if `dz.len() != n_out` or `x.len() != n_in` (`dw` is
/// `n_out x n_in`); [`Error::MaskLength`] if `mask.len() != n_in`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, layer};
///
/// let mut dw = [0.0f32; 4];
/// let mask = Mask::new(&[0b10], 2)?; // input 0 dropped
/// layer::weight_grad(&[1.0, 2.0], &[5.0, 3.0], mask, KeepProb::new(0.5)?,
///     MatMut::col_major(&mut dw, 2, 2)?)?;
/// assert_eq!(dw, [0.0, 0.0, 6.0, 12.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn weight_grad<T: Element>(
    dz: &[T],
    x: &[T],
    mask: Mask<'_>,
    keep: KeepProb,
    dw: MatMut<'_, T>,
) -> Result<(), Error> {
    weight_update(dz, x, ("mask", mask), None, keep.scale_as(), dw)
}

/// [`weight_grad`] with the layer's output mask too: row `j` of `dw` is not written and
/// `dz_j` not read for a dropped output `j`.
///
/// # Errors
///
/// As [`weight_grad`]; also [`Error::MaskLength`] if `out_mask.len() != n_out`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, layer};
///
/// let mut dw = [0.0f64; 4];
/// let (all, first) = (Mask::new(&[0b11], 2)?, Mask::new(&[0b01], 2)?);
/// layer::weight_grad_both(&[1.0, f64::NAN], &[1.0, 2.0], all, KeepProb::ONE, first,
///     MatMut::row_major(&mut dw, 2, 2)?)?;
/// assert_eq!(dw, [1.0, 2.0, 0.0, 0.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn weight_grad_both<T: Element>(
    dz: &[T],
    x: &[T],
    in_mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Mask<'_>,
    dw: MatMut<'_, T>,
) -> Result<(), Error> {
    let alpha = keep.scale_as();
    weight_update(dz, x, ("in_mask", in_mask), Some(out_mask), alpha, dw)
}

/// `A += alpha · dz · (r ⊙ x)ᵀ` on kept rows and columns: the weight gradient
/// (`alpha = 1 / keep`) and the fused SGD step (`alpha = -lr / keep`).
fn weight_update<T: Element>(
    dz: &[T],
    x: &[T],
    (mask_arg, mask): (&'static str, Mask<'_>),
    out: Option<Mask<'_>>,
    alpha: T,
    a: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = a.shape();
    check_len("dz", n_out, dz.len())?;
    check_len("x", n_in, x.len())?;
    check_mask_len(mask_arg, n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out)?;
    arch::ger(a, alpha, column(dz), column(x), out, Some(mask))
}

/// Input gradient of one example: `dx_i = (Wᵀ dz)_i / keep` for kept `i`, exactly 0
/// for dropped `i`, whatever column `i` of `w` holds. A column-major `w`'s dropped
/// columns are never read; a row-major `w` is read along its rows, and when at least a
/// sixteenth of the units are kept, every `(Wᵀ dz)_i` is computed and the dropped ones
/// are overwritten with 0 (cheaper there than a select per vector).
///
/// # Errors
///
/// [`Error::Length`] if `dz.len() != n_out` or `dx.len() != n_in`;
/// [`Error::MaskLength`] if `mask.len() != n_in`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatRef, layer};
///
/// let w = MatRef::col_major(&[1.0f32, 2.0, f32::NAN, f32::NAN], 2, 2)?;
/// let mask = Mask::new(&[0b01], 2)?; // input 1 dropped: its NaN column is never read
/// let mut dx = [9.0f32; 2];
/// layer::input_grad(w, &[1.0, 1.0], mask, KeepProb::new(0.5)?, &mut dx)?;
/// assert_eq!(dx, [6.0, 0.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn input_grad<T: Element>(
    w: MatRef<'_, T>,
    dz: &[T],
    mask: Mask<'_>,
    keep: KeepProb,
    dx: &mut [T],
) -> Result<(), Error> {
    input_grad_checked(w, dz, ("mask", mask), keep, None, dx)
}

/// [`input_grad`] with the layer's output mask too: `dz_j` and row `j` of `w` are not
/// read for a dropped output `j`.
///
/// # Errors
///
/// As [`input_grad`]; also [`Error::MaskLength`] if `out_mask.len() != n_out`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatRef, layer};
///
/// let w = MatRef::row_major(&[1.0f64, 2.0, f64::NAN, f64::NAN], 2, 2)?;
/// let (all, first) = (Mask::new(&[0b11], 2)?, Mask::new(&[0b01], 2)?);
/// let mut dx = [0.0; 2];
/// layer::input_grad_both(w, &[1.0, f64::NAN], all, KeepProb::ONE, first, &mut dx)?;
/// assert_eq!(dx, [1.0, 2.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn input_grad_both<T: Element>(
    w: MatRef<'_, T>,
    dz: &[T],
    in_mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Mask<'_>,
    dx: &mut [T],
) -> Result<(), Error> {
    input_grad_checked(w, dz, ("in_mask", in_mask), keep, Some(out_mask), dx)
}

fn input_grad_checked<T: Element>(
    w: MatRef<'_, T>,
    dz: &[T],
    (mask_arg, mask): (&'static str, Mask<'_>),
    keep: KeepProb,
    out: Option<Mask<'_>>,
    dx: &mut [T],
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    check_len("dz", n_out, dz.len())?;
    check_len("dx", n_in, dx.len())?;
    check_mask_len(mask_arg, n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out)?;
    input_grad_col(w, column(dz), mask, keep, out, column_mut(dx))
}

/// Fused SGD step of one example: `W[:,i] -= lr · dz · x_i / keep` for kept `i`, with
/// no gradient buffer; column `i` of `w` is not written for a dropped `i`.
///
/// # Errors
///
/// [`Error::Length`] if `dz.len() != n_out` or `x.len() != n_in`;
/// [`Error::MaskLength`] if `mask.len() != n_in`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, layer};
///
/// let mut w = [1.0f32, 1.0]; // 1 x 2
/// let mask = Mask::new(&[0b01], 2)?;
/// layer::sgd_step(MatMut::row_major(&mut w, 1, 2)?, &[1.0], &[2.0, 2.0], mask,
///     KeepProb::new(0.5)?, 0.25)?;
/// assert_eq!(w, [0.0, 1.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn sgd_step<T: Element>(
    w: MatMut<'_, T>,
    dz: &[T],
    x: &[T],
    mask: Mask<'_>,
    keep: KeepProb,
    lr: T,
) -> Result<(), Error> {
    let alpha = -(lr * keep.scale_as());
    weight_update(dz, x, ("mask", mask), None, alpha, w)
}

/// [`sgd_step`] with the layer's output mask too: row `j` of `w` is not written and
/// `dz_j` not read for a dropped output `j`.
///
/// # Errors
///
/// As [`sgd_step`]; also [`Error::MaskLength`] if `out_mask.len() != n_out`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, layer};
///
/// let mut w = [1.0f64; 4];
/// let (all, first) = (Mask::new(&[0b11], 2)?, Mask::new(&[0b01], 2)?);
/// layer::sgd_step_both(MatMut::row_major(&mut w, 2, 2)?, &[1.0, f64::NAN], &[1.0, 2.0],
///     all, KeepProb::ONE, first, 0.5)?;
/// assert_eq!(w, [0.5, 0.0, 1.0, 1.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn sgd_step_both<T: Element>(
    w: MatMut<'_, T>,
    dz: &[T],
    x: &[T],
    in_mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Mask<'_>,
    lr: T,
) -> Result<(), Error> {
    let alpha = -(lr * keep.scale_as());
    weight_update(dz, x, ("in_mask", in_mask), Some(out_mask), alpha, w)
}

/// Inverted dropout on its own: `y_i = x_i / keep` for kept `i`, exactly 0 for dropped
/// `i` (a dropped `x_i` is not read). The same function is its own backward pass
/// (`da = dã ⊙ r / keep`).
///
/// The kernels above never need it; it serves dense code paths and comparisons.
///
/// # Errors
///
/// [`Error::Length`] if `y.len() != x.len()`; [`Error::MaskLength`] if
/// `mask.len() != x.len()`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, layer};
///
/// let mut y = [0.0f32; 3];
/// layer::dropout(&[1.0, f32::NAN, 3.0], Mask::new(&[0b101], 3)?, KeepProb::new(0.5)?, &mut y)?;
/// assert_eq!(y, [2.0, 0.0, 6.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn dropout<T: Element>(
    x: &[T],
    mask: Mask<'_>,
    keep: KeepProb,
    y: &mut [T],
) -> Result<(), Error> {
    check_len("y", x.len(), y.len())?;
    check_mask_len("mask", x.len(), mask.len())?;
    let scale: T = keep.scale_as();
    for (i, (yi, &xi)) in y.iter_mut().zip(x).enumerate() {
        *yi = if mask.is_kept(i) { xi * scale } else { T::ZERO };
    }
    Ok(())
}

/// Checks an `n x m` batch argument.
fn check_batch(arg: &'static str, n: usize, m: usize, v: (usize, usize)) -> Result<(), Error> {
    check_shape(arg, (n, m), v)
}

/// Workspace elements the shared-mask batch operations ([`forward_batch`],
/// [`weight_grad_batch`], [`sgd_step_batch`], [`input_grad_batch`]) need for a layer of
/// `n_out` outputs and `n_in` inputs and a batch of `m` examples.
///
/// One length serves all four operations, and it grows with each argument: a workspace
/// sized for the largest layer and batch serves every smaller one. It depends only on
/// the shapes and the build, never on the masks, so a call that is accepted once is
/// accepted with any mask. The length is that of this build and version; size buffers
/// with this function, not with a formula.
///
/// - With the `alloc` feature (the matrixmultiply-backed path) it is room for the
///   gathered operand of one product (at most `n_in · m` or `n_out · m`) and for one
///   block of a few hundred rows of gathered weights and of compact output: for a
///   `1024 x 1024` layer and `m = 128`, 334,720 elements (1.3 MB of `f32`).
/// - Without `alloc` the batch operations run on bitdrop's own masked kernels and need no
///   workspace: the length is 0 (an empty slice will do).
///
/// `const`, so it can size a static buffer. It saturates rather than overflowing.
///
/// ```
/// use bitdrop::layer::batch_workspace_len;
///
/// let len = batch_workspace_len::<f32>(256, 784, 64);
/// let workspace = vec![0.0f32; len]; // once, before the training loop
/// assert!(batch_workspace_len::<f32>(256, 256, 32) <= len); // smaller layers fit too
/// # let _ = workspace;
/// # #[cfg(feature = "alloc")]
/// # assert_eq!(batch_workspace_len::<f32>(1024, 1024, 128), 334_720);
/// # #[cfg(not(feature = "alloc"))]
/// # assert_eq!(len, 0);
/// ```
pub const fn batch_workspace_len<T: Element>(n_out: usize, n_in: usize, m: usize) -> usize {
    #[cfg(feature = "alloc")]
    {
        // The three products: forward (n_out x n_in) · (n_in x m), weight gradient
        // (n_out x m) · (m x n_in), input gradient (n_in x n_out) · (n_out x m).
        let forward = arch::mm::workspace_len::<T>(n_out, n_in, m);
        let weight = arch::mm::workspace_len::<T>(n_out, m, n_in);
        let input = arch::mm::workspace_len::<T>(n_in, n_out, m);
        let max = if forward > weight { forward } else { weight };
        if max > input { max } else { input }
    }
    #[cfg(not(feature = "alloc"))]
    {
        let _ = (n_out, n_in, m);
        0
    }
}

/// A workspace for the shared-mask batch operations that owns its buffer (`alloc`), with
/// the four operations as methods.
///
/// Make one before the training loop for the largest layer and batch size, then call its
/// methods (or pass [`as_mut_slice`](Self::as_mut_slice) to the free functions); no call
/// allocates in bitdrop (matrixmultiply's packing buffer aside, see
/// [the batch path](self#the-batch-path)).
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer::BatchWorkspace};
///
/// let (n_out, n_in, m) = (2, 3, 4);
/// let mut ws = BatchWorkspace::<f32>::new(n_out, n_in, m);
/// let w = [1.0f32; 6];
/// let x = [1.0f32; 12];
/// let mask = Mask::new(&[0b101], 3)?; // input 1 dropped
/// let keep = KeepProb::new(0.5)?;
/// let mut z = [0.0f32; 8];
/// ws.forward(MatRef::col_major(&w, n_out, n_in)?, MatRef::col_major(&x, n_in, m)?,
///     mask, keep, None, None, MatMut::col_major(&mut z, n_out, m)?)?;
/// assert_eq!(z, [4.0; 8]); // (1 + 1) / 0.5
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq)]
pub struct BatchWorkspace<T> {
    buf: alloc::vec::Vec<T>,
}

#[cfg(feature = "alloc")]
impl<T: Element> BatchWorkspace<T> {
    /// A workspace for layers of up to `n_out` outputs and `n_in` inputs and batches of
    /// up to `m` examples: [`batch_workspace_len`]`(n_out, n_in, m)` elements.
    ///
    /// ```
    /// let ws = bitdrop::layer::BatchWorkspace::<f64>::new(10, 20, 8);
    /// assert_eq!(ws.len(), bitdrop::layer::batch_workspace_len::<f64>(10, 20, 8));
    /// ```
    pub fn new(n_out: usize, n_in: usize, m: usize) -> Self {
        BatchWorkspace {
            buf: alloc::vec![T::ZERO; batch_workspace_len::<T>(n_out, n_in, m)],
        }
    }

    /// Number of elements.
    ///
    /// ```
    /// assert!(bitdrop::layer::BatchWorkspace::<f32>::new(64, 64, 16).len() > 0);
    /// ```
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the workspace has no elements (only for empty shapes).
    ///
    /// ```
    /// assert!(bitdrop::layer::BatchWorkspace::<f32>::new(0, 0, 0).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The buffer, for the free functions.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
    ///
    /// let mut ws = layer::BatchWorkspace::<f32>::new(1, 2, 2);
    /// let dz = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
    /// let x = MatRef::row_major(&[1.0f32, 2.0, 3.0, 4.0], 2, 2)?;
    /// let mut dw = [0.0f32; 2];
    /// layer::weight_grad_batch(dz, x, Mask::new(&[0b11], 2)?, KeepProb::ONE, None,
    ///     MatMut::row_major(&mut dw, 1, 2)?, ws.as_mut_slice())?;
    /// assert_eq!(dw, [3.0, 7.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.buf
    }

    /// [`forward_batch`] with this workspace.
    ///
    /// # Errors
    ///
    /// As [`forward_batch`]; [`Error::Workspace`] if the layer or batch is larger than
    /// the one this workspace was made for.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer::BatchWorkspace};
    ///
    /// let mut ws = BatchWorkspace::<f64>::new(1, 2, 2);
    /// let w = MatRef::row_major(&[1.0f64, 1.0], 1, 2)?;
    /// let x = MatRef::col_major(&[1.0f64, 2.0, 3.0, 4.0], 2, 2)?;
    /// let mut z = [0.0f64; 2];
    /// ws.forward(w, x, Mask::new(&[0b11], 2)?, KeepProb::ONE, None, Some(&[0.5]),
    ///     MatMut::row_major(&mut z, 1, 2)?)?;
    /// assert_eq!(z, [3.5, 7.5]);
    /// let mut big = [0.0f64; 3];
    /// let x3 = MatRef::col_major(&[1.0f64; 6], 2, 3)?; // a batch of 3: too large
    /// assert!(ws.forward(w, x3, Mask::new(&[0b11], 2)?, KeepProb::ONE, None, None,
    ///     MatMut::row_major(&mut big, 1, 3)?).is_err());
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        w: MatRef<'_, T>,
        x: MatRef<'_, T>,
        mask: Mask<'_>,
        keep: KeepProb,
        out_mask: Option<Mask<'_>>,
        bias: Option<&[T]>,
        z: MatMut<'_, T>,
    ) -> Result<(), Error> {
        forward_batch(w, x, mask, keep, out_mask, bias, z, &mut self.buf)
    }

    /// [`weight_grad_batch`] with this workspace.
    ///
    /// # Errors
    ///
    /// As [`weight_grad_batch`]; [`Error::Workspace`] if the layer or batch is larger
    /// than the one this workspace was made for.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer::BatchWorkspace};
    ///
    /// let mut ws = BatchWorkspace::<f32>::new(1, 2, 2);
    /// let dz = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
    /// let x = MatRef::row_major(&[1.0f32, 2.0, f32::NAN, f32::NAN], 2, 2)?;
    /// let mut dw = [0.0f32, -3.0];
    /// ws.weight_grad(dz, x, Mask::new(&[0b01], 2)?, KeepProb::new(0.5)?, None,
    ///     MatMut::row_major(&mut dw, 1, 2)?)?;
    /// assert_eq!(dw, [6.0, -3.0]); // column 1 untouched
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn weight_grad(
        &mut self,
        dz: MatRef<'_, T>,
        x: MatRef<'_, T>,
        mask: Mask<'_>,
        keep: KeepProb,
        out_mask: Option<Mask<'_>>,
        dw: MatMut<'_, T>,
    ) -> Result<(), Error> {
        weight_grad_batch(dz, x, mask, keep, out_mask, dw, &mut self.buf)
    }

    /// [`sgd_step_batch`] with this workspace.
    ///
    /// # Errors
    ///
    /// As [`sgd_step_batch`]; [`Error::Workspace`] if the layer or batch is larger than
    /// the one this workspace was made for.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer::BatchWorkspace};
    ///
    /// let mut ws = BatchWorkspace::<f32>::new(1, 2, 2);
    /// let dz = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
    /// let x = MatRef::row_major(&[1.0f32, 3.0, 5.0, 5.0], 2, 2)?;
    /// let mut w = [0.0f32; 2];
    /// ws.sgd_step(MatMut::row_major(&mut w, 1, 2)?, dz, x, Mask::new(&[0b01], 2)?,
    ///     KeepProb::ONE, None, 0.5)?;
    /// assert_eq!(w, [-2.0, 0.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn sgd_step(
        &mut self,
        w: MatMut<'_, T>,
        dz: MatRef<'_, T>,
        x: MatRef<'_, T>,
        mask: Mask<'_>,
        keep: KeepProb,
        out_mask: Option<Mask<'_>>,
        lr: T,
    ) -> Result<(), Error> {
        sgd_step_batch(w, dz, x, mask, keep, out_mask, lr, &mut self.buf)
    }

    /// [`input_grad_batch`] with this workspace.
    ///
    /// # Errors
    ///
    /// As [`input_grad_batch`]; [`Error::Workspace`] if the layer or batch is larger than
    /// the one this workspace was made for.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer::BatchWorkspace};
    ///
    /// let mut ws = BatchWorkspace::<f64>::new(1, 2, 2);
    /// let w = MatRef::row_major(&[1.0f64, 2.0], 1, 2)?;
    /// let dz = MatRef::row_major(&[1.0f64, 10.0], 1, 2)?;
    /// let mut dx = [f64::NAN; 4];
    /// ws.input_grad(w, dz, Mask::new(&[0b10], 2)?, KeepProb::ONE, None,
    ///     MatMut::row_major(&mut dx, 2, 2)?)?;
    /// assert_eq!(dx, [0.0, 0.0, 2.0, 20.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn input_grad(
        &mut self,
        w: MatRef<'_, T>,
        dz: MatRef<'_, T>,
        mask: Mask<'_>,
        keep: KeepProb,
        out_mask: Option<Mask<'_>>,
        dx: MatMut<'_, T>,
    ) -> Result<(), Error> {
        input_grad_batch(w, dz, mask, keep, out_mask, dx, &mut self.buf)
    }
}

/// Checks a batch operation's workspace against [`batch_workspace_len`].
fn check_workspace<T: Element>(
    n_out: usize,
    n_in: usize,
    m: usize,
    workspace: &[T],
) -> Result<(), Error> {
    let expected = batch_workspace_len::<T>(n_out, n_in, m);
    if workspace.len() < expected {
        Err(Error::Workspace {
            expected,
            found: workspace.len(),
        })
    } else {
        Ok(())
    }
}

/// The masked product of the shared-mask batch operations: gather, matrixmultiply,
/// scatter with `alloc` (which zeroes `dX`'s dropped rows in the scatter's pass where the
/// layout allows); bitdrop's masked kernels without.
#[allow(clippy::too_many_arguments)]
fn batch_gemm<T: Element>(
    c: MatMut<'_, T>,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    row_mask: Option<Mask<'_>>,
    inner_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
    dropped_rows: DroppedRows,
    workspace: &mut [T],
) -> Result<(), Error> {
    #[cfg(feature = "alloc")]
    {
        arch::mm::gemm(
            c,
            alpha,
            a,
            b,
            beta,
            row_mask,
            inner_mask,
            col_mask,
            dropped_rows,
            workspace,
        )
    }
    #[cfg(not(feature = "alloc"))]
    {
        let _ = workspace;
        let mut c = c;
        arch::gemm(
            c.reborrow_mut(),
            alpha,
            a,
            b,
            beta,
            row_mask,
            inner_mask,
            col_mask,
        )?;
        if let (DroppedRows::Zero, Some(mask)) = (dropped_rows, row_mask) {
            zero_dropped(mask, &mut c);
        }
        Ok(())
    }
}

/// Forward pass of a mini-batch with one mask shared by all examples:
/// `Z = W · (r ⊙ X / keep) + bias` (the bias added to every column).
///
/// `x` is `n_in x m` and `z` is `n_out x m`, one example per column, any layout.
/// Dropped inputs skip column `i` of `w` and row `i` of `x` entirely; with `out_mask`,
/// dropped outputs skip row `j` of `w` and leave row `j` of `z` untouched.
///
/// `workspace` holds at least [`batch_workspace_len`]`(n_out, n_in, m)` elements; its
/// contents on entry and exit mean nothing. See [the batch path](self#the-batch-path)
/// for what runs when.
///
/// # Errors
///
/// [`Error::Shape`] if `x` is not `n_in x m` or `z` not `n_out x m` (`m = x.cols()`);
/// [`Error::Length`] for `bias`; [`Error::MaskLength`] for the masks;
/// [`Error::Workspace`] if `workspace` is too short.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
///
/// let w = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
/// let x = MatRef::col_major(&[1.0f32, f32::NAN, 3.0, f32::NAN], 2, 2)?; // 2 examples
/// let mask = Mask::new(&[0b01], 2)?; // input 1 dropped for the whole batch
/// let mut z = [0.0f32; 2];
/// let mut ws = vec![0.0f32; layer::batch_workspace_len::<f32>(1, 2, 2)];
/// layer::forward_batch(w, x, mask, KeepProb::new(0.5)?, None, None,
///     MatMut::row_major(&mut z, 1, 2)?, &mut ws)?;
/// assert_eq!(z, [2.0, 6.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn forward_batch<T: Element>(
    w: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    bias: Option<&[T]>,
    mut z: MatMut<'_, T>,
    workspace: &mut [T],
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    let m = x.cols();
    check_batch("x", n_in, m, x.shape())?;
    check_batch("z", n_out, m, z.shape())?;
    if let Some(b) = bias {
        check_len("bias", n_out, b.len())?;
    }
    check_mask_len("mask", n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out_mask)?;
    check_workspace::<T>(n_out, n_in, m, workspace)?;
    if n_out == 0 {
        // Nothing to write, however many examples (`m` may be `usize::MAX` then).
        return Ok(());
    }
    let beta = bias_into(bias, out_mask, &mut z);
    let scale = keep.scale_as();
    batch_gemm(
        z,
        scale,
        w,
        x,
        beta,
        out_mask,
        Some(mask),
        None,
        DroppedRows::Untouched,
        workspace,
    )
}

/// Weight gradient of a mini-batch with a shared mask, accumulated:
/// `dW[:,i] += dZ · X[i,:]ᵀ / keep` for kept `i` (the batched `dW = dZ·Ãᵀ`); column `i`
/// of `dw` is not written for a dropped `i`, nor row `j` for a dropped output.
///
/// `dz` is `n_out x m`, `x` is `n_in x m`. The work is `keep · n_out · n_in · m`.
/// `workspace` as for [`forward_batch`].
///
/// # Errors
///
/// [`Error::Shape`] if `dz` is not `n_out x m` or `x` not `n_in x m`
/// (`m = x.cols()`, `dw` is `n_out x n_in`); [`Error::MaskLength`] for the masks;
/// [`Error::Workspace`] if `workspace` is shorter than
/// [`batch_workspace_len`]`(n_out, n_in, m)`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
///
/// let dz = MatRef::row_major(&[1.0f64, 1.0], 1, 2)?;
/// let x = MatRef::row_major(&[1.0f64, 2.0, f64::NAN, f64::NAN], 2, 2)?;
/// let mask = Mask::new(&[0b01], 2)?;
/// let mut dw = [0.0f64, -3.0];
/// let mut ws = vec![0.0f64; layer::batch_workspace_len::<f64>(1, 2, 2)];
/// layer::weight_grad_batch(dz, x, mask, KeepProb::ONE, None,
///     MatMut::row_major(&mut dw, 1, 2)?, &mut ws)?;
/// assert_eq!(dw, [3.0, -3.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn weight_grad_batch<T: Element>(
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    dw: MatMut<'_, T>,
    workspace: &mut [T],
) -> Result<(), Error> {
    let alpha = keep.scale_as();
    weight_update_batch(dz, x, mask, out_mask, alpha, dw, workspace)
}

/// Fused SGD step of a mini-batch with a shared mask: `W[:,i] -= lr · dZ · X[i,:]ᵀ /
/// keep` for kept `i` (the sum over the batch: fold `1 / m` into `lr` to average).
///
/// `workspace` as for [`forward_batch`].
///
/// # Errors
///
/// As [`weight_grad_batch`], with `w` in place of `dw`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
///
/// let dz = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
/// let x = MatRef::row_major(&[1.0f32, 3.0, 5.0, 5.0], 2, 2)?;
/// let mut w = [0.0f32; 2];
/// let mut ws = vec![0.0f32; layer::batch_workspace_len::<f32>(1, 2, 2)];
/// layer::sgd_step_batch(MatMut::row_major(&mut w, 1, 2)?, dz, x, Mask::new(&[0b01], 2)?,
///     KeepProb::ONE, None, 0.5, &mut ws)?;
/// assert_eq!(w, [-2.0, 0.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn sgd_step_batch<T: Element>(
    w: MatMut<'_, T>,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    lr: T,
    workspace: &mut [T],
) -> Result<(), Error> {
    let alpha = -(lr * keep.scale_as());
    weight_update_batch(dz, x, mask, out_mask, alpha, w, workspace)
}

/// `A += alpha · dZ · (r ⊙ X)ᵀ` on kept rows and columns.
fn weight_update_batch<T: Element>(
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    out: Option<Mask<'_>>,
    alpha: T,
    a: MatMut<'_, T>,
    workspace: &mut [T],
) -> Result<(), Error> {
    let (n_out, n_in) = a.shape();
    let m = x.cols();
    check_batch("x", n_in, m, x.shape())?;
    check_batch("dz", n_out, m, dz.shape())?;
    check_mask_len("mask", n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out)?;
    check_workspace::<T>(n_out, n_in, m, workspace)?;
    let x = x.t();
    batch_gemm(
        a,
        alpha,
        dz,
        x,
        T::ONE,
        out,
        None,
        Some(mask),
        DroppedRows::Untouched,
        workspace,
    )
}

/// Input gradient of a mini-batch with a shared mask: `dX[i,:] = (Wᵀ dZ)[i,:] / keep`
/// for kept `i`, exactly 0 in the rows of dropped units; column `i` of `w` is never
/// read for a dropped `i`, nor row `j` of `w` and `dZ` for a dropped output.
///
/// `workspace` as for [`forward_batch`].
///
/// # Errors
///
/// [`Error::Shape`] if `dz` is not `n_out x m` or `dx` not `n_in x m`
/// (`m = dz.cols()`); [`Error::MaskLength`] for the masks; [`Error::Workspace`] if
/// `workspace` is shorter than [`batch_workspace_len`]`(n_out, n_in, m)`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
///
/// let w = MatRef::row_major(&[1.0f64, 2.0], 1, 2)?;
/// let dz = MatRef::row_major(&[1.0f64, 10.0], 1, 2)?;
/// let mut dx = [f64::NAN; 4];
/// let mut ws = vec![0.0f64; layer::batch_workspace_len::<f64>(1, 2, 2)];
/// layer::input_grad_batch(w, dz, Mask::new(&[0b10], 2)?, KeepProb::ONE, None,
///     MatMut::row_major(&mut dx, 2, 2)?, &mut ws)?;
/// assert_eq!(dx, [0.0, 0.0, 2.0, 20.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn input_grad_batch<T: Element>(
    w: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    dx: MatMut<'_, T>,
    workspace: &mut [T],
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    let m = dz.cols();
    check_batch("dz", n_out, m, dz.shape())?;
    check_batch("dx", n_in, m, dx.shape())?;
    check_mask_len("mask", n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out_mask)?;
    check_workspace::<T>(n_out, n_in, m, workspace)?;
    let scale = keep.scale_as();
    batch_gemm(
        dx,
        scale,
        w.t(),
        dz,
        T::ZERO,
        Some(mask),
        out_mask,
        None,
        DroppedRows::Zero,
        workspace,
    )
}

/// Checks a per-example mask batch: `count` masks of `units` units each.
fn check_masks(
    arg: &'static str,
    units: usize,
    m: usize,
    masks: MaskBatch<'_>,
) -> Result<(), Error> {
    check_shape(arg, (units, m), (masks.mask_len(), masks.count()))
}

fn check_out_masks(n_out: usize, m: usize, out: Option<MaskBatch<'_>>) -> Result<(), Error> {
    out.map_or(Ok(()), |o| check_masks("out_masks", n_out, m, o))
}

/// Mask `k` of a checked batch (`k < count`).
fn example_mask<'a>(masks: MaskBatch<'a>, k: usize) -> Mask<'a> {
    masks.get(k).unwrap_or_default()
}

/// Forward pass of a mini-batch with one mask per example: column `k` of `z` is
/// [`forward`] of column `k` of `x` under mask `k` of `masks` (and of `out_masks`).
///
/// # Errors
///
/// [`Error::Shape`] if `x` is not `n_in x m`, `z` not `n_out x m` (`m = x.cols()`), or
/// `masks` not `m` masks of `n_in` units (`out_masks`: of `n_out`); [`Error::Length`]
/// for `bias`.
///
/// ```
/// use bitdrop::{KeepProb, MaskBatch, MatMut, MatRef, layer};
///
/// let w = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
/// let x = MatRef::col_major(&[1.0f32, 2.0, 3.0, 4.0], 2, 2)?;
/// let masks = MaskBatch::new(&[0b01, 0b10], 2, 2)?; // example 0 keeps unit 0, example 1 unit 1
/// let mut z = [0.0f32; 2];
/// layer::forward_per_example(w, x, masks, KeepProb::new(0.5)?, None, None,
///     MatMut::row_major(&mut z, 1, 2)?)?;
/// assert_eq!(z, [2.0, 8.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn forward_per_example<T: Element>(
    w: MatRef<'_, T>,
    x: MatRef<'_, T>,
    masks: MaskBatch<'_>,
    keep: KeepProb,
    out_masks: Option<MaskBatch<'_>>,
    bias: Option<&[T]>,
    mut z: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    let m = x.cols();
    check_batch("x", n_in, m, x.shape())?;
    check_batch("z", n_out, m, z.shape())?;
    if let Some(b) = bias {
        check_len("bias", n_out, b.len())?;
    }
    check_masks("masks", n_in, m, masks)?;
    check_out_masks(n_out, m, out_masks)?;
    if n_out == 0 {
        // Nothing to write, however many examples (`m` may be `usize::MAX` then).
        return Ok(());
    }
    for k in 0..m {
        if let (Some(xk), Some(zk)) = (x.col(k), z.reborrow_mut().col(k)) {
            let out = out_masks.map(|o| example_mask(o, k));
            forward_col(w, xk, example_mask(masks, k), keep, out, bias, zk)?;
        }
    }
    Ok(())
}

/// Weight gradient of a mini-batch with one mask per example, accumulated over the
/// examples: `dW += Σ_k dz_k · (r_k ⊙ x_k / keep)ᵀ`. An entry is written only by the
/// examples that keep both its units.
///
/// # Errors
///
/// [`Error::Shape`] if `dz` is not `n_out x m`, `x` not `n_in x m` (`m = x.cols()`), or
/// a mask batch has the wrong shape.
///
/// ```
/// use bitdrop::{KeepProb, MaskBatch, MatMut, MatRef, layer};
///
/// let dz = MatRef::row_major(&[1.0f64, 1.0], 1, 2)?;
/// let x = MatRef::col_major(&[1.0f64, 2.0, 3.0, 4.0], 2, 2)?;
/// let masks = MaskBatch::new(&[0b01, 0b10], 2, 2)?;
/// let mut dw = [0.0f64; 2];
/// layer::weight_grad_per_example(dz, x, masks, KeepProb::ONE, None,
///     MatMut::row_major(&mut dw, 1, 2)?)?;
/// assert_eq!(dw, [1.0, 4.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn weight_grad_per_example<T: Element>(
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    masks: MaskBatch<'_>,
    keep: KeepProb,
    out_masks: Option<MaskBatch<'_>>,
    dw: MatMut<'_, T>,
) -> Result<(), Error> {
    let alpha = keep.scale_as();
    weight_update_per_example(dz, x, masks, out_masks, alpha, dw)
}

/// Fused SGD step of a mini-batch with one mask per example: `W -= lr · Σ_k dz_k ·
/// (r_k ⊙ x_k / keep)ᵀ`, one example after the other.
///
/// # Errors
///
/// As [`weight_grad_per_example`], with `w` in place of `dw`.
///
/// ```
/// use bitdrop::{KeepProb, MaskBatch, MatMut, MatRef, layer};
///
/// let dz = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
/// let x = MatRef::col_major(&[1.0f32, 2.0, 3.0, 4.0], 2, 2)?;
/// let masks = MaskBatch::new(&[0b01, 0b10], 2, 2)?;
/// let mut w = [0.0f32; 2];
/// layer::sgd_step_per_example(MatMut::row_major(&mut w, 1, 2)?, dz, x, masks,
///     KeepProb::ONE, None, 1.0)?;
/// assert_eq!(w, [-1.0, -4.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn sgd_step_per_example<T: Element>(
    w: MatMut<'_, T>,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    masks: MaskBatch<'_>,
    keep: KeepProb,
    out_masks: Option<MaskBatch<'_>>,
    lr: T,
) -> Result<(), Error> {
    let alpha = -(lr * keep.scale_as());
    weight_update_per_example(dz, x, masks, out_masks, alpha, w)
}

fn weight_update_per_example<T: Element>(
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    masks: MaskBatch<'_>,
    out_masks: Option<MaskBatch<'_>>,
    alpha: T,
    mut a: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = a.shape();
    let m = x.cols();
    check_batch("x", n_in, m, x.shape())?;
    check_batch("dz", n_out, m, dz.shape())?;
    check_masks("masks", n_in, m, masks)?;
    check_out_masks(n_out, m, out_masks)?;
    if n_out == 0 || n_in == 0 {
        // Nothing to write, however many examples.
        return Ok(());
    }
    for k in 0..m {
        if let (Some(dzk), Some(xk)) = (dz.col(k), x.col(k)) {
            let out = out_masks.map(|o| example_mask(o, k));
            let mask = Some(example_mask(masks, k));
            arch::ger(a.reborrow_mut(), alpha, dzk, xk, out, mask)?;
        }
    }
    Ok(())
}

/// Input gradient of a mini-batch with one mask per example: column `k` of `dx` is
/// [`input_grad`] of column `k` of `dz` under mask `k` (exactly 0 where example `k`
/// drops a unit).
///
/// # Errors
///
/// [`Error::Shape`] if `dz` is not `n_out x m`, `dx` not `n_in x m` (`m = dz.cols()`),
/// or a mask batch has the wrong shape.
///
/// ```
/// use bitdrop::{KeepProb, MaskBatch, MatMut, MatRef, layer};
///
/// let w = MatRef::row_major(&[1.0f32, 2.0], 1, 2)?;
/// let dz = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
/// let masks = MaskBatch::new(&[0b01, 0b10], 2, 2)?;
/// let mut dx = [f32::NAN; 4];
/// layer::input_grad_per_example(w, dz, masks, KeepProb::ONE, None,
///     MatMut::col_major(&mut dx, 2, 2)?)?;
/// assert_eq!(dx, [1.0, 0.0, 0.0, 2.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn input_grad_per_example<T: Element>(
    w: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    masks: MaskBatch<'_>,
    keep: KeepProb,
    out_masks: Option<MaskBatch<'_>>,
    mut dx: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    let m = dz.cols();
    check_batch("dz", n_out, m, dz.shape())?;
    check_batch("dx", n_in, m, dx.shape())?;
    check_masks("masks", n_in, m, masks)?;
    check_out_masks(n_out, m, out_masks)?;
    if n_in == 0 {
        // Nothing to write, however many examples.
        return Ok(());
    }
    for k in 0..m {
        if let (Some(dzk), Some(dxk)) = (dz.col(k), dx.reborrow_mut().col(k)) {
            let out = out_masks.map(|o| example_mask(o, k));
            input_grad_col(w, dzk, example_mask(masks, k), keep, out, dxk)?;
        }
    }
    Ok(())
}
