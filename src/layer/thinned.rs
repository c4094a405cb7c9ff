//! A shared-mask batch step on a layer's kept weights, gathered once: [`ThinnedBatch`].

use super::{
    batch_workspace_len, bias_into, check_batch, check_len, check_out_mask, forward_batch,
    input_grad_batch, sgd_step_batch, weight_grad_batch,
};
use crate::arch::{DroppedRows, mm};
use crate::error::check_mask_len;
use crate::{Element, Error, KeepProb, Mask, MatMut, MatRef};

/// Workspace elements a [`ThinnedBatch`] needs for a layer of `n_out` outputs and `n_in`
/// inputs and batches of up to `m` examples.
///
/// Like [`batch_workspace_len`] it grows with each argument and never depends on the
/// masks, so a workspace that is accepted once is accepted with any mask.
///
/// It is room for the kept block of `W` (at most `n_out · n_in`), plus what the batch
/// operations need ([`batch_workspace_len`]) or the gathered `dZ` and `X` of the SGD step
/// (`(n_out + n_in) · m`), whichever is larger.
///
/// `const`, so it can size a static buffer. It saturates rather than overflowing.
///
/// ```
/// use bitdrop::layer::{batch_workspace_len, thinned_workspace_len};
///
/// let len = thinned_workspace_len::<f32>(512, 784, 64);
/// assert!(len >= batch_workspace_len::<f32>(512, 784, 64));
/// assert!(thinned_workspace_len::<f32>(512, 784, 32) <= len); // smaller batches fit
/// assert!(len >= 512 * 784); // the kept block of W, at most all of it
/// ```
pub const fn thinned_workspace_len<T: Element>(n_out: usize, n_in: usize, m: usize) -> usize {
    let ops = batch_workspace_len::<T>(n_out, n_in, m);
    let gathers = n_out.saturating_add(n_in).saturating_mul(m);
    let rest = if ops > gathers { ops } else { gathers };
    n_out.saturating_mul(n_in).saturating_add(rest)
}

