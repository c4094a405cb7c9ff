//! The one place the fuzz targets call `layer::*_batch` (the shared-mask mini-batch
//! operations), so that a change of their signatures (a caller-provided workspace, say)
//! is made here once.

use bitdrop::{Element, Error, KeepProb, Mask, MatMut, MatRef, layer};

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
    layer::forward_batch(w, x, mask, keep, out_mask, bias, z)
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
    layer::weight_grad_batch(dz, x, mask, keep, out_mask, dw)
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
    layer::sgd_step_batch(w, dz, x, mask, keep, out_mask, lr)
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
    layer::input_grad_batch(w, dz, mask, keep, out_mask, dx)
}
