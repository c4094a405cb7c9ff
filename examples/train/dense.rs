//! The dense baseline: the same training step done the way a framework does it. The
//! mask is multiplied into the activations (`ã = a ⊙ r / keep`, and `⊙ r / keep` again
//! on the way back), then every product is computed in full, dropped units included.
//!
//! Two dense engines, both on the same masked activations:
//! - `Engine::Bitdrop`: bitdrop's own kernels with no mask (`blas::gemv`/`ger` for one
//!   example, `blas::gemm` for a batch): the loops of the masked step, minus the skipping;
//! - `Engine::Matrixmultiply`: `matrixmultiply::sgemm` (packing, cache blocking, and
//!   AVX2/FMA micro-kernels chosen at run time). The weight update is one `sgemm` with
//!   `beta = 1`, so neither engine needs a `dW` buffer.

use bitdrop::{Error, MatMut, MatRef, blas};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::mlp::{Dropout, Masks, Mlp, bias_step, relu, softmax_xent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Bitdrop,
    Matrixmultiply,
}

impl Engine {
    pub fn describe(self) -> &'static str {
        match self {
            Engine::Bitdrop => "bitdrop kernels, no mask",
            Engine::Matrixmultiply => "matrixmultiply::sgemm",
        }
    }
}

/// A matrix operand of `sgemm`: `(slice, rows, cols, row_stride, col_stride)`.
type Operand<'a> = (&'a [f32], usize, usize, usize, usize);

/// `C = alpha · A · B + beta · C`, `C` column-major, with `matrixmultiply::sgemm`.
fn sgemm(
    alpha: f32,
    a: Operand<'_>,
    b: Operand<'_>,
    beta: f32,
    c: &mut [f32],
) -> Result<(), Error> {
    let (rows, inner, cols) = (a.1, a.2, b.2);
    // bitdrop's view constructors check what `sgemm` takes on trust: every element of
    // A, B and C at its strides lies inside its slice, and C maps distinct elements to
    // distinct places.
    MatRef::new(a.0, rows, inner, a.3, a.4)?;
    MatRef::new(b.0, b.1, cols, b.3, b.4)?;
    MatMut::col_major(&mut *c, rows, cols)?;
    if b.1 != inner {
        return Err(Error::Shape {
            arg: "b",
            expected: (inner, cols),
            found: (b.1, cols),
        });
    }
    // SAFETY: the three views were validated just above (in bounds; C column-major with
    // `rows` rows, so no two of its elements alias); `c` is a unique borrow, so it
    // overlaps neither `a` nor `b`; `beta = 0` would let sgemm ignore C's old contents,
    // which is allowed.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            inner,
            cols,
            alpha,
            a.0.as_ptr(),
            a.3 as isize,
            a.4 as isize,
            b.0.as_ptr(),
            b.3 as isize,
            b.4 as isize,
            beta,
            c.as_mut_ptr(),
            1,
            rows as isize,
        );
    }
    Ok(())
}

/// `z += W x̃` (z holds the bias); `x̃` is `n_in x m`, `z` is `n_out x m`.
fn forward(
    engine: Engine,
    w: &[f32],
    (n_out, n_in): (usize, usize),
    x: &[f32],
    m: usize,
    z: &mut [f32],
) -> Result<(), Error> {
    match engine {
        Engine::Bitdrop if m == 1 => blas::gemv(
            1.0,
            MatRef::col_major(w, n_out, n_in)?,
            x,
            None,
            1.0,
            z,
            None,
        ),
        Engine::Bitdrop => blas::gemm(
            1.0,
            MatRef::col_major(w, n_out, n_in)?,
            None,
            MatRef::col_major(x, n_in, m)?,
            1.0,
            MatMut::col_major(z, n_out, m)?,
            None,
            None,
        ),
        Engine::Matrixmultiply => sgemm(
            1.0,
            (w, n_out, n_in, 1, n_out),
            (x, n_in, m, 1, n_in),
            1.0,
            z,
        ),
    }
}

/// `dx̃ = Wᵀ dz`.
fn input_grad(
    engine: Engine,
    w: &[f32],
    (n_out, n_in): (usize, usize),
    dz: &[f32],
    m: usize,
    dx: &mut [f32],
) -> Result<(), Error> {
    match engine {
        Engine::Bitdrop if m == 1 => blas::gemv(
            1.0,
            MatRef::col_major(w, n_out, n_in)?.t(),
            dz,
            None,
            0.0,
            dx,
            None,
        ),
        Engine::Bitdrop => blas::gemm(
            1.0,
            MatRef::col_major(w, n_out, n_in)?.t(),
            None,
            MatRef::col_major(dz, n_out, m)?,
            0.0,
            MatMut::col_major(dx, n_in, m)?,
            None,
            None,
        ),
        Engine::Matrixmultiply => sgemm(
            1.0,
            (w, n_in, n_out, n_out, 1),
            (dz, n_out, m, 1, n_out),
            0.0,
            dx,
        ),
    }
}

