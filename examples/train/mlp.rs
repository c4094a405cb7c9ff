//! The network and its training step on bitdrop's masked kernels.
//!
//! Layer `l` has weights `W_l` (`n_{l+1} x n_l`, column-major: each input unit owns a
//! contiguous column, skipped whole when the unit is dropped) and a bias. Activations,
//! pre-activations and gradients of a mini-batch are `n x m` column-major matrices, one
//! example per column. Dropout masks live on the inputs of the layers: mask `l` covers the
//! `n_l` inputs of layer `l` (the network's input for `l = 0`, hidden layer `l` after it).

use bitdrop::{
    Error, KeepProb, Mask, MaskBatch, MaskBatchMut, MaskMut, MatMut, MatRef, layer, sample,
    words_for,
};
use rand_core::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::cli::MaskMode;
use crate::data::{Dataset, between};

/// Weights and biases.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Units per layer, input first: `[64, 512, 512, 10]`.
    pub sizes: Vec<usize>,
    /// `w[l]`: `sizes[l + 1] x sizes[l]`, column-major.
    pub w: Vec<Vec<f32>>,
    pub b: Vec<Vec<f32>>,
}

impl Mlp {
    /// He-uniform weights for the ReLU layers, Glorot-uniform for the output layer, zero
    /// biases.
    pub fn new(sizes: &[usize], rng: &mut impl Rng) -> Mlp {
        let layers = sizes.len() - 1;
        let mut w = Vec::with_capacity(layers);
        let mut b = Vec::with_capacity(layers);
        for l in 0..layers {
            let (n_in, n_out) = (sizes[l], sizes[l + 1]);
            let limit = if l + 1 < layers {
                (6.0 / n_in as f32).sqrt()
            } else {
                (6.0 / (n_in + n_out) as f32).sqrt()
            };
            w.push(
                (0..n_in * n_out)
                    .map(|_| between(rng, -limit, limit))
                    .collect(),
            );
            b.push(vec![0.0; n_out]);
        }
        Mlp {
            sizes: sizes.to_vec(),
            w,
            b,
        }
    }

    pub fn layers(&self) -> usize {
        self.w.len()
    }

    /// `(n_out, n_in)` of layer `l`.
    pub fn shape(&self, l: usize) -> (usize, usize) {
        (self.sizes[l + 1], self.sizes[l])
    }

    /// Largest difference between two networks' weights and biases.
    pub fn max_abs_diff(&self, other: &Mlp) -> f32 {
        let pairs = self
            .w
            .iter()
            .zip(&other.w)
            .chain(self.b.iter().zip(&other.b));
        pairs
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0.0, f32::max)
    }
}

/// The dropout of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    pub keep_input: KeepProb,
    pub keep_hidden: KeepProb,
    pub mode: MaskMode,
    /// Also hand each hidden layer's mask to the layer below as its output mask.
    pub out_masks: bool,
}

impl Dropout {
    /// No dropout: every mask all ones, `keep = 1`.
    pub fn none(mode: MaskMode) -> Dropout {
        Dropout {
            keep_input: KeepProb::ONE,
            keep_hidden: KeepProb::ONE,
            mode,
            out_masks: false,
        }
    }

    /// The keep probability of the inputs of layer `l`.
    pub fn keep(&self, l: usize) -> KeepProb {
        if l == 0 {
            self.keep_input
        } else {
            self.keep_hidden
        }
    }
}

// ---------------------------------------------------------------------------------------
// Masks

/// Mask storage for the inputs of every layer, for batches of up to `cap` examples.
pub struct Masks {
    sizes: Vec<usize>,
    mode: MaskMode,
    words: Vec<Vec<u64>>,
}

/// The masks one layer sees in one step.
#[derive(Debug, Clone, Copy)]
pub enum LayerMasks<'a> {
    Shared {
        input: Mask<'a>,
        output: Option<Mask<'a>>,
    },
    PerExample {
        input: MaskBatch<'a>,
        output: Option<MaskBatch<'a>>,
    },
}

