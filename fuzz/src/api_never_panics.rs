//! `api_never_panics`: arbitrary lengths, strides, word counts, mask bits and keep
//! values (NaN, 0, negative, > 1, infinite, subnormal) into every constructor and every
//! operation, `reference` included. Each call must return `Ok` or `Err` (a panic is the
//! crash libFuzzer reports; a hang its timeout), and a call that returns `Err` must
//! leave its output buffers bitwise as they were.

use arbitrary::{Arbitrary, Unstructured};
use bitdrop::{
    BatchMask, Error, KeepProb, Level, Mask, MaskBatch, MaskBatchMut, MaskMut, MatMut, MatRef,
    blas, layer, reference, sample,
};

use super::batch_api;
use super::common::Float;

/// A length, index, count or stride: small ones, and the edges of `usize`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Len {
    Small(u8),
    Medium(u16),
    Huge(usize),
    Max,
    Half,
}

impl Len {
    fn get(self) -> usize {
        match self {
            Len::Small(n) => usize::from(n % 12),
            Len::Medium(n) => usize::from(n % 300),
            Len::Huge(n) => n,
            Len::Max => usize::MAX,
            Len::Half => usize::MAX / 2 + 1,
        }
    }
}

/// A keep probability as given: anything an `f64` holds.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum KeepRaw {
    Bits(u64),
    Special(u8),
}

impl KeepRaw {
    fn get(self) -> f64 {
        match self {
            KeepRaw::Bits(b) => f64::from_bits(b),
            KeepRaw::Special(k) => [
                0.0,
                -0.0,
                1.0,
                0.5,
                -0.5,
                1.5,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::MIN_POSITIVE,
                5e-324,
                1.0 + f64::EPSILON,
                1.0 - f64::EPSILON / 2.0,
                -f64::NAN,
            ][usize::from(k) % 14],
        }
    }
}

/// Raw mask parts: the words as given (tail bits included) and a claimed length.
#[derive(Arbitrary, Debug, Clone)]
struct MaskRaw {
    words: Vec<u64>,
    len: Len,
    /// Fix the word count to the length (then only the tail can be wrong).
    fit: bool,
    /// Clear the tail bits too (then the mask is valid).
    clear_tail: bool,
}

impl MaskRaw {
    fn words(&self) -> Vec<u64> {
        let len = self.len.get();
        let mut words = self.words.clone();
        if self.fit && len <= 1 << 16 {
            words.resize(bitdrop::words_for(len), u64::MAX);
        }
        if self.clear_tail
            && self.fit
            && len <= 1 << 16
            && !len.is_multiple_of(64)
            && let Some(last) = words.last_mut()
        {
            *last &= (1 << (len % 64)) - 1;
        }
        words
    }
}

/// Raw view parts over a buffer of `buf` elements.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct ViewRaw {
    buf: u16,
    rows: Len,
    cols: Len,
    rs: Len,
    cs: Len,
    /// 0: `new` with the strides; 1: `row_major`; 2: `col_major`.
    how: u8,
}

