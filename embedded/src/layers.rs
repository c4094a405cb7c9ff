//! Every single-example layer operation against the dense oracle `bitdrop::reference`,
//! on static buffers.
//!
//! Each case draws an input mask (and, for the `_both` variants, an output mask) with
//! the sampler, fills a matrix and vectors with random values in `[-1, 1)`, and then
//! gives the kernel copies in which every entry it must not read is NaN (dropped `x_i`,
//! dropped `dz_j`, dropped columns and rows of `W`) and every output entry it must not
//! write holds a signalling-NaN sentinel. The reference gets the clean values.
//!
//! - Kept outputs agree with the reference within `2 (n + 4) ε Σ|products|` (`n` terms
//!   summed, `ε = f32::EPSILON`).
//! - Skipped outputs agree with the reference bitwise: untouched entries still hold the
//!   sentinel, and `input_grad`'s dropped `dx_i` are exactly `+0.0`.

use bitdrop::{KeepProb, Mask, MaskMut, MatMut, MatRef, layer, reference, sample, words_for};

use crate::{Report, TestRng, rng, uniform};

/// The largest matrix of the cases, in elements.
const MAX_MAT: usize = 64 * 7;
/// The longest vector.
const MAX_VEC: usize = 65;
const MASK_WORDS: usize = words_for(MAX_VEC);

/// `(n_out, n_in)`: single entries, word tails on either side, a whole word.
const SHAPES: [(usize, usize); 7] = [(1, 1), (2, 3), (5, 65), (65, 5), (7, 64), (64, 7), (9, 33)];
const KEEPS: [f64; 4] = [0.5, 0.8, 0.25, 1.0];
const LR: f32 = 0.125;

/// An entry that must stay bitwise untouched: a signalling NaN, which any arithmetic
/// would quieten (or replace by the default NaN), so a write-back shows.
const SENTINEL: u32 = 0x7f80_beef;

/// The static buffers of one case.
pub struct Buffers {
    /// The kernel's matrix (poisoned `W`, or `dW`/`W` to update).
    mat_k: [f32; MAX_MAT],
    /// The reference's matrix.
    mat_r: [f32; MAX_MAT],
    /// An output matrix before the update.
    mat_0: [f32; MAX_MAT],
    x: [f32; MAX_VEC],
    x_k: [f32; MAX_VEC],
    dz: [f32; MAX_VEC],
    dz_k: [f32; MAX_VEC],
    bias: [f32; MAX_VEC],
    out_k: [f32; MAX_VEC],
    out_r: [f32; MAX_VEC],
    in_words: [u64; MASK_WORDS],
    out_words: [u64; MASK_WORDS],
}