impl<'a> LayerMasks<'a> {
    /// The masks of example `k` (for the single-example kernels).
    fn example(self, k: usize) -> (Mask<'a>, Option<Mask<'a>>) {
        match self {
            LayerMasks::Shared { input, output } => (input, output),
            // An out-of-range `k` gives an empty mask, which the kernels refuse with an
            // `Error`; it does not happen here.
            LayerMasks::PerExample { input, output } => (
                input.get(k).unwrap_or_default(),
                output.map(|o| o.get(k).unwrap_or_default()),
            ),
        }
    }
}

impl Masks {
    /// Storage for the masks over the inputs of every layer of `net`: `words_for(n_l)`
    /// words per mask; one mask per layer, or `cap` of them for per-example masks.
    pub fn new(net: &Mlp, mode: MaskMode, cap: usize) -> Masks {
        let per_layer = match mode {
            MaskMode::PerBatch => 1,
            MaskMode::PerExample => cap,
        };
        let words = (0..net.layers())
            .map(|l| vec![0u64; words_for(net.sizes[l]) * per_layer])
            .collect();
        Masks {
            sizes: net.sizes.clone(),
            mode,
            words,
        }
    }

    /// Draws fresh masks for a batch of `m` examples.
    pub fn sample(
        &mut self,
        rng: &mut Xoshiro256PlusPlus,
        dropout: &Dropout,
        m: usize,
    ) -> Result<(), Error> {
        for (l, words) in self.words.iter_mut().enumerate() {
            let (n, keep) = (self.sizes[l], dropout.keep(l));
            match self.mode {
                MaskMode::PerBatch => {
                    let mut mask = MaskMut::new(&mut words[..words_for(n)], n)?;
                    sample::bernoulli(rng, keep, &mut mask);
                }
                MaskMode::PerExample => {
                    let mut masks = MaskBatchMut::new(&mut words[..words_for(n) * m], n, m)?;
                    sample::bernoulli_batch(rng, keep, &mut masks);
                }
            }
        }
        Ok(())
    }

    /// The input mask of layer `l` (and, with `out_masks`, its output mask: the input
    /// mask of layer `l + 1`; the last layer has none) for a batch of `m` examples.
    pub fn layer(&self, l: usize, m: usize, out_masks: bool) -> Result<LayerMasks<'_>, Error> {
        let has_out = out_masks && l + 1 < self.words.len();
        Ok(match self.mode {
            MaskMode::PerBatch => LayerMasks::Shared {
                input: self.mask(l)?,
                output: if has_out {
                    Some(self.mask(l + 1)?)
                } else {
                    None
                },
            },
            MaskMode::PerExample => LayerMasks::PerExample {
                input: self.batch(l, m)?,
                output: if has_out {
                    Some(self.batch(l + 1, m)?)
                } else {
                    None
                },
            },
        })
    }

    /// The shared input mask of layer `l` and, with `out_masks`, its output mask (the
    /// input mask of layer `l + 1`; the last layer has none). Per-batch masks only.
    #[cfg(feature = "alloc")]
    pub fn shared(&self, l: usize, out_masks: bool) -> Result<(Mask<'_>, Option<Mask<'_>>), Error> {
        let out = if out_masks && l + 1 < self.words.len() {
            Some(self.mask(l + 1)?)
        } else {
            None
        };
        Ok((self.mask(l)?, out))
    }

    fn mask(&self, l: usize) -> Result<Mask<'_>, Error> {
        let n = self.sizes[l];
        Mask::new(&self.words[l][..words_for(n)], n)
    }

    fn batch(&self, l: usize, m: usize) -> Result<MaskBatch<'_>, Error> {
        let n = self.sizes[l];
        MaskBatch::new(&self.words[l][..words_for(n) * m], n, m)
    }

    /// The mask words of the inputs of layer `l` in example `k`.
    pub fn words(&self, l: usize, k: usize) -> &[u64] {
        let per_mask = words_for(self.sizes[l]);
        let offset = match self.mode {
            MaskMode::PerBatch => 0,
            MaskMode::PerExample => k * per_mask,
        };
        &self.words[l][offset..offset + per_mask]
    }
}

