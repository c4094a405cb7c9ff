//! The one place the fuzz targets call `layer::*_batch` (the shared-mask mini-batch
//! operations) and `layer::ThinnedBatch`, so that a change of their signatures (a
//! caller-provided workspace, say) is made here once.

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

/// A `layer::ThinnedBatch` over `w` with a workspace capped as above, handed to `f`.
fn thinned<T: Element>(
    w: MatMut<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    m: usize,
    f: impl FnOnce(&mut layer::ThinnedBatch<'_, T>) -> Result<(), Error>,
) -> Result<(), Error> {
    let len = layer::thinned_workspace_len::<T>(w.rows(), w.cols(), m).min(1 << 22);
    let mut ws = std::vec![T::default(); len];
    f(&mut layer::ThinnedBatch::new(
        w, mask, keep, out_mask, &mut ws,
    )?)
}

/// `layer::ThinnedBatch::forward` (`w` is borrowed mutably by the step, never written).
#[allow(clippy::too_many_arguments)]
pub fn thinned_forward<T: Element>(
    w: MatMut<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    bias: Option<&[T]>,
    z: MatMut<'_, T>,
) -> Result<(), Error> {
    thinned(w, mask, keep, out_mask, x.cols(), |s| s.forward(x, bias, z))
}

/// `layer::ThinnedBatch::weight_grad` (`w` is not written).
#[allow(clippy::too_many_arguments)]
pub fn thinned_weight_grad<T: Element>(
    w: MatMut<'_, T>,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    dw: MatMut<'_, T>,
) -> Result<(), Error> {
    thinned(w, mask, keep, out_mask, x.cols(), |s| {
        s.weight_grad(dz, x, dw)
    })
}

/// `layer::ThinnedBatch::sgd_step` on `w`.
pub fn thinned_sgd_step<T: Element>(
    w: MatMut<'_, T>,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    lr: T,
) -> Result<(), Error> {
    thinned(w, mask, keep, out_mask, x.cols(), |s| s.sgd_step(dz, x, lr))
}

/// `layer::ThinnedBatch::input_grad` (`w` is not written).
pub fn thinned_input_grad<T: Element>(
    w: MatMut<'_, T>,
    dz: MatRef<'_, T>,
    mask: Mask<'_>,
    keep: KeepProb,
    out_mask: Option<Mask<'_>>,
    dx: MatMut<'_, T>,
) -> Result<(), Error> {
    thinned(w, mask, keep, out_mask, dz.cols(), |s| s.input_grad(dz, dx))
}