impl Buffers {
    /// Zeroed buffers (a `static` initializer).
    pub const fn new() -> Buffers {
        Buffers {
            mat_k: [0.0; MAX_MAT],
            mat_r: [0.0; MAX_MAT],
            mat_0: [0.0; MAX_MAT],
            x: [0.0; MAX_VEC],
            x_k: [0.0; MAX_VEC],
            dz: [0.0; MAX_VEC],
            dz_k: [0.0; MAX_VEC],
            bias: [0.0; MAX_VEC],
            out_k: [0.0; MAX_VEC],
            out_r: [0.0; MAX_VEC],
            in_words: [0; MASK_WORDS],
            out_words: [0; MASK_WORDS],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

/// The layer operations under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    /// `layer::forward` / `forward_both`.
    Forward,
    /// `layer::weight_grad` / `weight_grad_both`.
    WeightGrad,
    /// `layer::input_grad` / `input_grad_both`.
    InputGrad,
    /// `layer::sgd_step` / `sgd_step_both`.
    SgdStep,
}

impl Op {
    fn name(self, both: bool) -> &'static str {
        match (self, both) {
            (Op::Forward, false) => "layer::forward",
            (Op::Forward, true) => "layer::forward_both",
            (Op::WeightGrad, false) => "layer::weight_grad",
            (Op::WeightGrad, true) => "layer::weight_grad_both",
            (Op::InputGrad, false) => "layer::input_grad",
            (Op::InputGrad, true) => "layer::input_grad_both",
            (Op::SgdStep, false) => "layer::sgd_step",
            (Op::SgdStep, true) => "layer::sgd_step_both",
        }
    }
}

/// One case.
#[derive(Clone, Copy, Debug)]
struct Case {
    op: Op,
    both: bool,
    n_out: usize,
    n_in: usize,
    keep: f64,
    col_major: bool,
    bias: bool,
    seed: u64,
}

impl Case {
    fn idx(&self, j: usize, i: usize) -> usize {
        if self.col_major {
            j + i * self.n_out
        } else {
            j * self.n_in + i
        }
    }
}

/// The first disagreement of a case.
#[derive(Debug)]
struct Mismatch {
    what: &'static str,
    j: usize,
    i: usize,
    got: f32,
    want: f32,
    tol: f32,
    error: Option<bitdrop::Error>,
}

/// Runs every operation in every shape, keep probability and layout; one pass or fail
/// line per operation.
pub fn run(report: &mut Report, buf: &mut Buffers) {
    for both in [false, true] {
        for op in [Op::Forward, Op::WeightGrad, Op::InputGrad, Op::SgdStep] {
            run_op(report, buf, op, both);
        }
    }
}

fn run_op(report: &mut Report, buf: &mut Buffers, op: Op, both: bool) {
    let mut cases = 0u32;
    let mut first: Option<(Case, Mismatch)> = None;
    let mut failed = 0u32;
    let mut seed = 0;
    for &(n_out, n_in) in &SHAPES {
        for &keep in &KEEPS {
            for col_major in [true, false] {
                let biases: &[bool] = if op == Op::Forward {
                    &[false, true]
                } else {
                    &[false]
                };
                for &bias in biases {
                    seed += 1;
                    let case = Case {
                        op,
                        both,
                        n_out,
                        n_in,
                        keep,
                        col_major,
                        bias,
                        seed,
                    };
                    cases += 1;
                    if let Err(m) = run_case(&case, buf) {
                        failed += 1;
                        if first.is_none() {
                            first = Some((case, m));
                        }
                    }
                }
            }
        }
    }
    let name = op.name(both);
    match first {
        None => report.pass(format_args!(
            "{name} = reference in {cases} cases (7 shapes up to 65 units, keep 0.25/0.5/0.8/1, col/row-major); skipped entries bitwise"
        )),
        Some((c, Mismatch { what, error: Some(e), .. })) => report.fail(format_args!(
            "{name}: {failed} of {cases} cases fail; first: {}x{} keep {}: {what} returned Err({e})",
            c.n_out, c.n_in, c.keep
        )),
        Some((c, m)) => report.fail(format_args!(
            "{name}: {failed} of {cases} cases differ; first: {}x{} keep {} {} {}: {} [{}, {}] = {:e} ({:#010x}), reference {:e} ({:#010x}), tolerance {:e}",
            c.n_out,
            c.n_in,
            c.keep,
            if c.col_major { "col-major" } else { "row-major" },
            if c.bias { "bias" } else { "" },
            m.what,
            m.j,
            m.i,
            m.got,
            m.got.to_bits(),
            m.want,
            m.want.to_bits(),
            m.tol
        )),
    }
}

fn fill_mask<'w>(rng: &mut TestRng, keep: KeepProb, words: &'w mut [u64], len: usize) -> Mask<'w> {
    // A mask takes exactly `words_for(len)` words, and `MaskMut::new` rejects set bits
    // past `len`: clear what an earlier, longer mask left there.
    let words = &mut words[..words_for(len)];
    words.fill(0);
    match MaskMut::new(words, len) {
        Ok(mut m) => {
            sample::bernoulli(rng, keep, &mut m);
            Mask::from(m)
        }
        Err(_) => Mask::empty(),
    }
}

/// `Σ ε`-style bound: `2 (n + 4) ε · sum_abs`.
fn tolerance(n_terms: usize, sum_abs: f32) -> f32 {
    2.0 * (n_terms as f32 + 4.0) * f32::EPSILON * sum_abs + f32::MIN_POSITIVE
}

/// Compares one output entry: `kept` ones within `tol`, skipped ones bitwise; the
/// reference's skipped entries must hold `skipped_bits` (the sentinel, or +0.0).
fn compare(
    what: &'static str,
    (j, i): (usize, usize),
    kept: bool,
    got: f32,
    want: f32,
    tol: f32,
    skipped_bits: u32,
) -> Result<(), Mismatch> {
    let ok = if kept {
        !got.is_nan() && libm::fabsf(got - want) <= tol
    } else {
        got.to_bits() == want.to_bits() && want.to_bits() == skipped_bits
    };
    if ok {
        Ok(())
    } else {
        Err(Mismatch {
            what,
            j,
            i,
            got,
            want,
            tol,
            error: None,
        })
    }
}