// ---------------------------------------------------------------------------------------
// One helper per layer operation. The shared-mask `_batch` kernels take a trailing
// `workspace` (sized by `layer::batch_workspace_len`, allocated once: see `workspace_for`).
// A batch of one goes to the single-example kernels, which skip the per-column set-up of
// the batch kernels.

/// A workspace for the `_batch` kernels on every layer of `net` at batches of up to `cap`:
/// the length grows with each dimension, so the largest layer's suffices.
pub fn workspace_for(net: &Mlp, cap: usize) -> Vec<f32> {
    let len = (0..net.layers())
        .map(|l| {
            let (n_out, n_in) = net.shape(l);
            layer::batch_workspace_len::<f32>(n_out, n_in, cap)
        })
        .max()
        .unwrap_or(0);
    vec![0.0; len]
}

/// `z = W (r ⊙ x / keep) + b`; `x` is `n_in x m` and `z` is `n_out x m`, column-major.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    w: &[f32],
    (n_out, n_in): (usize, usize),
    x: &[f32],
    m: usize,
    masks: LayerMasks<'_>,
    keep: KeepProb,
    bias: &[f32],
    z: &mut [f32],
    workspace: &mut [f32],
) -> Result<(), Error> {
    let w = MatRef::col_major(w, n_out, n_in)?;
    if m == 1 {
        return match masks.example(0) {
            (input, None) => layer::forward(w, x, input, keep, Some(bias), z),
            (input, Some(out)) => layer::forward_both(w, x, input, keep, out, Some(bias), z),
        };
    }
    let x = MatRef::col_major(x, n_in, m)?;
    let z = MatMut::col_major(z, n_out, m)?;
    match masks {
        LayerMasks::Shared { input, output } => {
            layer::forward_batch(w, x, input, keep, output, Some(bias), z, workspace)
        }
        LayerMasks::PerExample { input, output } => {
            layer::forward_per_example(w, x, input, keep, output, Some(bias), z)
        }
    }
}

/// `dx = (Wᵀ dz) ⊙ r / keep`, exactly 0 for dropped inputs.
#[allow(clippy::too_many_arguments)]
pub fn input_grad(
    w: &[f32],
    (n_out, n_in): (usize, usize),
    dz: &[f32],
    m: usize,
    masks: LayerMasks<'_>,
    keep: KeepProb,
    dx: &mut [f32],
    workspace: &mut [f32],
) -> Result<(), Error> {
    let w = MatRef::col_major(w, n_out, n_in)?;
    if m == 1 {
        return match masks.example(0) {
            (input, None) => layer::input_grad(w, dz, input, keep, dx),
            (input, Some(out)) => layer::input_grad_both(w, dz, input, keep, out, dx),
        };
    }
    let dz = MatRef::col_major(dz, n_out, m)?;
    let dx = MatMut::col_major(dx, n_in, m)?;
    match masks {
        LayerMasks::Shared { input, output } => {
            layer::input_grad_batch(w, dz, input, keep, output, dx, workspace)
        }
        LayerMasks::PerExample { input, output } => {
            layer::input_grad_per_example(w, dz, input, keep, output, dx)
        }
    }
}

