//! The dense oracle: the dropout formulas written literally, one element at a time.
//!
//! Every fast kernel is tested against these functions, the fuzz targets compare with
//! them, and they are public so that users can check the kernels on their own data.
//! They are slow on purpose: no SIMD, no blocking, no cleverness.
//!
//! With `W` of shape `n_out x n_in`, an input mask `r` (kept units scaled by `1 / keep`),
//! and an output mask `s`:
//!
//! | function | formula, for kept `j` (output) and kept `i` (input) |
//! |---|---|
//! | [`forward`] | `z_j = Σ_i W[j,i] · (x_i / keep) + b_j` |
//! | [`weight_grad`] | `dW[j,i] += dz_j · (x_i / keep)` |
//! | [`input_grad`] | `dx_i = (Σ_j W[j,i] · dz_j) / keep`, and `dx_i = 0` for dropped `i` |
//! | [`sgd_step`] | `W[j,i] -= lr · (dz_j · (x_i / keep))` |
//!
//! A dropped unit is *skipped*, not multiplied by zero: a dropped `x_i`, `dz_j` or column
//! of `W` is never read, so a NaN there changes nothing, and an output entry that the
//! formula does not cover (a dropped `z_j`, a dropped row or column of `dW` or `W`) is not
//! written. With `in_mask = None` every input is kept and `keep` is not used; with
//! `out_mask = None` every output is kept.
//!
//! The `_batch` functions take `m` examples as the columns of `x`, `dz`, `z` and `dx`
//! (`n x m` matrices) and apply the single-example formula to each column in order;
//! [`weight_grad_batch`] and [`sgd_step_batch`] accumulate over the examples.

use crate::error::{check_len, check_mask_len, check_shape};
use crate::mat::{column, column_mut};
use crate::{BatchMask, Element, Error, KeepProb, Mask, MatMut, MatRef};

/// Whether unit `i` is kept under an optional mask.
fn kept(mask: Option<Mask<'_>>, i: usize) -> bool {
    mask.is_none_or(|m| m.is_kept(i))
}

/// `x_i / keep` when an input mask is applied, `x_i` when there is none.
fn thinned<T: Element>(x: T, in_mask: Option<Mask<'_>>, keep: KeepProb) -> T {
    match in_mask {
        Some(_) => x / T::from_f64(keep.get()),
        None => x,
    }
}

fn check_masks(
    n_in: usize,
    n_out: usize,
    in_mask: Option<Mask<'_>>,
    out_mask: Option<Mask<'_>>,
) -> Result<(), Error> {
    if let Some(m) = in_mask {
        check_mask_len("in_mask", n_in, m.len())?;
    }
    if let Some(m) = out_mask {
        check_mask_len("out_mask", n_out, m.len())?;
    }
    Ok(())
}

fn forward_col<T: Element>(
    w: MatRef<'_, T>,
    x: MatRef<'_, T>,
    in_mask: Option<Mask<'_>>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    bias: Option<&[T]>,
    mut z: MatMut<'_, T>,
) {
    for j in 0..w.rows() {
        if !kept(out_mask, j) {
            continue;
        }
        let mut sum = T::ZERO;
        for i in 0..w.cols() {
            if kept(in_mask, i) {
                sum += w.at(j, i) * thinned(x.at(i, 0), in_mask, keep);
            }
        }
        *z.at_mut(j, 0) = match bias {
            Some(b) => sum + b[j],
            None => sum,
        };
    }
}

fn weight_grad_col<T: Element>(
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    in_mask: Option<Mask<'_>>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    dw: &mut MatMut<'_, T>,
) {
    for j in 0..dw.rows() {
        for i in 0..dw.cols() {
            if kept(out_mask, j) && kept(in_mask, i) {
                *dw.at_mut(j, i) += dz.at(j, 0) * thinned(x.at(i, 0), in_mask, keep);
            }
        }
    }
}

fn input_grad_col<T: Element>(
    w: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    in_mask: Option<Mask<'_>>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    mut dx: MatMut<'_, T>,
) {
    for i in 0..w.cols() {
        if !kept(in_mask, i) {
            *dx.at_mut(i, 0) = T::ZERO;
            continue;
        }
        let mut sum = T::ZERO;
        for j in 0..w.rows() {
            if kept(out_mask, j) {
                sum += w.at(j, i) * dz.at(j, 0);
            }
        }
        *dx.at_mut(i, 0) = thinned(sum, in_mask, keep);
    }
}

fn sgd_step_col<T: Element>(
    w: &mut MatMut<'_, T>,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    in_mask: Option<Mask<'_>>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    lr: T,
) {
    for j in 0..w.rows() {
        for i in 0..w.cols() {
            if kept(out_mask, j) && kept(in_mask, i) {
                *w.at_mut(j, i) -= lr * (dz.at(j, 0) * thinned(x.at(i, 0), in_mask, keep));
            }
        }
    }
}