fn view<'a>(c: &Case, data: &'a [f32]) -> Result<MatRef<'a, f32>, bitdrop::Error> {
    if c.col_major {
        MatRef::col_major(data, c.n_out, c.n_in)
    } else {
        MatRef::row_major(data, c.n_out, c.n_in)
    }
}

fn view_mut<'a>(c: &Case, data: &'a mut [f32]) -> Result<MatMut<'a, f32>, bitdrop::Error> {
    if c.col_major {
        MatMut::col_major(data, c.n_out, c.n_in)
    } else {
        MatMut::row_major(data, c.n_out, c.n_in)
    }
}

#[allow(clippy::needless_range_loop)] // (j, i) index several buffers and layouts at once
fn run_case(c: &Case, b: &mut Buffers) -> Result<(), Mismatch> {
    let (n_out, n_in) = (c.n_out, c.n_in);
    let n_mat = n_out * n_in;
    let keep = KeepProb::new(c.keep).unwrap_or(KeepProb::ONE);
    let scale = (1.0 / c.keep) as f32;
    let sentinel = f32::from_bits(SENTINEL);
    let nan = f32::NAN;
    let mut rng = rng(0xb17d_0000 + c.seed);

    // Masks: the output mask only for the `_both` variants (None = all kept).
    let in_mask = fill_mask(&mut rng, keep, &mut b.in_words, n_in);
    let out_mask = if c.both {
        Some(fill_mask(&mut rng, keep, &mut b.out_words, n_out))
    } else {
        None
    };
    let kept_in = |i: usize| in_mask.is_kept(i);
    let kept_out = |j: usize| out_mask.is_none_or(|m| m.is_kept(j));
    let fail_err = |what: &'static str, error: Option<bitdrop::Error>| Mismatch {
        what,
        j: 0,
        i: 0,
        got: nan,
        want: nan,
        tol: 0.0,
        error,
    };

    for v in [&mut b.x, &mut b.dz, &mut b.bias] {
        for e in v.iter_mut() {
            *e = uniform(&mut rng);
        }
    }
    for i in 0..n_in {
        b.x_k[i] = if kept_in(i) { b.x[i] } else { nan };
    }
    for j in 0..n_out {
        b.dz_k[j] = if kept_out(j) { b.dz[j] } else { nan };
    }
    for e in &mut b.mat_r[..n_mat] {
        *e = uniform(&mut rng);
    }
    // The kernel's matrix: an input (forward, input_grad) is NaN where it must not be
    // read; an output (weight_grad, sgd_step) holds the sentinel where it must not be
    // written, in both copies.
    let mat_is_output = matches!(c.op, Op::WeightGrad | Op::SgdStep);
    for j in 0..n_out {
        for i in 0..n_in {
            let k = c.idx(j, i);
            let kept = kept_in(i) && kept_out(j);
            if mat_is_output {
                if !kept {
                    b.mat_r[k] = sentinel;
                }
                b.mat_k[k] = b.mat_r[k];
            } else {
                b.mat_k[k] = if kept { b.mat_r[k] } else { nan };
            }
        }
    }
    b.mat_0[..n_mat].copy_from_slice(&b.mat_r[..n_mat]);
    b.out_k.fill(sentinel);
    b.out_r.fill(sentinel);

    let view = |data| view(c, data);
    let bias = if c.bias { Some(&b.bias[..n_out]) } else { None };
    let (x, x_k) = (&b.x[..n_in], &b.x_k[..n_in]);
    let (dz, dz_k) = (&b.dz[..n_out], &b.dz_k[..n_out]);

    match c.op {
        Op::Forward => {
            let (w_k, w_r) = (view(&b.mat_k[..n_mat]), view(&b.mat_r[..n_mat]));
            let (Ok(w_k), Ok(w_r)) = (w_k, w_r) else {
                return Err(fail_err("view", None));
            };
            let z_k = &mut b.out_k[..n_out];
            let run = match out_mask {
                None => layer::forward(w_k, x_k, in_mask, keep, bias, z_k),
                Some(out) => layer::forward_both(w_k, x_k, in_mask, keep, out, bias, z_k),
            };
            run.map_err(|e| fail_err("kernel", Some(e)))?;
            reference::forward(
                w_r,
                x,
                Some(in_mask),
                keep,
                out_mask,
                bias,
                &mut b.out_r[..n_out],
            )
            .map_err(|e| fail_err("reference", Some(e)))?;
            for j in 0..n_out {
                let mut sum_abs = bias.map_or(0.0, |b| libm::fabsf(b[j]));
                for i in (0..n_in).filter(|&i| kept_in(i)) {
                    sum_abs += libm::fabsf(b.mat_r[c.idx(j, i)] * x[i] * scale);
                }
                let tol = tolerance(n_in, sum_abs);
                compare(
                    "z",
                    (j, 0),
                    kept_out(j),
                    b.out_k[j],
                    b.out_r[j],
                    tol,
                    SENTINEL,
                )?;
            }
        }
        Op::InputGrad => {
            let (w_k, w_r) = (view(&b.mat_k[..n_mat]), view(&b.mat_r[..n_mat]));
            let (Ok(w_k), Ok(w_r)) = (w_k, w_r) else {
                return Err(fail_err("view", None));
            };
            let dx_k = &mut b.out_k[..n_in];
            let run = match out_mask {
                None => layer::input_grad(w_k, dz_k, in_mask, keep, dx_k),
                Some(out) => layer::input_grad_both(w_k, dz_k, in_mask, keep, out, dx_k),
            };
            run.map_err(|e| fail_err("kernel", Some(e)))?;
            reference::input_grad(w_r, dz, Some(in_mask), keep, out_mask, &mut b.out_r[..n_in])
                .map_err(|e| fail_err("reference", Some(e)))?;
            for i in 0..n_in {
                let mut sum_abs = 0.0;
                for j in (0..n_out).filter(|&j| kept_out(j)) {
                    sum_abs += libm::fabsf(b.mat_r[c.idx(j, i)] * dz[j]);
                }
                let tol = tolerance(n_out, sum_abs * scale);
                compare("dx", (0, i), kept_in(i), b.out_k[i], b.out_r[i], tol, 0)?;
            }
        }
        Op::WeightGrad | Op::SgdStep => {
            let mat = |data| view_mut(c, data);
            let (Ok(m_k), Ok(m_r)) = (mat(&mut b.mat_k[..n_mat]), mat(&mut b.mat_r[..n_mat]))
            else {
                return Err(fail_err("view", None));
            };
            let (run, run_ref) = match (c.op, out_mask) {
                (Op::WeightGrad, None) => (
                    layer::weight_grad(dz_k, x_k, in_mask, keep, m_k),
                    reference::weight_grad(dz, x, Some(in_mask), keep, None, m_r),
                ),
                (Op::WeightGrad, Some(out)) => (
                    layer::weight_grad_both(dz_k, x_k, in_mask, keep, out, m_k),
                    reference::weight_grad(dz, x, Some(in_mask), keep, Some(out), m_r),
                ),
                (_, None) => (
                    layer::sgd_step(m_k, dz_k, x_k, in_mask, keep, LR),
                    reference::sgd_step(m_r, dz, x, Some(in_mask), keep, None, LR),
                ),
                (_, Some(out)) => (
                    layer::sgd_step_both(m_k, dz_k, x_k, in_mask, keep, out, LR),
                    reference::sgd_step(m_r, dz, x, Some(in_mask), keep, Some(out), LR),
                ),
            };
            run.map_err(|e| fail_err("kernel", Some(e)))?;
            run_ref.map_err(|e| fail_err("reference", Some(e)))?;
            let lr = if c.op == Op::SgdStep { LR } else { 1.0 };
            for j in 0..n_out {
                for i in 0..n_in {
                    let k = c.idx(j, i);
                    let before = b.mat_0[k];
                    let kept = kept_in(i) && kept_out(j);
                    let sum_abs = libm::fabsf(before) + lr * libm::fabsf(dz[j] * x[i] * scale);
                    let what = if c.op == Op::SgdStep { "w" } else { "dw" };
                    compare(
                        what,
                        (j, i),
                        kept,
                        b.mat_k[k],
                        b.mat_r[k],
                        tolerance(2, sum_abs),
                        SENTINEL,
                    )?;
                }
            }
        }
    }
    Ok(())
}
