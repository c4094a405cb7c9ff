//! The one place the fuzz targets call `layer::*_batch` (the shared-mask mini-batch
//! operations), so that a change of their signatures (a caller-provided workspace, say)
//! is made here once.

use std::vec::Vec;

use bitdrop::{Element, Error, KeepProb, Mask, MatMut, MatRef, layer};

/// The workspace the batch operations ask for, capped at 2^22 elements: broadcast views
/// can describe astronomically many examples, and a capped workspace then makes the call
/// return `Error::Workspace` rather than the target run out of memory.
fn workspace<T: Element>(n_out: usize, n_in: usize, m: usize) -> Vec<T> {
    let len = layer::batch_workspace_len::<T>(n_out, n_in, m).min(1 << 22);
    std::vec![T::default(); len]
}

/// `layer::forward_batch`.
pub fn forward<T: Element>(
    w: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    bias: Option<&[T]>,
    z: MatMut<'_, T>,
) -> Result<(), Error> {
    let mut ws = workspace::<T>(w.rows(), w.cols(), x.cols());
    layer::forward_batch(w, x, mask, keep, out_mask, bias, z, &mut ws)
}

/// `layer::weight_grad_batch`.
pub fn weight_grad<T: Element>(
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    dw: MatMut<'_, T>,
) -> Result<(), Error> {
    let mut ws = workspace::<T>(dw.rows(), dw.cols(), x.cols());
    layer::weight_grad_batch(dz, x, mask, keep, out_mask, dw, &mut ws)
}

/// `layer::sgd_step_batch`.
pub fn sgd_step<T: Element>(
    w: MatMut<'_, T>,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    lr: T,
) -> Result<(), Error> {
    let mut ws = workspace::<T>(w.rows(), w.cols(), x.cols());
    layer::sgd_step_batch(w, dz, x, mask, keep, out_mask, lr, &mut ws)
}

/// `layer::input_grad_batch`.
pub fn input_grad<T: Element>(
    w: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    dx: MatMut<'_, T>,
) -> Result<(), Error> {
    let mut ws = workspace::<T>(w.rows(), w.cols(), dz.cols());
    layer::input_grad_batch(w, dz, mask, keep, out_mask, dx, &mut ws)
}