/// One layer's training step on a mini-batch with a shared mask ("one thinned network per
/// step"), with the kept block of `W` gathered once and shared by the step's operations.
///
/// [`forward_batch`], [`input_grad_batch`] and [`sgd_step_batch`] each gather what they
/// need on their own: the forward pass and the input gradient both copy the kept columns
/// of `W`, and the SGD step scatters its update back into them. A `ThinnedBatch` copies
/// the kept block of `W` (kept columns, and kept rows with `out_mask`) into the workspace
/// once, when it is made; [`forward`](Self::forward) and
/// [`input_grad`](Self::input_grad) multiply with that copy, and
/// [`sgd_step`](Self::sgd_step) updates the copy in place and writes it back over the
/// kept block of `W`. That saves one pass over the kept weights in the forward pass and
/// in the input gradient, and turns the step's scattered add into a copy.
///
/// It borrows `W` mutably and the masks for as long as it lives, so neither can change
/// under it: make it before the layer's forward pass, keep it through the backward pass,
/// drop it after the step. Each method computes what the free function of the same name
/// computes, with the same untouched entries (dropped columns of `W`, dropped rows of `Z`,
/// exactly 0 in the dropped rows of `dX`); the copy of `W` stays equal to `W`'s kept block
/// through [`sgd_step`](Self::sgd_step), so any number of calls in any order work.
///
/// When every unit is kept (all-ones masks) nothing is gathered and each method is the
/// free function on `W` (with `keep = 1`, the GEMM on your matrices). `alloc` only: it
/// is an optimization of the matrixmultiply path; without `alloc` the free functions run
/// bitdrop's own kernels, which gather nothing.
///
/// The workspace holds [`thinned_workspace_len`]`(n_out, n_in, m)` elements for batches
/// of up to `m` examples; bitdrop allocates nothing (matrixmultiply's packing buffers
/// aside, see [the batch path](super#the-batch-path)).
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
///
/// let (n_out, n_in, m) = (2, 3, 2);
/// let mut w = [1.0f32; 6]; // column-major 2 x 3
/// let x = [1.0f32, f32::NAN, 2.0, 3.0, f32::NAN, 4.0]; // column-major 3 x 2
/// let mask = Mask::new(&[0b101], n_in)?; // input 1 dropped for the whole batch
/// let keep = KeepProb::new(0.5)?;
/// let mut ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(n_out, n_in, m)];
///
/// let mut step = layer::ThinnedBatch::new(MatMut::col_major(&mut w, n_out, n_in)?,
///     mask, keep, None, &mut ws)?;
/// let mut z = [0.0f32; 4];
/// step.forward(MatRef::col_major(&x, n_in, m)?, None, MatMut::col_major(&mut z, n_out, m)?)?;
/// assert_eq!(z, [6.0, 6.0, 14.0, 14.0]); // (1 + 2) / 0.5, (3 + 4) / 0.5
///
/// let dz = [1.0f32, 0.0, 0.0, 1.0];
/// let mut dx = [f32::NAN; 6];
/// step.input_grad(MatRef::col_major(&dz, n_out, m)?, MatMut::col_major(&mut dx, n_in, m)?)?;
/// assert_eq!(dx, [2.0, 0.0, 2.0, 2.0, 0.0, 2.0]);
///
/// step.sgd_step(MatRef::col_major(&dz, n_out, m)?, MatRef::col_major(&x, n_in, m)?, 0.25)?;
/// // The step borrows `w` until its last use.
/// assert_eq!(w, [0.5, -0.5, 1.0, 1.0, -0.0, -1.0]); // column 1 untouched
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub struct ThinnedBatch<'a, T> {
    w: MatMut<'a, T>,
    mask: Mask<'a>,
    keep: KeepProb,
    out_mask: Option<Mask<'a>>,
    /// The kept block of `w`, in `w`'s contiguous direction; `None` on the direct path.
    kept: Option<MatMut<'a, T>>,
    /// The workspace after the kept block (all of it on the direct path).
    workspace: &'a mut [T],
    /// The whole workspace's length, checked against each call's batch size.
    workspace_len: usize,
}