/// `W -= lr · dz (r ⊙ x / keep)ᵀ`, fused: no `dW` buffer; dropped columns untouched.
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    w: &mut [f32],
    (n_out, n_in): (usize, usize),
    dz: &[f32],
    x: &[f32],
    m: usize,
    masks: LayerMasks<'_>,
    keep: KeepProb,
    lr: f32,
    workspace: &mut [f32],
) -> Result<(), Error> {
    let w = MatMut::col_major(w, n_out, n_in)?;
    if m == 1 {
        return match masks.example(0) {
            (input, None) => layer::sgd_step(w, dz, x, input, keep, lr),
            (input, Some(out)) => layer::sgd_step_both(w, dz, x, input, keep, out, lr),
        };
    }
    let dz = MatRef::col_major(dz, n_out, m)?;
    let x = MatRef::col_major(x, n_in, m)?;
    match masks {
        LayerMasks::Shared { input, output } => {
            layer::sgd_step_batch(w, dz, x, input, keep, output, lr, workspace)
        }
        LayerMasks::PerExample { input, output } => {
            layer::sgd_step_per_example(w, dz, x, input, keep, output, lr)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pieces shared with the dense baseline

pub fn relu(z: &mut [f32]) {
    z.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// `dx ⊙= relu'(z)`, with `h = relu(z)` standing in for `z` (`h > 0` iff `z > 0`).
pub fn relu_backward(dx: &mut [f32], h: &[f32]) {
    // A select, not a branch: the sign pattern of `h` is random.
    for (d, &a) in dx.iter_mut().zip(h) {
        *d = if a > 0.0 { *d } else { 0.0 };
    }
}

/// Softmax cross-entropy of each column of `logits` (`classes x m`): writes
/// `dz = (softmax - onehot) / m` and returns the summed loss.
pub fn softmax_xent(logits: &[f32], labels: &[u16], classes: usize, dz: &mut [f32]) -> f32 {
    let m = labels.len();
    let scale = 1.0 / m as f32;
    let mut loss = 0.0;
    for ((z, d), &label) in logits
        .chunks(classes)
        .zip(dz.chunks_mut(classes))
        .zip(labels)
    {
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for (dj, &zj) in d.iter_mut().zip(z) {
            *dj = (zj - max).exp();
            sum += *dj;
        }
        let label = label as usize;
        loss += sum.ln() - (z[label] - max);
        for dj in d.iter_mut() {
            *dj *= scale / sum;
        }
        d[label] -= scale;
    }
    loss
}

/// `b -= lr · Σ_k dz[:, k]`.
pub fn bias_step(b: &mut [f32], dz: &[f32], lr: f32) {
    for col in dz.chunks(b.len()) {
        for (bj, &d) in b.iter_mut().zip(col) {
            *bj -= lr * d;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Training

/// The buffers of a training step, allocated once for batches of up to `cap` examples.
pub struct Trainer {
    cap: usize,
    dropout: Dropout,
    /// `acts[0]`: the input batch; `acts[l]`, `l > 0`: hidden layer `l` (ReLU applied) or
    /// the logits.
    acts: Vec<Vec<f32>>,
    /// `grads[l]`: `dz` of layer `l`.
    grads: Vec<Vec<f32>>,
    masks: Masks,
    /// For the `_batch` kernels.
    workspace: Vec<f32>,
    /// One per layer for its `layer::ThinnedBatch` (per-batch masks, batches above one;
    /// `alloc`, the matrixmultiply path).
    #[cfg(feature = "alloc")]
    thinned: Vec<Vec<f32>>,
    rng: Xoshiro256PlusPlus,
}

impl Trainer {
    pub fn new(net: &Mlp, cap: usize, dropout: Dropout, rng: Xoshiro256PlusPlus) -> Trainer {
        Trainer {
            cap,
            dropout,
            acts: net.sizes.iter().map(|&n| vec![0.0; n * cap]).collect(),
            grads: net.sizes[1..].iter().map(|&n| vec![0.0; n * cap]).collect(),
            masks: Masks::new(net, dropout.mode, cap),
            workspace: workspace_for(net, cap),
            #[cfg(feature = "alloc")]
            thinned: if dropout.mode == MaskMode::PerBatch && cap > 1 {
                (0..net.layers())
                    .map(|l| {
                        let (n_out, n_in) = net.shape(l);
                        vec![0.0; layer::thinned_workspace_len::<f32>(n_out, n_in, cap)]
                    })
                    .collect()
            } else {
                Vec::new()
            },
            rng,
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The input batch, to fill: example `k` at `[k * n_0..][..n_0]`.
    pub fn input_mut(&mut self) -> &mut [f32] {
        &mut self.acts[0]
    }

    /// One SGD step with dropout on the first `labels.len()` examples of the input batch;
    /// returns their summed loss (with dropout active).
    pub fn step(&mut self, net: &mut Mlp, labels: &[u16], lr: f32) -> Result<f32, Error> {
        let m = labels.len();
        let layers = net.layers();
        let d = self.dropout;
        self.masks.sample(&mut self.rng, &d, m)?;
        #[cfg(feature = "alloc")]
        if d.mode == MaskMode::PerBatch && m > 1 {
            return thinned_step(
                0,
                &net.sizes,
                &mut net.w,
                &mut net.b,
                &mut self.thinned,
                &mut self.acts,
                &mut self.grads,
                &self.masks,
                &d,
                labels,
                lr,
            );
        }
        let masks = &self.masks;
        for l in 0..layers {
            let (n_out, n_in) = net.shape(l);
            let (below, above) = self.acts.split_at_mut(l + 1);
            let z = &mut above[0][..n_out * m];
            let lm = masks.layer(l, m, d.out_masks)?;
            forward(
                &net.w[l],
                (n_out, n_in),
                &below[l][..n_in * m],
                m,
                lm,
                d.keep(l),
                &net.b[l],
                z,
                &mut self.workspace,
            )?;
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
            let lm = masks.layer(l, m, d.out_masks)?;
            let (below, here) = self.grads.split_at_mut(l);
            let dz = &here[0][..n_out * m];
            let x = &self.acts[l][..n_in * m];
            if l > 0 {
                let dx = &mut below[l - 1][..n_in * m];
                input_grad(
                    &net.w[l],
                    (n_out, n_in),
                    dz,
                    m,
                    lm,
                    d.keep(l),
                    dx,
                    &mut self.workspace,
                )?;
                relu_backward(dx, x);
            }
            sgd_step(
                &mut net.w[l],
                (n_out, n_in),
                dz,
                x,
                m,
                lm,
                d.keep(l),
                lr,
                &mut self.workspace,
            )?;
            bias_step(&mut net.b[l], dz, lr);
        }
        Ok(loss)
    }
}

/// Layers `l..` of a step with per-batch masks, one `layer::ThinnedBatch` per layer: layer
/// `l` gathers its kept weights once, runs its forward pass, hands the layers above to
/// the recursion (which leaves this layer's `dz` in `grads[l]`), then runs its input
/// gradient and SGD step on the same gathered weights. The recursion keeps each layer's
/// step alive across the layers above it without allocating. Returns the summed loss.
#[cfg(feature = "alloc")]
#[allow(clippy::too_many_arguments)]
fn thinned_step(
    l: usize,
    sizes: &[usize],
    w: &mut [Vec<f32>],
    b: &mut [Vec<f32>],
    workspaces: &mut [Vec<f32>],
    acts: &mut [Vec<f32>],
    grads: &mut [Vec<f32>],
    masks: &Masks,
    d: &Dropout,
    labels: &[u16],
    lr: f32,
) -> Result<f32, Error> {
    let m = labels.len();
    let layers = sizes.len() - 1;
    let (Some((w_l, w_above)), Some((b_l, b_above)), Some((ws_l, ws_above))) = (
        w.split_first_mut(),
        b.split_first_mut(),
        workspaces.split_first_mut(),
    ) else {
        // Above the last layer: the loss, and its gradient as the last layer's `dz`.
        let classes = sizes[layers];
        let dz = &mut grads[layers - 1][..classes * m];
        return Ok(softmax_xent(
            &acts[layers][..classes * m],
            labels,
            classes,
            dz,
        ));
    };
    let (n_out, n_in) = (sizes[l + 1], sizes[l]);
    let (input, output) = masks.shared(l, d.out_masks)?;
    let w_l = MatMut::col_major(w_l, n_out, n_in)?;
    let mut step = layer::ThinnedBatch::new(w_l, input, d.keep(l), output, ws_l)?;
    {
        let (below, above) = acts.split_at_mut(l + 1);
        let x = MatRef::col_major(&below[l][..n_in * m], n_in, m)?;
        let z = &mut above[0][..n_out * m];
        step.forward(x, Some(b_l), MatMut::col_major(z, n_out, m)?)?;
        if l + 1 < layers {
            relu(z);
        }
    }
    let loss = thinned_step(
        l + 1,
        sizes,
        w_above,
        b_above,
        ws_above,
        acts,
        grads,
        masks,
        d,
        labels,
        lr,
    )?;
    let (below, here) = grads.split_at_mut(l);
    let dz = &here[0][..n_out * m];
    let x = &acts[l][..n_in * m];
    if l > 0 {
        let dx = &mut below[l - 1][..n_in * m];
        step.input_grad(
            MatRef::col_major(dz, n_out, m)?,
            MatMut::col_major(dx, n_in, m)?,
        )?;
        relu_backward(dx, x);
    }
    step.sgd_step(
        MatRef::col_major(dz, n_out, m)?,
        MatRef::col_major(x, n_in, m)?,
        lr,
    )?;
    bias_step(b_l, dz, lr);
    Ok(loss)
}

/// Full-network forward passes (no dropout: inverted dropout needs no change at test
/// time) in batches of up to `cap`, with the same kernels under an all-ones mask.
pub struct Evaluator {
    cap: usize,
    acts: Vec<Vec<f32>>,
    ones: Vec<Vec<u64>>,
    workspace: Vec<f32>,
}

impl Evaluator {
    pub fn new(net: &Mlp, cap: usize) -> Evaluator {
        let ones = net.sizes[..net.layers()]
            .iter()
            .map(|&n| {
                let mut words = vec![0u64; words_for(n)];
                if let Ok(mut mask) = MaskMut::new(&mut words, n) {
                    mask.fill(true);
                }
                words
            })
            .collect();
        Evaluator {
            cap,
            acts: net.sizes.iter().map(|&n| vec![0.0; n * cap]).collect(),
            ones,
            workspace: workspace_for(net, cap),
        }
    }

    /// The share of `data` that `net` classifies right.
    pub fn accuracy(&mut self, net: &Mlp, data: &Dataset) -> Result<f64, Error> {
        let layers = net.layers();
        let (f, classes) = (net.sizes[0], net.sizes[layers]);
        let mut correct = 0;
        for start in (0..data.len()).step_by(self.cap) {
            let m = self.cap.min(data.len() - start);
            self.acts[0][..f * m].copy_from_slice(&data.x[start * f..(start + m) * f]);
            for l in 0..layers {
                let (n_out, n_in) = net.shape(l);
                let all = LayerMasks::Shared {
                    input: Mask::new(&self.ones[l], n_in)?,
                    output: None,
                };
                let (below, above) = self.acts.split_at_mut(l + 1);
                let z = &mut above[0][..n_out * m];
                forward(
                    &net.w[l],
                    (n_out, n_in),
                    &below[l][..n_in * m],
                    m,
                    all,
                    KeepProb::ONE,
                    &net.b[l],
                    z,
                    &mut self.workspace,
                )?;
                if l + 1 < layers {
                    relu(z);
                }
            }
            let logits = &self.acts[layers][..classes * m];
            for (z, &label) in logits.chunks(classes).zip(&data.y[start..start + m]) {
                correct += usize::from(argmax(z) == label as usize);
            }
        }
        Ok(correct as f64 / data.len().max(1) as f64)
    }
}

pub fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = j;
        }
    }
    best
}