impl ViewRaw {
    fn len(self) -> usize {
        usize::from(self.buf % 400)
    }
    fn data<T: Float>(self) -> Vec<T> {
        (0..self.len()).map(|k| T::from_f64(k as f64)).collect()
    }
    fn view<T: Float>(self, data: &[T]) -> Result<MatRef<'_, T>, Error> {
        let (r, c) = (self.rows.get(), self.cols.get());
        match self.how % 3 {
            0 => MatRef::new(data, r, c, self.rs.get(), self.cs.get()),
            1 => MatRef::row_major(data, r, c),
            _ => MatRef::col_major(data, r, c),
        }
    }
    fn view_mut<T: Float>(self, data: &mut [T]) -> Result<MatMut<'_, T>, Error> {
        let (r, c) = (self.rows.get(), self.cols.get());
        match self.how % 3 {
            0 => MatMut::new(data, r, c, self.rs.get(), self.cs.get()),
            1 => MatMut::row_major(data, r, c),
            _ => MatMut::col_major(data, r, c),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum LayerOp {
    Forward,
    ForwardBoth,
    WeightGrad,
    WeightGradBoth,
    InputGrad,
    InputGradBoth,
    SgdStep,
    SgdStepBoth,
    Dropout,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum BatchOp {
    Forward,
    WeightGrad,
    SgdStep,
    InputGrad,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum RefOp {
    Forward,
    WeightGrad,
    InputGrad,
    SgdStep,
    ForwardBatch,
    WeightGradBatch,
    InputGradBatch,
    SgdStepBatch,
}

#[derive(Arbitrary, Debug, Clone)]
enum Call {
    Keep(KeepRaw),
    Masks {
        mask: MaskRaw,
        index: Len,
        kept: bool,
    },
    MaskBatches {
        mask: MaskRaw,
        count: Len,
        index: Len,
    },
    Views {
        view: ViewRaw,
        i: Len,
        j: Len,
    },
    Sample {
        mask: MaskRaw,
        count: Len,
        keep: KeepRaw,
        seed: u64,
    },
    Ger {
        x: u16,
        y: u16,
        a: ViewRaw,
        row_mask: Option<MaskRaw>,
        col_mask: Option<MaskRaw>,
    },
    Gemv {
        a: ViewRaw,
        x: u16,
        y: u16,
        row_mask: Option<MaskRaw>,
        col_mask: Option<MaskRaw>,
        beta: bool,
    },
    Gemm {
        a: ViewRaw,
        b: ViewRaw,
        c: ViewRaw,
        masks: [Option<MaskRaw>; 3],
        beta: bool,
    },
    Layer {
        op: LayerOp,
        w: ViewRaw,
        v1: u16,
        v2: u16,
        bias: Option<u16>,
        mask: MaskRaw,
        out_mask: MaskRaw,
        keep: KeepRaw,
    },
    Batch {
        op: BatchOp,
        per_example: bool,
        views: [ViewRaw; 3],
        bias: Option<u16>,
        mask: MaskRaw,
        out_mask: Option<MaskRaw>,
        count: Len,
        keep: KeepRaw,
    },
    Reference {
        op: RefOp,
        views: [ViewRaw; 3],
        v1: u16,
        v2: u16,
        bias: Option<u16>,
        masks: [Option<(MaskRaw, Len, bool)>; 2],
        keep: KeepRaw,
    },
    Levels {
        name: String,
        level: u8,
    },
}

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    for _ in 0..8 {
        let Ok(call) = u.arbitrary::<Call>() else {
            return;
        };
        let Ok(double) = u.arbitrary::<bool>() else {
            return;
        };
        if double {
            call_one::<f64>(&call);
        } else {
            call_one::<f32>(&call);
        }
    }
}

/// Whether an operation over these dimensions is cheap enough to call: broadcast
/// (zero-stride) views describe astronomically large but valid work, which is no
/// hang. Work with a zero dimension must always be fast: nothing is written then.
fn cheap(dims: [usize; 3]) -> bool {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .is_some_and(|work| work <= 1 << 22)
        || dims.contains(&0)
}

fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits_u64()).collect()
}

/// Runs `f` on `out`; on `Err`, `out` must be bitwise unchanged.
fn no_write_on_err<T: Float>(
    what: &str,
    out: &mut [T],
    f: impl FnOnce(&mut [T]) -> Result<(), Error>,
) {
    let before = bits(out);
    if let Err(e) = f(out) {
        // The error must describe itself without panicking either.
        let _ = format!("{e} {e:?}");
        assert_eq!(
            before,
            bits(out),
            "{what}: returned {e:?} but wrote its output"
        );
    }
}

fn vec_of<T: Float>(n: u16) -> Vec<T> {
    (0..usize::from(n % 400))
        .map(|k| T::from_f64(k as f64 * 0.5 - 3.0))
        .collect()
}

