//! `batch`: masked `gemm` against literal loops, and the mini-batch layer operations
//! (`*_batch` and `ThinnedBatch` with a shared mask, `*_per_example` with a mask per
//! example) against
//! `reference::*_batch`, at every level, `f32` and `f64`, every layout of `W` and of the
//! batch matrices. Sizes up to 300 per dimension, at most 2^17 multiply-adds a case.

use arbitrary::{Arbitrary, Unstructured};
use bitdrop::{BatchMask, KeepProb, Mask, MaskBatch, blas, layer, reference};

use super::batch_api;
use super::common::*;

const MAX: usize = 300;
const WORK: usize = 1 << 17;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Gemm,
    Forward,
    WeightGrad,
    SgdStep,
    InputGrad,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Beta {
    Zero,
    One,
    Value,
}

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = case(&mut u);
}

fn case(u: &mut U) -> arbitrary::Result<()> {
    let op: Op = u.arbitrary()?;
    if u.arbitrary()? {
        one::<f64>(op, u)
    } else {
        one::<f32>(op, u)
    }
}

/// Three sizes whose product stays within [`WORK`].
fn sizes(u: &mut U) -> arbitrary::Result<(usize, usize, usize)> {
    let a = size(u, MAX)?;
    let b = size(u, MAX)?;
    let mut c = size(u, MAX)?;
    while c > 0 && a.max(1) * b.max(1) * c > WORK {
        c /= 2;
    }
    Ok((a, b, c))
}

fn one<T: Float>(op: Op, u: &mut U) -> arbitrary::Result<()> {
    match op {
        Op::Gemm => gemm::<T>(u),
        _ => layer_batch::<T>(op, u),
    }
}

fn beta_times<T: Float>(beta: T, y: T) -> T {
    if beta == T::ZERO { T::ZERO } else { beta * y }
}

fn gemm<T: Float>(u: &mut U) -> arbitrary::Result<()> {
    let (rows, inner, cols) = sizes(u)?;
    let layouts: [LayoutSpec; 3] = u.arbitrary()?;
    let specs: [Option<MaskSpec>; 3] = u.arbitrary()?;
    let beta: Beta = u.arbitrary()?;
    let mut g = Gen::new(u.arbitrary()?);
    let rm = specs[0].map(|s| Bits::new(s, rows, &mut g, u));
    let im = specs[1].map(|s| Bits::new(s, inner, &mut g, u));
    let cm = specs[2].map(|s| Bits::new(s, cols, &mut g, u));
    let alpha: T = g.value();
    let beta = match beta {
        Beta::Zero => T::ZERO,
        Beta::One => T::ONE,
        Beta::Value => g.value(),
    };
    let touched = |j: usize, k: usize| kept(&rm, j) && kept(&cm, k);
    let mut a = Mat::<T>::new(rows, inner, layouts[0], false);
    a.fill(&mut g, |j, p| kept(&rm, j) && kept(&im, p));
    let mut b = Mat::<T>::new(inner, cols, layouts[1], false);
    b.fill(&mut g, |p, k| kept(&im, p) && kept(&cm, k));
    let mut before = Mat::<T>::new(rows, cols, layouts[2], true);
    before.fill(&mut g, |j, k| touched(j, k) && beta != T::ZERO);
    let quick_return = inner == 0 && beta == T::ONE;
    let mut expected = before.clone();
    for j in 0..rows {
        for k in 0..cols {
            if !touched(j, k) || quick_return {
                continue;
            }
            let old = beta_times(beta, before.get(j, k));
            if inner == 0 {
                expected.set(j, k, old);
                continue;
            }
            let mut sum = T::ZERO;
            for p in (0..inner).filter(|&p| kept(&im, p)) {
                sum += a.get(j, p) * b.get(p, k);
            }
            expected.set(j, k, alpha * sum + old);
        }
    }
    let label = format!(
        "gemm {} {rows}x{inner}x{cols} {layouts:?} masks {specs:?} alpha {alpha} beta {beta}",
        T::NAME
    );
    let (a0, b0) = (a.data.clone(), b.data.clone());
    at_every_level(|level| {
        let mut actual = before.clone();
        blas::gemm(
            alpha,
            a.view(),
            opt_mask(&im),
            b.view(),
            beta,
            actual.view_mut(),
            opt_mask(&rm),
            opt_mask(&cm),
        )
        .expect("blas::gemm");
        let what = || format!("{label} at {level}");
        compare(&what, &before, &actual, &expected, true, |j, k| {
            if !touched(j, k) || quick_return {
                return Entry::Untouched;
            }
            if inner == 0 && beta == T::ZERO {
                return Entry::Zero;
            }
            let mut t = Terms::new();
            if inner > 0 {
                t.global(alpha.to_f64());
                let kept_inner = (0..inner).filter(|&p| kept(&im, p));
                if kept_inner.clone().next().is_none() && !alpha.to_f64().is_finite() {
                    t.unspecified();
                }
                for p in kept_inner {
                    t.term(&[alpha.to_f64(), a.get(j, p).to_f64(), b.get(p, k).to_f64()]);
                }
            }
            if beta != T::ZERO {
                t.term(&[beta.to_f64(), before.get(j, k).to_f64()]);
            }
            Entry::Computed(t)
        });
    });
    unchanged(&|| label.clone(), &a0, &a.data);
    unchanged(&|| label.clone(), &b0, &b.data);
    Ok(())
}