/// Shapes and counts, not the elements (`W` and the workspace can be megabytes).
///
/// ```
/// use bitdrop::{KeepProb, Mask, MatMut, layer};
///
/// let mut w = [0.0f32; 6];
/// let mut ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(2, 3, 1)];
/// let step = layer::ThinnedBatch::new(MatMut::row_major(&mut w, 2, 3)?,
///     Mask::new(&[0b011], 3)?, KeepProb::new(0.5)?, None, &mut ws)?;
/// assert!(format!("{step:?}").contains("kept: Some((2, 2))")); // 2 rows x 2 kept inputs
/// # Ok::<(), bitdrop::Error>(())
/// ```
impl<T: Element> core::fmt::Debug for ThinnedBatch<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThinnedBatch")
            .field("shape", &(self.w.rows(), self.w.cols()))
            .field("keep", &self.keep)
            .field("kept", &self.kept.as_ref().map(|k| (k.rows(), k.cols())))
            .field("workspace_len", &self.workspace_len)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Element> ThinnedBatch<'a, T> {
    /// Gathers the kept block of `w` (`n_out x n_in`, any layout): the columns of the
    /// inputs `mask` keeps, and with `out_mask` only the rows of the outputs it keeps.
    ///
    /// # Errors
    ///
    /// [`Error::MaskLength`] if `mask` does not have `n_in` units or `out_mask` `n_out`;
    /// [`Error::Workspace`] if `workspace` is shorter than
    /// [`thinned_workspace_len`]`(n_out, n_in, 0)`. Nothing is written then.
    ///
    /// ```
    /// use bitdrop::{Error, KeepProb, Mask, MatMut, layer::ThinnedBatch};
    ///
    /// let mut w = [0.0f64; 6];
    /// let mut ws = vec![0.0f64; 64];
    /// let step = ThinnedBatch::new(MatMut::row_major(&mut w, 2, 3)?, Mask::new(&[0b1], 2)?,
    ///     KeepProb::ONE, None, &mut ws);
    /// assert!(matches!(step, Err(Error::MaskLength { .. }))); // 3 inputs, 2 mask units
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn new(
        w: MatMut<'a, T>,
        mask: Mask<'a>,
        keep: KeepProb,
        out_mask: Option<Mask<'a>>,
        workspace: &'a mut [T],
    ) -> Result<Self, Error> {
        let (n_out, n_in) = w.shape();
        check_mask_len("mask", n_in, mask.len())?;
        check_out_mask("out_mask", n_out, out_mask)?;
        let expected = thinned_workspace_len::<T>(n_out, n_in, 0);
        let workspace_len = workspace.len();
        if workspace_len < expected {
            return Err(Error::Workspace {
                expected,
                found: workspace_len,
            });
        }
        let direct = mask.all_kept() && out_mask.is_none_or(|o| o.all_kept());
        let mut step = ThinnedBatch {
            w,
            mask,
            keep,
            out_mask,
            kept: None,
            workspace,
            workspace_len,
        };
        if !direct {
            let rows = out_mask.map_or(n_out, |o| o.count_kept());
            let (front, rest) =
                core::mem::take(&mut step.workspace).split_at_mut(rows * mask.count_kept());
            step.kept = Some(mm::gather_kept(
                step.w.reborrow(),
                out_mask,
                Some(mask),
                front,
            )?);
            step.workspace = rest;
        }
        Ok(step)
    }

    /// [`forward_batch`] of `x` (`n_in x m`) into `z` (`n_out x m`):
    /// `Z = W · (r ⊙ X / keep) + bias` on the kept outputs, multiplied with the gathered
    /// block of `W`.
    ///
    /// # Errors
    ///
    /// As [`forward_batch`]; [`Error::Workspace`] if the workspace is shorter than
    /// [`thinned_workspace_len`]`(n_out, n_in, m)`.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
    ///
    /// let mut w = [1.0f32, 10.0]; // 1 x 2
    /// let mut ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(1, 2, 1)];
    /// let mut step = layer::ThinnedBatch::new(MatMut::row_major(&mut w, 1, 2)?,
    ///     Mask::new(&[0b10], 2)?, KeepProb::new(0.5)?, None, &mut ws)?;
    /// let mut z = [0.0f32];
    /// step.forward(MatRef::col_major(&[f32::NAN, 3.0], 2, 1)?, Some(&[1.0]),
    ///     MatMut::col_major(&mut z, 1, 1)?)?;
    /// assert_eq!(z, [61.0]); // 10 · 3 / 0.5 + 1
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn forward(
        &mut self,
        x: MatRef<'_, T>,
        bias: Option<&[T]>,
        mut z: MatMut<'_, T>,
    ) -> Result<(), Error> {
        let (n_out, n_in) = self.w.shape();
        let m = x.cols();
        check_batch("x", n_in, m, x.shape())?;
        check_batch("z", n_out, m, z.shape())?;
        if let Some(b) = bias {
            check_len("bias", n_out, b.len())?;
        }
        self.check_workspace(m)?;
        let Some(kept) = &self.kept else {
            return forward_batch(
                self.w.reborrow(),
                x,
                self.mask,
                self.keep,
                self.out_mask,
                bias,
                z,
                self.workspace,
            );
        };
        if n_out == 0 {
            return Ok(());
        }
        let beta = bias_into(bias, self.out_mask, &mut z);
        mm::gemm_compact_a(
            z,
            self.keep.scale_as(),
            kept.reborrow(),
            x,
            beta,
            self.out_mask,
            Some(self.mask),
            None,
            DroppedRows::Untouched,
            self.workspace,
        )
    }

    /// [`input_grad_batch`] of `dz` (`n_out x m`) into `dx` (`n_in x m`):
    /// `dX = (Wᵀ dZ) / keep` in the kept rows, exactly 0 in the dropped ones, multiplied
    /// with the gathered block of `W`.
    ///
    /// # Errors
    ///
    /// As [`input_grad_batch`]; [`Error::Workspace`] if the workspace is shorter than
    /// [`thinned_workspace_len`]`(n_out, n_in, m)`.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
    ///
    /// let mut w = [1.0f64, 2.0]; // 1 x 2
    /// let mut ws = vec![0.0f64; layer::thinned_workspace_len::<f64>(1, 2, 2)];
    /// let mut step = layer::ThinnedBatch::new(MatMut::row_major(&mut w, 1, 2)?,
    ///     Mask::new(&[0b10], 2)?, KeepProb::ONE, None, &mut ws)?;
    /// let mut dx = [f64::NAN; 4];
    /// step.input_grad(MatRef::row_major(&[1.0, 10.0], 1, 2)?,
    ///     MatMut::row_major(&mut dx, 2, 2)?)?;
    /// assert_eq!(dx, [0.0, 0.0, 2.0, 20.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn input_grad(&mut self, dz: MatRef<'_, T>, dx: MatMut<'_, T>) -> Result<(), Error> {
        let (n_out, n_in) = self.w.shape();
        let m = dz.cols();
        check_batch("dz", n_out, m, dz.shape())?;
        check_batch("dx", n_in, m, dx.shape())?;
        self.check_workspace(m)?;
        let Some(kept) = &self.kept else {
            return input_grad_batch(
                self.w.reborrow(),
                dz,
                self.mask,
                self.keep,
                self.out_mask,
                dx,
                self.workspace,
            );
        };
        mm::gemm_compact_a(
            dx,
            self.keep.scale_as(),
            kept.reborrow().t(),
            dz,
            T::ZERO,
            Some(self.mask),
            self.out_mask,
            None,
            DroppedRows::Zero,
            self.workspace,
        )
    }

    /// [`weight_grad_batch`]: `dW[:,i] += dZ · X[i,:]ᵀ / keep` for kept `i` (and kept
    /// rows), for optimizers that want the gradient itself; it does not need the gathered
    /// weights.
    ///
    /// # Errors
    ///
    /// As [`weight_grad_batch`]; [`Error::Workspace`] if the workspace is shorter than
    /// [`thinned_workspace_len`]`(n_out, n_in, m)`.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
    ///
    /// let mut w = [0.0f32; 2];
    /// let mut ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(1, 2, 2)];
    /// let mut step = layer::ThinnedBatch::new(MatMut::row_major(&mut w, 1, 2)?,
    ///     Mask::new(&[0b01], 2)?, KeepProb::ONE, None, &mut ws)?;
    /// let mut dw = [0.0f32, -3.0];
    /// step.weight_grad(MatRef::row_major(&[1.0, 1.0], 1, 2)?,
    ///     MatRef::row_major(&[1.0, 2.0, f32::NAN, f32::NAN], 2, 2)?,
    ///     MatMut::row_major(&mut dw, 1, 2)?)?;
    /// assert_eq!(dw, [3.0, -3.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn weight_grad(
        &mut self,
        dz: MatRef<'_, T>,
        x: MatRef<'_, T>,
        dw: MatMut<'_, T>,
    ) -> Result<(), Error> {
        let (n_out, n_in) = self.w.shape();
        let m = x.cols();
        check_batch("x", n_in, m, x.shape())?;
        check_batch("dz", n_out, m, dz.shape())?;
        check_batch("dw", n_out, n_in, dw.shape())?;
        self.check_workspace(m)?;
        weight_grad_batch(
            dz,
            x,
            self.mask,
            self.keep,
            self.out_mask,
            dw,
            self.workspace,
        )
    }

    /// [`sgd_step_batch`]: `W[:,i] -= lr · dZ · X[i,:]ᵀ / keep` for kept `i` (and kept
    /// rows), applied to the gathered block, which is then copied over the kept block of
    /// `W`. Dropped entries of `W` are not written.
    ///
    /// # Errors
    ///
    /// As [`sgd_step_batch`]; [`Error::Workspace`] if the workspace is shorter than
    /// [`thinned_workspace_len`]`(n_out, n_in, m)`. Nothing is written then.
    ///
    /// ```
    /// use bitdrop::{KeepProb, Mask, MatMut, MatRef, layer};
    ///
    /// let mut w = [0.0f32, f32::NAN];
    /// let mut ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(1, 2, 2)];
    /// let mut step = layer::ThinnedBatch::new(MatMut::row_major(&mut w, 1, 2)?,
    ///     Mask::new(&[0b01], 2)?, KeepProb::ONE, None, &mut ws)?;
    /// step.sgd_step(MatRef::row_major(&[1.0, 1.0], 1, 2)?,
    ///     MatRef::row_major(&[1.0, 3.0, 5.0, 5.0], 2, 2)?, 0.5)?;
    /// assert_eq!(w[0], -2.0);
    /// assert!(w[1].is_nan()); // dropped column: not read, not written
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn sgd_step(&mut self, dz: MatRef<'_, T>, x: MatRef<'_, T>, lr: T) -> Result<(), Error> {
        let (n_out, n_in) = self.w.shape();
        let m = x.cols();
        check_batch("x", n_in, m, x.shape())?;
        check_batch("dz", n_out, m, dz.shape())?;
        self.check_workspace(m)?;
        let Some(kept) = &mut self.kept else {
            return sgd_step_batch(
                self.w.reborrow_mut(),
                dz,
                x,
                self.mask,
                self.keep,
                self.out_mask,
                lr,
                self.workspace,
            );
        };
        let alpha = -(lr * self.keep.scale_as());
        update_and_write_back(
            kept.reborrow_mut(),
            self.w.reborrow_mut(),
            alpha,
            dz,
            x,
            self.mask,
            self.out_mask,
            self.workspace,
        )
    }

    /// `Error::Workspace` unless the whole workspace fits a batch of `m`.
    fn check_workspace(&self, m: usize) -> Result<(), Error> {
        let (n_out, n_in) = self.w.shape();
        let expected = thinned_workspace_len::<T>(n_out, n_in, m);
        if self.workspace_len < expected {
            Err(Error::Workspace {
                expected,
                found: self.workspace_len,
            })
        } else {
            Ok(())
        }
    }
}