fn call_one<T: Float>(call: &Call) {
    match call {
        Call::Keep(k) => keep_calls(k.get()),
        Call::Masks { mask, index, kept } => mask_calls(mask, index.get(), *kept),
        Call::MaskBatches { mask, count, index } => {
            batch_mask_calls(mask, count.get(), index.get())
        }
        Call::Views { view, i, j } => view_calls::<T>(*view, i.get(), j.get()),
        Call::Sample {
            mask,
            count,
            keep,
            seed,
        } => sample_calls(mask, count.get(), keep.get(), *seed),
        Call::Ger {
            x,
            y,
            a,
            row_mask,
            col_mask,
        } => {
            let (x, y) = (vec_of::<T>(*x), vec_of::<T>(*y));
            let (rw, cw) = (
                row_mask.as_ref().map(MaskRaw::words),
                col_mask.as_ref().map(MaskRaw::words),
            );
            let Some(rm) = opt(&rw, row_mask) else { return };
            let Some(cm) = opt(&cw, col_mask) else { return };
            let mut data = a.data::<T>();
            no_write_on_err("ger", &mut data, |d| {
                blas::ger(T::ONE, &x, rm, &y, cm, a.view_mut(d)?)
            });
        }
        Call::Gemv {
            a,
            x,
            y,
            row_mask,
            col_mask,
            beta,
        } => {
            let (data, x) = (a.data::<T>(), vec_of::<T>(*x));
            let Ok(a) = a.view(&data) else { return };
            let (rw, cw) = (
                row_mask.as_ref().map(MaskRaw::words),
                col_mask.as_ref().map(MaskRaw::words),
            );
            let Some(rm) = opt(&rw, row_mask) else { return };
            let Some(cm) = opt(&cw, col_mask) else { return };
            let beta = if *beta { T::ONE } else { T::ZERO };
            let mut y = vec_of::<T>(*y);
            no_write_on_err("gemv", &mut y, |y| {
                blas::gemv(T::ONE, a, &x, cm, beta, y, rm)
            });
        }
        Call::Gemm {
            a,
            b,
            c,
            masks,
            beta,
        } => {
            let (ad, bd) = (a.data::<T>(), b.data::<T>());
            let (Ok(a), Ok(b)) = (a.view(&ad), b.view(&bd)) else {
                return;
            };
            if !cheap([a.rows(), a.cols(), b.cols()]) {
                return;
            }
            let w: Vec<Option<Vec<u64>>> = masks
                .iter()
                .map(|m| m.as_ref().map(MaskRaw::words))
                .collect();
            let Some(rm) = opt(&w[0], &masks[0]) else {
                return;
            };
            let Some(im) = opt(&w[1], &masks[1]) else {
                return;
            };
            let Some(cm) = opt(&w[2], &masks[2]) else {
                return;
            };
            let beta = if *beta { T::ONE } else { T::ZERO };
            let mut cd = c.data::<T>();
            no_write_on_err("gemm", &mut cd, |d| {
                blas::gemm(T::ONE, a, im, b, beta, c.view_mut(d)?, rm, cm)
            });
        }
        Call::Layer {
            op,
            w,
            v1,
            v2,
            bias,
            mask,
            out_mask,
            keep,
        } => layer_calls::<T>(*op, *w, *v1, *v2, *bias, mask, out_mask, keep.get()),
        Call::Batch {
            op,
            per_example,
            views,
            bias,
            mask,
            out_mask,
            count,
            keep,
        } => batch_calls::<T>(
            *op,
            *per_example,
            views,
            *bias,
            mask,
            out_mask.as_ref(),
            count.get(),
            keep.get(),
        ),
        Call::Reference {
            op,
            views,
            v1,
            v2,
            bias,
            masks,
            keep,
        } => reference_calls::<T>(*op, views, *v1, *v2, *bias, masks, keep.get()),
        Call::Levels { name, level } => {
            let _ = name.parse::<Level>().map(|l| l.to_string());
            let level =
                [Level::Scalar, Level::Avx2, Level::Avx512, Level::Neon][usize::from(level % 4)];
            let ran = bitdrop::with_level(level, Level::current);
            assert_eq!(ran.is_ok(), level.is_available(), "with_level({level})");
            if let Ok(current) = ran {
                assert_eq!(current, level);
            }
        }
    }
}

/// `Some(None)` without a mask, `Some(Some(mask))` for a valid one, `None` (skip the
/// call) when the mask constructor refused the parts.
fn opt<'a>(words: &'a Option<Vec<u64>>, raw: &Option<MaskRaw>) -> Option<Option<Mask<'a>>> {
    match (words, raw) {
        (Some(w), Some(r)) => Mask::new(w, r.len.get()).ok().map(Some),
        _ => Some(None),
    }
}

fn keep_calls(k: f64) {
    let valid = k > 0.0 && k <= 1.0;
    match KeepProb::new(k) {
        Ok(keep) => {
            assert!(valid, "KeepProb::new({k}) accepted");
            let _ = (keep.get(), keep.scale(), keep.drop_rate(), keep.to_string());
            assert_eq!(KeepProb::try_from(k), Ok(keep));
        }
        Err(e) => {
            assert!(!valid, "KeepProb::new({k}) rejected");
            let _ = e.to_string();
        }
    }
    let drop_valid = (0.0..1.0).contains(&k);
    match KeepProb::from_drop_rate(k) {
        Ok(keep) => {
            assert!(drop_valid, "from_drop_rate({k}) accepted");
            assert!(
                keep.get() > 0.0 && keep.get() <= 1.0,
                "from_drop_rate({k}) gave {keep}"
            );
        }
        Err(e) => {
            assert!(!drop_valid, "from_drop_rate({k}) rejected");
            let _ = e.to_string();
        }
    }
}