/// The masks of one side of a batch: one shared, or one per example.
#[derive(Debug, Clone)]
struct Side {
    per: Vec<Bits>,
    words: Vec<u64>,
    len: usize,
    shared: bool,
}

impl Side {
    fn new(spec: MaskSpec, len: usize, m: usize, shared: bool, g: &mut Gen, u: &mut U) -> Side {
        let count = if shared { 1 } else { m };
        let per: Vec<Bits> = (0..count).map(|_| Bits::new(spec, len, g, u)).collect();
        let words = per.iter().flat_map(|b| b.words.iter().copied()).collect();
        Side {
            per,
            words,
            len,
            shared,
        }
    }
    fn kept(&self, unit: usize, k: usize) -> bool {
        self.per[if self.shared { 0 } else { k }].kept(unit)
    }
    fn shared(&self) -> Mask<'_> {
        self.per[0].mask()
    }
    fn batch(&self) -> MaskBatch<'_> {
        MaskBatch::new(&self.words, self.len, self.per.len()).expect("valid mask batch")
    }
    fn batch_mask(&self) -> BatchMask<'_> {
        if self.shared {
            BatchMask::Shared(self.shared())
        } else {
            BatchMask::PerExample(self.batch())
        }
    }
}

fn side_kept(side: &Option<Side>, unit: usize, k: usize) -> bool {
    side.as_ref().is_none_or(|s| s.kept(unit, k))
}

struct Case {
    n_out: usize,
    n_in: usize,
    m: usize,
    shared: bool,
    /// Shared masks through a `layer::ThinnedBatch` instead of the free functions.
    thinned: bool,
    keep: KeepProb,
    scale: f64,
    values: bool,
    input: Side,
    out: Option<Side>,
    w_layout: LayoutSpec,
    b_layouts: [LayoutSpec; 2],
    label: String,
}

impl Case {
    fn in_kept(&self, i: usize, k: usize) -> bool {
        self.input.kept(i, k)
    }
    fn out_kept(&self, j: usize, k: usize) -> bool {
        side_kept(&self.out, j, k)
    }
    /// Whether `W[j, i]` is used by some example.
    fn w_used(&self, j: usize, i: usize) -> bool {
        let examples = if self.shared { self.m.min(1) } else { self.m };
        (0..examples).any(|k| self.in_kept(i, k) && self.out_kept(j, k))
    }
    fn out_mask(&self) -> Option<BatchMask<'_>> {
        self.out.as_ref().map(Side::batch_mask)
    }
}