/// `W -= lr · dz x̃ᵀ`.
#[allow(clippy::too_many_arguments)]
fn update(
    engine: Engine,
    w: &mut [f32],
    (n_out, n_in): (usize, usize),
    dz: &[f32],
    x: &[f32],
    m: usize,
    lr: f32,
) -> Result<(), Error> {
    match engine {
        Engine::Bitdrop if m == 1 => {
            blas::ger(-lr, dz, None, x, None, MatMut::col_major(w, n_out, n_in)?)
        }
        Engine::Bitdrop => blas::gemm(
            -lr,
            MatRef::col_major(dz, n_out, m)?,
            None,
            MatRef::col_major(x, n_in, m)?.t(),
            1.0,
            MatMut::col_major(w, n_out, n_in)?,
            None,
            None,
        ),
        Engine::Matrixmultiply => {
            sgemm(-lr, (dz, n_out, m, 1, n_out), (x, m, n_in, n_in, 1), 1.0, w)
        }
    }
}

/// The buffers of the dense step, allocated once for batches of up to `cap` examples.
pub struct DenseStep {
    engine: Engine,
    dropout: Dropout,
    /// `acts[l]`: the layer inputs before the mask (`acts[0]` the input batch).
    acts: Vec<Vec<f32>>,
    /// `scaled[l]`: `acts[l] ⊙ r / keep`, what layer `l` multiplies.
    scaled: Vec<Vec<f32>>,
    /// `factor[l]`: the mask of layer `l`'s inputs as numbers, `r / keep`, per example.
    factor: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    masks: Masks,
    rng: Xoshiro256PlusPlus,
}

impl DenseStep {
    pub fn new(
        net: &Mlp,
        engine: Engine,
        cap: usize,
        dropout: Dropout,
        rng: Xoshiro256PlusPlus,
    ) -> DenseStep {
        let per_unit = |sizes: &[usize]| sizes.iter().map(|&n| vec![0.0; n * cap]).collect();
        let inputs = &net.sizes[..net.layers()];
        DenseStep {
            engine,
            dropout,
            acts: per_unit(&net.sizes),
            scaled: per_unit(inputs),
            factor: per_unit(inputs),
            grads: per_unit(&net.sizes[1..]),
            masks: Masks::new(net, dropout.mode, cap),
            rng,
        }
    }

    pub fn input_mut(&mut self) -> &mut [f32] {
        &mut self.acts[0]
    }

    /// The step of [`crate::mlp::Trainer::step`], densely: same masks from the same RNG
    /// stream, same arithmetic up to rounding, every product in full.
    pub fn step(&mut self, net: &mut Mlp, labels: &[u16], lr: f32) -> Result<f32, Error> {
        let m = labels.len();
        let layers = net.layers();
        let d = self.dropout;
        self.masks.sample(&mut self.rng, &d, m)?;
        for l in 0..layers {
            let (n_out, n_in) = net.shape(l);
            // The mask as numbers, multiplied into the activations.
            let scale = d.keep(l).scale() as f32;
            let factor = &mut self.factor[l][..n_in * m];
            for (k, col) in factor.chunks_mut(n_in).enumerate() {
                let words = self.masks.words(l, k);
                for (units, &word) in col.chunks_mut(64).zip(words) {
                    for (b, f) in units.iter_mut().enumerate() {
                        *f = (word >> b & 1) as f32 * scale;
                    }
                }
            }
            let scaled = &mut self.scaled[l][..n_in * m];
            for ((s, &a), &f) in scaled.iter_mut().zip(&self.acts[l]).zip(&*factor) {
                *s = a * f;
            }
            let z = &mut self.acts[l + 1][..n_out * m];
            for col in z.chunks_mut(n_out) {
                col.copy_from_slice(&net.b[l]);
            }
            forward(self.engine, &net.w[l], (n_out, n_in), scaled, m, z)?;
            if l + 1 < layers {
                relu(z);
            }
        }
        let classes = net.sizes[layers];
        let loss = softmax_xent(
            &self.acts[layers][..classes * m],
            labels,
            classes,
            &mut self.grads[layers - 1][..classes * m],
        );
        for l in (0..layers).rev() {
            let (n_out, n_in) = net.shape(l);
            let (below, here) = self.grads.split_at_mut(l);
            let dz = &here[0][..n_out * m];
            if l > 0 {
                let dx = &mut below[l - 1][..n_in * m];
                input_grad(self.engine, &net.w[l], (n_out, n_in), dz, m, dx)?;
                // Back through the mask and the ReLU.
                let (h, f) = (&self.acts[l], &self.factor[l]);
                for ((g, &a), &f) in dx.iter_mut().zip(h).zip(f) {
                    *g = if a > 0.0 { *g * f } else { 0.0 };
                }
            }
            let x = &self.scaled[l][..n_in * m];
            update(self.engine, &mut net.w[l], (n_out, n_in), dz, x, m, lr)?;
            bias_step(&mut net.b[l], dz, lr);
        }
        Ok(loss)
    }
}