fn mask_calls(raw: &MaskRaw, index: usize, kept: bool) {
    let len = raw.len.get();
    let mut words = raw.words();
    if let Ok(mask) = Mask::new(&words, len) {
        let count = mask.count_kept();
        assert!(count <= len);
        let _ = (
            mask.is_kept(index),
            mask.all_kept(),
            mask.is_empty(),
            mask.words(),
        );
        assert_eq!(
            mask.iter_kept().count(),
            count,
            "iter_kept and count_kept disagree"
        );
    }
    let before = words.clone();
    match MaskMut::new(&mut words, len) {
        Ok(mut mask) => {
            let set = mask.set(index, kept);
            assert_eq!(
                set.is_ok(),
                index < len,
                "MaskMut::set({index}) on {len} units"
            );
            assert_eq!(mask.as_mask().words().len(), bitdrop::words_for(len));
            mask.fill_with(|i| i % 3 == 0);
            assert!(
                Mask::new(mask.as_mask().words(), len).is_ok(),
                "fill_with broke the tail"
            );
            mask.fill(kept);
            assert_eq!(mask.as_mask().count_kept(), if kept { len } else { 0 });
        }
        Err(_) => assert_eq!(before, words, "MaskMut::new failed but wrote"),
    }
}

fn batch_mask_calls(raw: &MaskRaw, count: usize, index: usize) {
    let len = raw.len.get();
    let mut words = raw.words();
    if let Ok(batch) = MaskBatch::new(&words, len, count) {
        let _ = batch.get(index).map(|m| m.count_kept());
        let _ = batch.iter().take(3).map(|m| m.len()).sum::<usize>();
        let _ = batch.iter().next_back().map(|m| m.len());
        let _ = BatchMask::PerExample(batch).example(index).map(|m| m.len());
    }
    let before = words.clone();
    match MaskBatchMut::new(&mut words, len, count) {
        Ok(mut batch) => {
            if let Some(mut m) = batch.get_mut(index) {
                m.fill(true);
            }
            let _ = batch.as_batch().count();
        }
        Err(_) => assert_eq!(before, words, "MaskBatchMut::new failed but wrote"),
    }
}

fn view_calls<T: Float>(view: ViewRaw, i: usize, j: usize) {
    let data = view.data::<T>();
    if let Ok(m) = view.view(&data) {
        let _ = (m.get(i, j), m.shape(), m.row_stride(), m.col_stride());
        let _ = (
            m.t().get(j, i),
            m.col(j).map(|c| c.shape()),
            m.row(i).map(|r| r.shape()),
        );
    }
    let mut data = view.data::<T>();
    let before = bits(&data);
    match view.view_mut(&mut data) {
        Ok(mut m) => {
            let _ = m.get(i, j);
            if let Some(x) = m.get_mut(i, j) {
                *x = T::ONE;
            }
            let _ = m.reborrow().shape();
            let _ = m.reborrow_mut().t().col(i).map(|c| c.shape());
            m.fill(T::ZERO);
            let _ = m.row(i).map(|r| r.shape());
        }
        Err(_) => assert_eq!(before, bits(&data), "MatMut constructor failed but wrote"),
    }
}