/// `K += alpha · dZ[O,:] · X[I,:]ᵀ` on the gathered block `K = W[O,I]`, then `W[O,I] = K`.
#[allow(clippy::too_many_arguments)]
fn update_and_write_back<T: Element>(
    mut kept: MatMut<'_, T>,
    w: MatMut<'_, T>,
    alpha: T,
    dz: MatRef<'_, T>,
    x: MatRef<'_, T>,
    mask: Mask<'_>,
    out_mask: Option<Mask<'_>>,
    workspace: &mut [T],
) -> Result<(), Error> {
    if x.cols() == 0 {
        // No examples: no term, and `W` is left as it is.
        return Ok(());
    }
    let out_mask = out_mask.filter(|o| !o.all_kept());
    let (dz_room, x_room) = workspace.split_at_mut(match out_mask {
        Some(o) => o.count_kept() * dz.cols(),
        None => 0,
    });
    let dz_kept = match out_mask {
        Some(_) => MatRef::from(mm::gather_kept(dz, out_mask, None, dz_room)?),
        None => dz,
    };
    let x_kept = mm::gather_kept(x.t(), None, Some(mask), x_room)?;
    mm::gemm_dense(
        kept.reborrow_mut(),
        alpha,
        dz_kept,
        MatRef::from(x_kept),
        T::ONE,
    )?;
    mm::scatter_kept(kept.reborrow(), w, out_mask, Some(mask))
}