fn layer_batch<T: Float>(op: Op, u: &mut U) -> arbitrary::Result<()> {
    let (n_out, n_in, m) = sizes(u)?;
    let shared: bool = u.arbitrary()?;
    let w_layout: LayoutSpec = u.arbitrary()?;
    let b_layouts: [LayoutSpec; 2] = u.arbitrary()?;
    let in_spec: MaskSpec = u.arbitrary()?;
    let out_spec: Option<MaskSpec> = u.arbitrary()?;
    let keep = u.arbitrary::<KeepSpec>()?.get();
    let with_bias: bool = u.arbitrary()?;
    let mut g = Gen::new(u.arbitrary()?);
    let input = Side::new(in_spec, n_in, m, shared, &mut g, u);
    let out = out_spec.map(|s| Side::new(s, n_out, m, shared, &mut g, u));
    // Read last, so that older corpus inputs keep their meaning (false when exhausted).
    let thinned = shared && u.arbitrary::<bool>()?;
    let values = keep_is_ordinary::<T>(keep);
    let c = Case {
        n_out,
        n_in,
        m,
        shared,
        thinned,
        keep,
        scale: if values {
            T::from_f64(keep.scale()).to_f64()
        } else {
            1.0
        },
        values,
        input,
        out,
        w_layout,
        b_layouts,
        label: format!(
            "{op:?} {} {} {n_out}x{n_in} m={m} W {w_layout:?} batch {b_layouts:?} keep {keep} in {in_spec:?} out {out_spec:?}",
            match (shared, thinned) {
                (true, true) => "thinned",
                (true, false) => "shared",
                _ => "per-example",
            },
            T::NAME
        ),
    };
    match op {
        Op::Forward => forward::<T>(&c, &mut g, with_bias),
        Op::WeightGrad => weight_update::<T>(&c, &mut g, None),
        Op::SgdStep => {
            let lr = g.value::<T>();
            weight_update::<T>(&c, &mut g, Some(lr))
        }
        Op::InputGrad => input_grad::<T>(&c, &mut g),
        Op::Gemm => unreachable!("handled by gemm"),
    }
    Ok(())
}

/// A copy of `w` that can be viewed mutably (a `ThinnedBatch` borrows `W` mutably): the
/// same layout unless it aliases (broadcast strides), then row-major.
fn mutable_copy<T: Float>(w: &Mat<T>, layout: LayoutSpec) -> Mat<T> {
    let mut copy = Mat::<T>::new(w.rows, w.cols, layout, true);
    for j in 0..w.rows {
        for i in 0..w.cols {
            copy.set(j, i, w.get(j, i));
        }
    }
    copy
}

/// A `ThinnedBatch` writes `W` only in its SGD step: nothing of the buffer changed.
fn assert_same_bits<T: Float>(a: &Mat<T>, b: &Mat<T>, label: &str) {
    let same = a.data.iter().zip(&b.data);
    for (k, (p, q)) in same.enumerate() {
        assert_eq!(
            p.to_bits_u64(),
            q.to_bits_u64(),
            "{label}: W buffer [{k}] written"
        );
    }
}

fn w_matrix<T: Float>(c: &Case, g: &mut Gen) -> Mat<T> {
    let mut w = Mat::new(c.n_out, c.n_in, c.w_layout, false);
    w.fill(g, |j, i| c.w_used(j, i));
    w
}