fn sample_calls(raw: &MaskRaw, count: usize, keep: f64, seed: u64) {
    let Ok(keep) = KeepProb::new(keep) else {
        return;
    };
    struct SplitMix(u64);
    impl rand_core::TryRng for SplitMix {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.try_next_u64().map(|x| x as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            Ok(z ^ (z >> 31))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(0);
            Ok(())
        }
    }
    let mut rng = SplitMix(seed);
    let len = raw.len.get();
    let mut words = raw.words();
    if let Ok(mut mask) = MaskMut::new(&mut words, len) {
        sample::bernoulli(&mut rng, keep, &mut mask);
        assert!(Mask::new(&words, len).is_ok(), "bernoulli set tail bits");
    }
    let mut words = raw.words();
    if let Ok(mut masks) = MaskBatchMut::new(&mut words, len, count) {
        sample::bernoulli_batch(&mut rng, keep, &mut masks);
        assert!(
            MaskBatch::new(&words, len, count).is_ok(),
            "bernoulli_batch set tail bits"
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn layer_calls<T: Float>(
    op: LayerOp,
    w: ViewRaw,
    v1: u16,
    v2: u16,
    bias: Option<u16>,
    mask: &MaskRaw,
    out_mask: &MaskRaw,
    keep: f64,
) {
    let Ok(keep) = KeepProb::new(keep) else {
        return;
    };
    let (mw, ow) = (mask.words(), out_mask.words());
    let (Ok(mask), Ok(out)) = (
        Mask::new(&mw, mask.len.get()),
        Mask::new(&ow, out_mask.len.get()),
    ) else {
        return;
    };
    let (a, mut b) = (vec_of::<T>(v1), vec_of::<T>(v2));
    let bias = bias.map(vec_of::<T>);
    let bias = bias.as_deref();
    let mut wd = w.data::<T>();
    let lr = T::from_f64(0.5);
    match op {
        LayerOp::Forward | LayerOp::ForwardBoth | LayerOp::InputGrad | LayerOp::InputGradBoth => {
            let Ok(wv) = w.view(&wd) else { return };
            no_write_on_err("layer", &mut b, |b| match op {
                LayerOp::Forward => layer::forward(wv, &a, mask, keep, bias, b),
                LayerOp::ForwardBoth => layer::forward_both(wv, &a, mask, keep, out, bias, b),
                LayerOp::InputGrad => layer::input_grad(wv, &a, mask, keep, b),
                _ => layer::input_grad_both(wv, &a, mask, keep, out, b),
            });
        }
        LayerOp::Dropout => {
            no_write_on_err("dropout", &mut b, |b| layer::dropout(&a, mask, keep, b))
        }
        _ => no_write_on_err("layer weights", &mut wd, |d| {
            let wv = w.view_mut(d)?;
            match op {
                LayerOp::WeightGrad => layer::weight_grad(&a, &b, mask, keep, wv),
                LayerOp::WeightGradBoth => layer::weight_grad_both(&a, &b, mask, keep, out, wv),
                LayerOp::SgdStep => layer::sgd_step(wv, &a, &b, mask, keep, lr),
                _ => layer::sgd_step_both(wv, &a, &b, mask, keep, out, lr),
            }
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn batch_calls<T: Float>(
    op: BatchOp,
    per_example: bool,
    views: &[ViewRaw; 3],
    bias: Option<u16>,
    mask: &MaskRaw,
    out_mask: Option<&MaskRaw>,
    count: usize,
    keep: f64,
) {
    let Ok(keep) = KeepProb::new(keep) else {
        return;
    };
    let mw = mask.words();
    let ow = out_mask.map(MaskRaw::words);
    let (d0, d1) = (views[0].data::<T>(), views[1].data::<T>());
    let (Ok(m0), Ok(m1)) = (views[0].view(&d0), views[1].view(&d1)) else {
        return;
    };
    let dims = match op {
        BatchOp::Forward | BatchOp::InputGrad => [m0.rows(), m0.cols(), m1.cols()],
        BatchOp::WeightGrad | BatchOp::SgdStep => [m0.rows(), m1.rows(), m0.cols()],
    };
    if !cheap(dims) {
        return;
    }
    let mut out = views[2].data::<T>();
    let bias = bias.map(vec_of::<T>);
    let bias = bias.as_deref();
    let lr = T::from_f64(0.25);
    if per_example {
        let Ok(masks) = MaskBatch::new(&mw, mask.len.get(), count) else {
            return;
        };
        let outs = match (&ow, out_mask) {
            (Some(w), Some(r)) => match MaskBatch::new(w, r.len.get(), count) {
                Ok(b) => Some(b),
                Err(_) => return,
            },
            _ => None,
        };
        no_write_on_err("per-example", &mut out, |d| {
            let o = views[2].view_mut(d)?;
            match op {
                BatchOp::Forward => layer::forward_per_example(m0, m1, masks, keep, outs, bias, o),
                BatchOp::WeightGrad => layer::weight_grad_per_example(m0, m1, masks, keep, outs, o),
                BatchOp::SgdStep => layer::sgd_step_per_example(o, m0, m1, masks, keep, outs, lr),
                BatchOp::InputGrad => layer::input_grad_per_example(m0, m1, masks, keep, outs, o),
            }
        });
    } else {
        let Ok(m) = Mask::new(&mw, mask.len.get()) else {
            return;
        };
        let outm = match (&ow, out_mask) {
            (Some(w), Some(r)) => match Mask::new(w, r.len.get()) {
                Ok(b) => Some(b),
                Err(_) => return,
            },
            _ => None,
        };
        no_write_on_err("batch", &mut out, |d| {
            let o = views[2].view_mut(d)?;
            match op {
                BatchOp::Forward => batch_api::forward(m0, m1, m, keep, outm, bias, o),
                BatchOp::WeightGrad => batch_api::weight_grad(m0, m1, m, keep, outm, o),
                BatchOp::SgdStep => batch_api::sgd_step(o, m0, m1, m, keep, outm, lr),
                BatchOp::InputGrad => batch_api::input_grad(m0, m1, m, keep, outm, o),
            }
        });
    }
}

/// The first example's mask of a batch mask, for the single-example functions.
fn single(m: Option<BatchMask<'_>>) -> Option<Mask<'_>> {
    m.and_then(|m| m.example(0))
}

fn reference_calls<T: Float>(
    op: RefOp,
    views: &[ViewRaw; 3],
    v1: u16,
    v2: u16,
    bias: Option<u16>,
    masks: &[Option<(MaskRaw, Len, bool)>; 2],
    keep: f64,
) {
    let Ok(keep) = KeepProb::new(keep) else {
        return;
    };
    let words: Vec<Option<Vec<u64>>> = masks
        .iter()
        .map(|m| m.as_ref().map(|(raw, _, _)| raw.words()))
        .collect();
    // Each mask: absent, shared, or a batch of `count` (per example).
    let mut built: Vec<Option<BatchMask<'_>>> = Vec::new();
    for (w, m) in words.iter().zip(masks) {
        built.push(match (w, m) {
            (Some(w), Some((raw, count, per_example))) => {
                let mask = if *per_example {
                    MaskBatch::new(w, raw.len.get(), count.get()).map(BatchMask::PerExample)
                } else {
                    Mask::new(w, raw.len.get()).map(BatchMask::Shared)
                };
                match mask {
                    Ok(m) => Some(m),
                    Err(_) => return,
                }
            }
            _ => None,
        });
    }
    let (im, om) = (built[0], built[1]);
    let (a, mut b) = (vec_of::<T>(v1), vec_of::<T>(v2));
    let bias = bias.map(vec_of::<T>);
    let bias = bias.as_deref();
    let (d0, d1) = (views[0].data::<T>(), views[1].data::<T>());
    let mut out = views[2].data::<T>();
    let lr = T::from_f64(0.125);
    match op {
        RefOp::Forward | RefOp::InputGrad => {
            let Ok(w) = views[0].view(&d0) else { return };
            no_write_on_err("reference single", &mut b, |b| match op {
                RefOp::Forward => reference::forward(w, &a, single(im), keep, single(om), bias, b),
                _ => reference::input_grad(w, &a, single(im), keep, single(om), b),
            });
        }
        RefOp::WeightGrad | RefOp::SgdStep => no_write_on_err("reference weights", &mut out, |d| {
            let w = views[2].view_mut(d)?;
            match op {
                RefOp::WeightGrad => {
                    reference::weight_grad(&a, &b, single(im), keep, single(om), w)
                }
                _ => reference::sgd_step(w, &a, &b, single(im), keep, single(om), lr),
            }
        }),
        _ => {
            let (Ok(m0), Ok(m1)) = (views[0].view(&d0), views[1].view(&d1)) else {
                return;
            };
            let dims = match op {
                RefOp::ForwardBatch | RefOp::InputGradBatch => [m0.rows(), m0.cols(), m1.cols()],
                _ => [m0.rows(), m1.rows(), m0.cols()],
            };
            if !cheap(dims) {
                return;
            }
            no_write_on_err("reference batch", &mut out, |d| {
                let o = views[2].view_mut(d)?;
                match op {
                    RefOp::ForwardBatch => reference::forward_batch(m0, m1, im, keep, om, bias, o),
                    RefOp::WeightGradBatch => reference::weight_grad_batch(m0, m1, im, keep, om, o),
                    RefOp::InputGradBatch => reference::input_grad_batch(m0, m1, im, keep, om, o),
                    _ => reference::sgd_step_batch(o, m0, m1, im, keep, om, lr),
                }
            });
        }
    }
}