/// Forward pass of one example: `z_j = Σ_i W[j,i] · (x_i / keep) + b_j` over kept `i`,
/// for kept `j`; a dropped `z_j` is not written.
///
/// # Errors
///
/// [`Error::Length`] if `x`, `bias` or `z` do not match `w`'s shape;
/// [`Error::MaskLength`] if a mask does not cover its side of `w`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatRef, reference};
///
/// let w = MatRef::row_major(&[1.0f64, 10.0, 100.0], 1, 3)?;
/// let mask = Mask::new(&[0b101], 3)?; // unit 1 dropped
/// let mut z = [0.0];
/// reference::forward(w, &[1.0, f64::NAN, 1.0], Some(mask), KeepProb::new(0.5)?, None, None, &mut z)?;
/// assert_eq!(z, [202.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn forward<T: Element>(
    w: MatRef<'_, T>,
    x: &[T],
    in_mask: Option<Mask<'_>>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    bias: Option<&[T]>,
    z: &mut [T],
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    check_len("x", n_in, x.len())?;
    check_len("z", n_out, z.len())?;
    if let Some(b) = bias {
        check_len("bias", n_out, b.len())?;
    }
    check_masks(n_in, n_out, in_mask, out_mask)?;
    forward_col(w, column(x), in_mask, keep, out_mask, bias, column_mut(z));
    Ok(())
}

/// Weight gradient of one example, accumulated: `dW[j,i] += dz_j · (x_i / keep)` for
/// kept `j` and kept `i`; other entries of `dw` are not written.
///
/// # Errors
///
/// [`Error::Length`] if `dz` or `x` do not match `dw`'s shape;
/// [`Error::MaskLength`] if a mask does not cover its side of `dw`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, reference};
///
/// let mut dw = [0.0f32; 4];
/// let mask = Mask::new(&[0b10], 2)?; // input unit 0 dropped
/// reference::weight_grad(&[1.0, 2.0], &[5.0, 3.0], Some(mask), KeepProb::new(0.5)?, None,
///     MatMut::row_major(&mut dw, 2, 2)?)?;
/// assert_eq!(dw, [0.0, 6.0, 0.0, 12.0]); // column 0 untouched
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn weight_grad<T: Element>(
    dz: &[T],
    x: &[T],
    in_mask: Option<Mask<'_>>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    mut dw: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = dw.shape();
    check_len("dz", n_out, dz.len())?;
    check_len("x", n_in, x.len())?;
    check_masks(n_in, n_out, in_mask, out_mask)?;
    weight_grad_col(column(dz), column(x), in_mask, keep, out_mask, &mut dw);
    Ok(())
}

/// Input gradient of one example: `dx_i = (Σ_j W[j,i] · dz_j) / keep` over kept `j`, for
/// kept `i`; `dx_i = 0` for dropped `i`.
///
/// # Errors
///
/// [`Error::Length`] if `dz` or `dx` do not match `w`'s shape;
/// [`Error::MaskLength`] if a mask does not cover its side of `w`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatRef, reference};
///
/// let w = MatRef::row_major(&[1.0f64, 2.0], 1, 2)?;
/// let mut dx = [f64::NAN; 2];
/// reference::input_grad(w, &[3.0], Some(Mask::new(&[0b01], 2)?), KeepProb::new(0.5)?, None, &mut dx)?;
/// assert_eq!(dx, [6.0, 0.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn input_grad<T: Element>(
    w: MatRef<'_, T>,
    dz: &[T],
    in_mask: Option<Mask<'_>>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    dx: &mut [T],
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    check_len("dz", n_out, dz.len())?;
    check_len("dx", n_in, dx.len())?;
    check_masks(n_in, n_out, in_mask, out_mask)?;
    input_grad_col(w, column(dz), in_mask, keep, out_mask, column_mut(dx));
    Ok(())
}

/// Plain SGD step of one example: `W[j,i] -= lr · (dz_j · (x_i / keep))` for kept `j`
/// and kept `i`; other entries of `w` are not written.
///
/// # Errors
///
/// [`Error::Length`] if `dz` or `x` do not match `w`'s shape;
/// [`Error::MaskLength`] if a mask does not cover its side of `w`.
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, reference};
///
/// let mut w = [1.0f32, 1.0];
/// let mask = Mask::new(&[0b01], 2)?;
/// reference::sgd_step(MatMut::row_major(&mut w, 1, 2)?, &[1.0], &[2.0, 2.0], Some(mask),
///     KeepProb::new(0.5)?, None, 0.25)?;
/// assert_eq!(w, [0.0, 1.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn sgd_step<T: Element>(
    mut w: MatMut<'_, T>,
    dz: &[T],
    x: &[T],
    in_mask: Option<Mask<'_>>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    lr: T,
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    check_len("dz", n_out, dz.len())?;
    check_len("x", n_in, x.len())?;
    check_masks(n_in, n_out, in_mask, out_mask)?;
    sgd_step_col(&mut w, column(dz), column(x), in_mask, keep, out_mask, lr);
    Ok(())
}