fn forward<T: Float>(c: &Case, g: &mut Gen, with_bias: bool) {
    let w = w_matrix::<T>(c, g);
    let mut x = Mat::<T>::new(c.n_in, c.m, c.b_layouts[0], false);
    x.fill(g, |i, k| c.in_kept(i, k));
    let bias: Vec<T> = vector(c.n_out, g, |j| (0..c.m).any(|k| c.out_kept(j, k)));
    let bias = with_bias.then_some(&bias[..]);
    let mut before = Mat::<T>::new(c.n_out, c.m, c.b_layouts[1], true);
    before.fill(g, |_, _| false);
    let mut expected = before.clone();
    reference::forward_batch(
        w.view(),
        x.view(),
        Some(c.input.batch_mask()),
        c.keep,
        c.out_mask(),
        bias,
        expected.view_mut(),
    )
    .expect("reference::forward_batch");
    at_every_level(|level| {
        let mut actual = before.clone();
        if c.thinned {
            let out = c.out.as_ref().map(Side::shared);
            let (z, mut w2) = (actual.view_mut(), mutable_copy(&w, c.w_layout));
            let before_w = w2.clone();
            let r = batch_api::thinned_forward(
                w2.view_mut(),
                x.view(),
                c.input.shared(),
                c.keep,
                out,
                bias,
                z,
            );
            assert_same_bits(&w2, &before_w, &c.label);
            r
        } else if c.shared {
            let out = c.out.as_ref().map(Side::shared);
            let z = actual.view_mut();
            batch_api::forward(w.view(), x.view(), c.input.shared(), c.keep, out, bias, z)
        } else {
            let out = c.out.as_ref().map(Side::batch);
            let z = actual.view_mut();
            layer::forward_per_example(w.view(), x.view(), c.input.batch(), c.keep, out, bias, z)
        }
        .expect("layer forward batch");
        let what = || format!("{} Z at {level}", c.label);
        compare(&what, &before, &actual, &expected, c.values, |j, k| {
            if !c.out_kept(j, k) {
                return Entry::Untouched;
            }
            let mut t = Terms::new();
            for i in (0..c.n_in).filter(|&i| c.in_kept(i, k)) {
                t.term(&[c.scale, w.get(j, i).to_f64(), x.get(i, k).to_f64()]);
            }
            if let Some(b) = bias {
                t.term(&[b[j].to_f64()]);
            }
            Entry::Computed(t)
        });
    });
}

fn weight_update<T: Float>(c: &Case, g: &mut Gen, lr: Option<T>) {
    let mut dz = Mat::<T>::new(c.n_out, c.m, c.b_layouts[0], false);
    dz.fill(g, |j, k| c.out_kept(j, k));
    let mut x = Mat::<T>::new(c.n_in, c.m, c.b_layouts[1], false);
    x.fill(g, |i, k| c.in_kept(i, k));
    let examples =
        |j: usize, i: usize| (0..c.m).filter(move |&k| c.in_kept(i, k) && c.out_kept(j, k));
    let mut before = Mat::<T>::new(c.n_out, c.n_in, c.w_layout, true);
    before.fill(g, |j, i| examples(j, i).next().is_some());
    let mut expected = before.clone();
    let in_mask = Some(c.input.batch_mask());
    match lr {
        None => reference::weight_grad_batch(
            dz.view(),
            x.view(),
            in_mask,
            c.keep,
            c.out_mask(),
            expected.view_mut(),
        ),
        Some(lr) => reference::sgd_step_batch(
            expected.view_mut(),
            dz.view(),
            x.view(),
            in_mask,
            c.keep,
            c.out_mask(),
            lr,
        ),
    }
    .expect("reference weight update batch");
    at_every_level(|level| {
        let mut actual = before.clone();
        let a = actual.view_mut();
        let (dzv, xv, keep) = (dz.view(), x.view(), c.keep);
        match (lr, c.shared) {
            (None, true) if c.thinned => {
                // weight_grad does not read W: any W of the right shape.
                let out = c.out.as_ref().map(Side::shared);
                let mut w = Mat::<T>::new(c.n_out, c.n_in, c.w_layout, true);
                let w_before = w.clone();
                let mask = c.input.shared();
                let r = batch_api::thinned_weight_grad(w.view_mut(), dzv, xv, mask, keep, out, a);
                assert_same_bits(&w, &w_before, &c.label);
                r
            }
            (Some(lr), true) if c.thinned => {
                let out = c.out.as_ref().map(Side::shared);
                batch_api::thinned_sgd_step(a, dzv, xv, c.input.shared(), keep, out, lr)
            }
            (None, true) => {
                let out = c.out.as_ref().map(Side::shared);
                batch_api::weight_grad(dzv, xv, c.input.shared(), keep, out, a)
            }
            (Some(lr), true) => {
                let out = c.out.as_ref().map(Side::shared);
                batch_api::sgd_step(a, dzv, xv, c.input.shared(), keep, out, lr)
            }
            (None, false) => {
                let out = c.out.as_ref().map(Side::batch);
                layer::weight_grad_per_example(dzv, xv, c.input.batch(), keep, out, a)
            }
            (Some(lr), false) => {
                let out = c.out.as_ref().map(Side::batch);
                layer::sgd_step_per_example(a, dzv, xv, c.input.batch(), keep, out, lr)
            }
        }
        .expect("layer weight update batch");
        let what = || format!("{} lr {lr:?} W at {level}", c.label);
        compare(&what, &before, &actual, &expected, c.values, |j, i| {
            let mut ks = examples(j, i).peekable();
            if ks.peek().is_none() {
                return Entry::Untouched;
            }
            let mut t = Terms::new();
            for k in ks {
                let (d, xi) = (dz.get(j, k).to_f64(), x.get(i, k).to_f64());
                match lr {
                    None => t.term(&[c.scale, d, xi]),
                    Some(lr) => t.term(&[lr.to_f64(), c.scale, d, xi]),
                }
            }
            t.term(&[before.get(j, i).to_f64()]);
            Entry::Computed(t)
        });
    });
}

