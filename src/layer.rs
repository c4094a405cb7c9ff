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
//! - A mask per example (PyTorch's `nn.Dropout`): the `_per_example` variants, one
//!   masked single-example kernel per example; store `x` and `dz` column-major so each
//!   example is contiguous. For large batches a dense matrix product on the masked
//!   input ([`dropout`] it first) is the faster choice: per-example masks leave no whole
//!   column to skip.
//!
//! Every function checks all shapes, lengths and mask lengths first and returns
//! [`Error`] without writing anything on a mismatch.

use crate::error::{check_len, check_mask_len, check_shape};
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

/// Writes exactly 0 into the rows of `dx` whose input unit is dropped.
fn zero_dropped<T: Element>(mask: Mask<'_>, dx: &mut MatMut<'_, T>) {
    for i in 0..dx.rows() {
        if !mask.is_kept(i) {
            for k in 0..dx.cols() {
                *dx.at_mut(i, k) = T::ZERO;
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
    arch::gemv(
        dx.reborrow_mut(),
        scale,
        w.t(),
        dz,
        T::ZERO,
        Some(mask),
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
/// for dropped `i`; column `i` of `w` is never read for a dropped `i`.
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

/// Forward pass of a mini-batch with one mask shared by all examples:
/// `Z = W · (r ⊙ X / keep) + bias` (the bias added to every column).
///
/// `x` is `n_in x m` and `z` is `n_out x m`, one example per column, any layout.
/// Dropped inputs skip column `i` of `w` and row `i` of `x` entirely; with `out_mask`,
/// dropped outputs skip row `j` of `w` and leave row `j` of `z` untouched.
///
/// # Errors
///
/// [`Error::Shape`] if `x` is not `n_in x m` or `z` not `n_out x m` (`m = x.cols()`);
/// [`Error::Length`] for `bias`; [`Error::MaskLength`] for the masks.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
///
/// let w = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
/// let x = MatRef::col_major(&[1.0f32, f32::NAN, 3.0, f32::NAN], 2, 2)?; // 2 examples
/// let mask = Mask::new(&[0b01], 2)?; // input 1 dropped for the whole batch
/// let mut z = [0.0f32; 2];
/// layer::forward_batch(w, x, mask, KeepProb::new(0.5)?, None, None,
///     MatMut::row_major(&mut z, 1, 2)?)?;
/// assert_eq!(z, [2.0, 6.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn forward_batch<T: Element>(
    w: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
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
    check_mask_len("mask", n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out_mask)?;
    if n_out == 0 {
        // Nothing to write, however many examples (`m` may be `usize::MAX` then).
        return Ok(());
    }
    let beta = match bias {
        Some(b) => {
            for k in 0..m {
                if let Some(mut zk) = z.reborrow_mut().col(k) {
                    write_bias(b, out_mask, &mut zk);
                }
            }
            T::ONE
        }
        None => T::ZERO,
    };
    let scale = keep.scale_as();
    arch::gemm(z, scale, w, x, beta, out_mask, Some(mask), None)
}

/// Weight gradient of a mini-batch with a shared mask, accumulated:
/// `dW[:,i] += dZ · X[i,:]ᵀ / keep` for kept `i` (the batched `dW = dZ·Ãᵀ`); column `i`
/// of `dw` is not written for a dropped `i`, nor row `j` for a dropped output.
///
/// `dz` is `n_out x m`, `x` is `n_in x m`. The work is `keep · n_out · n_in · m`.
///
/// # Errors
///
/// [`Error::Shape`] if `dz` is not `n_out x m` or `x` not `n_in x m`
/// (`m = x.cols()`, `dw` is `n_out x n_in`); [`Error::MaskLength`] for the masks.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
///
/// let dz = MatRef::row_major(&[1.0f64, 1.0], 1, 2)?;
/// let x = MatRef::row_major(&[1.0f64, 2.0, f64::NAN, f64::NAN], 2, 2)?;
/// let mask = Mask::new(&[0b01], 2)?;
/// let mut dw = [0.0f64, -3.0];
/// layer::weight_grad_batch(dz, x, mask, KeepProb::ONE, None, MatMut::row_major(&mut dw, 1, 2)?)?;
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
) -> Result<(), Error> {
    let alpha = keep.scale_as();
    weight_update_batch(dz, x, mask, out_mask, alpha, dw)
}

/// Fused SGD step of a mini-batch with a shared mask: `W[:,i] -= lr · dZ · X[i,:]ᵀ /
/// keep` for kept `i` (the sum over the batch: fold `1 / m` into `lr` to average).
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
/// layer::sgd_step_batch(MatMut::row_major(&mut w, 1, 2)?, dz, x, Mask::new(&[0b01], 2)?,
///     KeepProb::ONE, None, 0.5)?;
/// assert_eq!(w, [-2.0, 0.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn sgd_step_batch<T: Element>(
    w: MatMut<'_, T>,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    lr: T,
) -> Result<(), Error> {
    let alpha = -(lr * keep.scale_as());
    weight_update_batch(dz, x, mask, out_mask, alpha, w)
}

/// `A += alpha · dZ · (r ⊙ X)ᵀ` on kept rows and columns.
fn weight_update_batch<T: Element>(
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    out: Option<Mask<'_>>,
    alpha: T,
    a: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = a.shape();
    let m = x.cols();
    check_batch("x", n_in, m, x.shape())?;
    check_batch("dz", n_out, m, dz.shape())?;
    check_mask_len("mask", n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out)?;
    arch::gemm(a, alpha, dz, x.t(), T::ONE, out, None, Some(mask))
}

/// Input gradient of a mini-batch with a shared mask: `dX[i,:] = (Wᵀ dZ)[i,:] / keep`
/// for kept `i`, exactly 0 in the rows of dropped units; column `i` of `w` is never
/// read for a dropped `i`, nor row `j` of `w` and `dZ` for a dropped output.
///
/// # Errors
///
/// [`Error::Shape`] if `dz` is not `n_out x m` or `dx` not `n_in x m`
/// (`m = dz.cols()`); [`Error::MaskLength`] for the masks.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
///
/// let w = MatRef::row_major(&[1.0f64, 2.0], 1, 2)?;
/// let dz = MatRef::row_major(&[1.0f64, 10.0], 1, 2)?;
/// let mut dx = [f64::NAN; 4];
/// layer::input_grad_batch(w, dz, Mask::new(&[0b10], 2)?, KeepProb::ONE, None,
///     MatMut::row_major(&mut dx, 2, 2)?)?;
/// assert_eq!(dx, [0.0, 0.0, 2.0, 20.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn input_grad_batch<T: Element>(
    w: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    mut dx: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    let m = dz.cols();
    check_batch("dz", n_out, m, dz.shape())?;
    check_batch("dx", n_in, m, dx.shape())?;
    check_mask_len("mask", n_in, mask.len())?;
    check_out_mask("out_mask", n_out, out_mask)?;
    let scale = keep.scale_as();
    arch::gemm(
        dx.reborrow_mut(),
        scale,
        w.t(),
        dz,
        T::ZERO,
        Some(mask),
        out_mask,
        None,
    )?;
    zero_dropped(mask, &mut dx);
    Ok(())
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