fn check_batch_mask(
    arg: &'static str,
    units: usize,
    m: usize,
    mask: Option<BatchMask<'_>>,
) -> Result<(), Error> {
    match mask {
        None => Ok(()),
        Some(BatchMask::Shared(mask)) => check_mask_len(arg, units, mask.len()),
        Some(BatchMask::PerExample(masks)) => {
            check_shape(arg, (units, m), (masks.mask_len(), masks.count()))
        }
    }
}

/// The mask of example `k`: always `Some` after [`check_batch_mask`] for `k < m`.
fn example(mask: Option<BatchMask<'_>>, k: usize) -> Option<Mask<'_>> {
    mask.and_then(|m| m.example(k))
}

fn check_batch_masks(
    n_in: usize,
    n_out: usize,
    m: usize,
    in_mask: Option<BatchMask<'_>>,
    out_mask: Option<BatchMask<'_>>,
) -> Result<(), Error> {
    check_batch_mask("in_mask", n_in, m, in_mask)?;
    check_batch_mask("out_mask", n_out, m, out_mask)
}

/// [`forward`] for each column of `x` (`n_in x m`) into the same column of `z`
/// (`n_out x m`).
///
/// # Errors
///
/// [`Error::Shape`] if `x` or `z` do not match `w` and each other, or a per-example mask
/// batch is not `units x m`; [`Error::Length`] for `bias`; [`Error::MaskLength`] for a
/// shared mask of the wrong length.
///
/// ```
/// use bitdrop::{BatchMask, KeepProb, Mask, MatMut, MatRef, reference};
///
/// let w = MatRef::row_major(&[1.0f32, 1.0], 1, 2)?;
/// let x = MatRef::row_major(&[1.0f32, 2.0, 3.0, 4.0], 2, 2)?; // examples (1, 3), (2, 4)
/// let mask = BatchMask::Shared(Mask::new(&[0b10], 2)?);
/// let mut z = [0.0f32; 2];
/// reference::forward_batch(w, x, Some(mask), KeepProb::new(0.5)?, None, None,
///     MatMut::row_major(&mut z, 1, 2)?)?;
/// assert_eq!(z, [6.0, 8.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn forward_batch<T: Element>(
    w: MatRef<'_, T>,
    x: MatRef<'_, T>,
    in_mask: Option<BatchMask<'_>>,
    keep: KeepProb,
    out_mask: Option<BatchMask<'_>>,
    bias: Option<&[T]>,
    mut z: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    let m = x.cols();
    check_shape("x", (n_in, m), x.shape())?;
    check_shape("z", (n_out, m), z.shape())?;
    if let Some(b) = bias {
        check_len("bias", n_out, b.len())?;
    }
    check_batch_masks(n_in, n_out, m, in_mask, out_mask)?;
    if n_out == 0 {
        // Nothing to write, however many examples (`m` may be `usize::MAX`).
        return Ok(());
    }
    for k in 0..m {
        if let (Some(xk), Some(zk)) = (x.col(k), z.reborrow_mut().col(k)) {
            let (in_k, out_k) = (example(in_mask, k), example(out_mask, k));
            forward_col(w, xk, in_k, keep, out_k, bias, zk);
        }
    }
    Ok(())
}

/// [`weight_grad`] accumulated over the columns of `dz` (`n_out x m`) and `x`
/// (`n_in x m`): `dW += Σ_k dz_k ã_kᵀ`, example 0 first.
///
/// # Errors
///
/// [`Error::Shape`] if `dz` or `x` do not match `dw` and each other, or a per-example mask
/// batch is not `units x m`; [`Error::MaskLength`] for a shared mask of the wrong length.
///
/// ```
/// use bitdrop::{BatchMask, KeepProb, MaskBatch, MatMut, MatRef, reference};
///
/// let dz = MatRef::row_major(&[1.0f64, 1.0], 1, 2)?;
/// let x = MatRef::row_major(&[1.0f64, 2.0, 3.0, 4.0], 2, 2)?;
/// // Example 0 keeps unit 0 only, example 1 keeps unit 1 only.
/// let masks = BatchMask::PerExample(MaskBatch::new(&[0b01, 0b10], 2, 2)?);
/// let mut dw = [0.0f64; 2];
/// reference::weight_grad_batch(dz, x, Some(masks), KeepProb::new(0.5)?, None,
///     MatMut::row_major(&mut dw, 1, 2)?)?;
/// assert_eq!(dw, [2.0, 8.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn weight_grad_batch<T: Element>(
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    in_mask: Option<BatchMask<'_>>,
    keep: KeepProb,
    out_mask: Option<BatchMask<'_>>,
    mut dw: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = dw.shape();
    let m = x.cols();
    check_shape("x", (n_in, m), x.shape())?;
    check_shape("dz", (n_out, m), dz.shape())?;
    check_batch_masks(n_in, n_out, m, in_mask, out_mask)?;
    if n_out == 0 || n_in == 0 {
        // Nothing to write, however many examples (`m` may be `usize::MAX`).
        return Ok(());
    }
    for k in 0..m {
        if let (Some(dzk), Some(xk)) = (dz.col(k), x.col(k)) {
            let (in_k, out_k) = (example(in_mask, k), example(out_mask, k));
            weight_grad_col(dzk, xk, in_k, keep, out_k, &mut dw);
        }
    }
    Ok(())
}