fn input_grad<T: Float>(c: &Case, g: &mut Gen) {
    let w = w_matrix::<T>(c, g);
    let mut dz = Mat::<T>::new(c.n_out, c.m, c.b_layouts[0], false);
    dz.fill(g, |j, k| c.out_kept(j, k));
    let mut before = Mat::<T>::new(c.n_in, c.m, c.b_layouts[1], true);
    before.fill(g, |_, _| false);
    let mut expected = before.clone();
    reference::input_grad_batch(
        w.view(),
        dz.view(),
        Some(c.input.batch_mask()),
        c.keep,
        c.out_mask(),
        expected.view_mut(),
    )
    .expect("reference::input_grad_batch");
    at_every_level(|level| {
        let mut actual = before.clone();
        let dx = actual.view_mut();
        if c.thinned {
            let out = c.out.as_ref().map(Side::shared);
            let mut w2 = mutable_copy(&w, c.w_layout);
            let before_w = w2.clone();
            let mask = c.input.shared();
            let r = batch_api::thinned_input_grad(w2.view_mut(), dz.view(), mask, c.keep, out, dx);
            assert_same_bits(&w2, &before_w, &c.label);
            r
        } else if c.shared {
            let out = c.out.as_ref().map(Side::shared);
            batch_api::input_grad(w.view(), dz.view(), c.input.shared(), c.keep, out, dx)
        } else {
            let out = c.out.as_ref().map(Side::batch);
            layer::input_grad_per_example(w.view(), dz.view(), c.input.batch(), c.keep, out, dx)
        }
        .expect("layer input_grad batch");
        let what = || format!("{} dX at {level}", c.label);
        compare(&what, &before, &actual, &expected, c.values, |i, k| {
            if !c.in_kept(i, k) {
                return Entry::Zero;
            }
            let mut t = Terms::new();
            for j in (0..c.n_out).filter(|&j| c.out_kept(j, k)) {
                t.term(&[c.scale, w.get(j, i).to_f64(), dz.get(j, k).to_f64()]);
            }
            Entry::Computed(t)
        });
    });
}