/// [`input_grad`] for each column of `dz` (`n_out x m`) into the same column of `dx`
/// (`n_in x m`).
///
/// # Errors
///
/// [`Error::Shape`] if `dz` or `dx` do not match `w` and each other, or a per-example mask
/// batch is not `units x m`; [`Error::MaskLength`] for a shared mask of the wrong length.
///
/// ```
/// use bitdrop::{BatchMask, KeepProb, Mask, MatMut, MatRef, reference};
///
/// let w = MatRef::row_major(&[1.0f32, 2.0], 1, 2)?;
/// let dz = MatRef::row_major(&[1.0f32, 10.0], 1, 2)?;
/// let mut dx = [0.0f32; 4];
/// reference::input_grad_batch(w, dz, Some(BatchMask::Shared(Mask::new(&[0b10], 2)?)),
///     KeepProb::ONE, None, MatMut::row_major(&mut dx, 2, 2)?)?;
/// assert_eq!(dx, [0.0, 0.0, 2.0, 20.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn input_grad_batch<T: Element>(
    w: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    in_mask: Option<BatchMask<'_>>,
    keep: KeepProb,
    out_mask: Option<BatchMask<'_>>,
    mut dx: MatMut<'_, T>,
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    let m = dz.cols();
    check_shape("dz", (n_out, m), dz.shape())?;
    check_shape("dx", (n_in, m), dx.shape())?;
    check_batch_masks(n_in, n_out, m, in_mask, out_mask)?;
    if n_in == 0 {
        // Nothing to write, however many examples (`m` may be `usize::MAX`).
        return Ok(());
    }
    for k in 0..m {
        if let (Some(dzk), Some(dxk)) = (dz.col(k), dx.reborrow_mut().col(k)) {
            let (in_k, out_k) = (example(in_mask, k), example(out_mask, k));
            input_grad_col(w, dzk, in_k, keep, out_k, dxk);
        }
    }
    Ok(())
}

/// [`sgd_step`] for each example in turn: `W -= lr · dz_k ã_kᵀ` for `k = 0, 1, …`.
/// (Average over the batch by folding `1 / m` into `lr`.)
///
/// # Errors
///
/// [`Error::Shape`] if `dz` or `x` do not match `w` and each other, or a per-example mask
/// batch is not `units x m`; [`Error::MaskLength`] for a shared mask of the wrong length.
///
/// ```
/// use bitdrop::{KeepProb, MatMut, MatRef, reference};
///
/// let mut w = [0.0f64];
/// let dz = MatRef::row_major(&[1.0, 2.0], 1, 2)?;
/// let x = MatRef::row_major(&[3.0, 4.0], 1, 2)?;
/// reference::sgd_step_batch(MatMut::row_major(&mut w, 1, 1)?, dz, x, None, KeepProb::ONE, None, 0.5)?;
/// assert_eq!(w, [-5.5]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn sgd_step_batch<T: Element>(
    mut w: MatMut<'_, T>,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    in_mask: Option<BatchMask<'_>>,
    keep: KeepProb,
    out_mask: Option<BatchMask<'_>>,
    lr: T,
) -> Result<(), Error> {
    let (n_out, n_in) = w.shape();
    let m = x.cols();
    check_shape("x", (n_in, m), x.shape())?;
    check_shape("dz", (n_out, m), dz.shape())?;
    check_batch_masks(n_in, n_out, m, in_mask, out_mask)?;
    if n_out == 0 || n_in == 0 {
        // Nothing to write, however many examples (`m` may be `usize::MAX`).
        return Ok(());
    }
    for k in 0..m {
        if let (Some(dzk), Some(xk)) = (dz.col(k), x.col(k)) {
            let (in_k, out_k) = (example(in_mask, k), example(out_mask, k));
            sgd_step_col(&mut w, dzk, xk, in_k, keep, out_k, lr);
        }
    }
    Ok(())
}
