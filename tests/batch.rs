//! Mini-batch layer operations against the reference: a mask shared by the batch and a
//! mask per example, with and without an output mask, every layout pairing.

mod common;

#[cfg(feature = "alloc")]
use bitdrop::Error;
use bitdrop::{BatchMask, KeepProb, Mask, MaskBatch, layer, reference};
use common::*;

/// (n_out, n_in, m): empty, tiny, word tails, a batch wider than tall.
const SHAPES: &[(usize, usize, usize)] = if cfg!(miri) {
    // Under miri only tiny products: (7, 65, 3) is past the 512-entry cut of `sampled`,
    // and the batch path's row kernels on long rows have a unit test in `arch::mm`.
    &[(0, 3, 2), (1, 1, 1), (7, 65, 3), (5, 2, 0)]
} else {
    &[
        (0, 0, 0),
        (0, 3, 2),
        (4, 0, 3),
        (5, 2, 0),
        (1, 1, 1),
        (7, 65, 3),
        (65, 7, 17),
        (64, 64, 5),
        (3, 130, 64),
        (33, 20, 40),
    ]
};

/// Shapes with a 1000-unit side, sampled sparsely (see `for_each_case`): a long masked
/// dimension, and (300 x 1000, m = 2) the matrixmultiply path's blocks: with the denser
/// masks, each of its products there runs in two or more, blocks of rows (a block's
/// gathered `A` and compact `C` take about 512 KiB) or, for `dX`, blocks of the inner
/// dimension (a block's gathered `A` takes what the workspace has left). Miri runs none.
const LARGE_SHAPES: &[(usize, usize, usize)] = if cfg!(miri) {
    &[]
} else {
    &[
        (1000, 65, 7),
        (7, 1000, 65),
        (65, 7, 1000),
        (1000, 1, 0),
        (0, 1000, 7),
        (300, 1000, 2),
    ]
};
const LARGE: usize = 1000;

/// Shapes on which a `ThinnedBatch`'s products (its `W` already gathered, so only the
/// compact `C` counts toward a block) run in two or more blocks of rows, in `f64`: the
/// kept rows of `dX` (`3 x 2100`) and of `Z` under an output mask (`2100 x 3`) times
/// `m = 128`. Miri runs none.
#[cfg(feature = "alloc")]
const THINNED_BLOCK_SHAPES: &[(usize, usize, usize)] = if cfg!(miri) {
    &[]
} else {
    &[(3, 2100, 128), (2100, 3, 128)]
};

/// A workspace for a case, pre-filled with the sentinel.
fn workspace<T: Float>(c: &Case<T>) -> Vec<T> {
    vec![T::sentinel(); layer::batch_workspace_len::<T>(c.n_out, c.n_in, c.m)]
}

/// Which batch path a test runs: the shared-mask free functions, a `ThinnedBatch` (shared
/// mask, kept weights gathered once), or one mask per example.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum How {
    Shared,
    #[cfg(feature = "alloc")]
    Thinned,
    PerExample,
}

#[cfg(feature = "alloc")]
/// Runs `f` on a `ThinnedBatch` over a copy of the case's `W`, which must come back
/// bitwise unchanged (of its methods only `sgd_step` writes `W`).
fn thinned<T: Float>(
    c: &Case<T>,
    f: impl FnOnce(&mut layer::ThinnedBatch<'_, T>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut w = c.w.clone();
    let len = layer::thinned_workspace_len::<T>(c.n_out, c.n_in, c.m);
    let mut ws = vec![T::sentinel(); len];
    let out = c.out.as_ref().map(|o| o.shared());
    let result = layer::ThinnedBatch::new(w.view_mut(), c.mask.shared(), c.keep, out, &mut ws)
        .and_then(|mut step| f(&mut step));
    let same = w.data.iter().zip(&c.w.data);
    assert!(
        same.clone()
            .all(|(a, b)| a.to_bits_u64() == b.to_bits_u64()),
        "{c}: a ThinnedBatch wrote W outside sgd_step"
    );
    result
}

/// Masks for a batch: either one shared, or one per example.
struct Masks {
    per_example: Vec<Bits>,
    words: Vec<u64>,
    len: usize,
}

impl Masks {
    fn new(kind: MaskKind, len: usize, m: usize, shared: bool, seed: u64) -> Self {
        let mut rng = rng(seed);
        let first = Bits::new(kind, len, &mut rng);
        let per_example: Vec<Bits> = (0..m)
            .map(|_| {
                if shared {
                    first.clone()
                } else {
                    Bits::new(kind, len, &mut rng)
                }
            })
            .collect();
        let words = per_example.iter().flat_map(|b| b.words.clone()).collect();
        Masks {
            per_example,
            words,
            len,
        }
    }
    fn kept(&self, unit: usize, example: usize) -> bool {
        self.per_example[example].kept(unit)
    }
    fn batch(&self) -> MaskBatch<'_> {
        MaskBatch::new(&self.words, self.len, self.per_example.len()).unwrap()
    }
    fn shared(&self) -> Mask<'_> {
        self.per_example[0].mask()
    }
}

struct Case<T> {
    n_out: usize,
    n_in: usize,
    m: usize,
    shared: bool,
    keep: KeepProb,
    mask: Masks,
    /// All outputs kept when `None`.
    out: Option<Masks>,
    w: Mat<T>,
    x: Mat<T>,
    dz: Mat<T>,
    w_layout: Layout,
    batch_layout: Layout,
    /// The input mask's kind.
    kind: MaskKind,
}

/// The case's name in a failure's message (formatted only then).
impl<T> core::fmt::Display for Case<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} {}x{} m={} W {:?} batch {:?} {:?} out {}",
            if self.shared { "shared" } else { "per-example" },
            self.n_out,
            self.n_in,
            self.m,
            self.w_layout,
            self.batch_layout,
            self.kind,
            self.out.is_some()
        )
    }
}

impl<T: Float> Case<T> {
    fn out_kept(&self, j: usize, k: usize) -> bool {
        self.out.as_ref().is_none_or(|o| o.kept(j, k))
    }
    fn in_mask(&self) -> BatchMask<'_> {
        if self.shared {
            BatchMask::Shared(self.mask.shared())
        } else {
            BatchMask::PerExample(self.mask.batch())
        }
    }
    fn out_mask(&self) -> Option<BatchMask<'_>> {
        self.out.as_ref().map(|o| {
            if self.shared {
                BatchMask::Shared(o.shared())
            } else {
                BatchMask::PerExample(o.batch())
            }
        })
    }
}

/// Every shape x layout of `W` x layout of the batch matrices x mask kind, shared or per
/// example, output mask absent or of a cycling kind.
fn for_each_case<T: Float>(
    shapes: &[(usize, usize, usize)],
    seed: u64,
    shared: bool,
    mut f: impl FnMut(&Case<T>),
) {
    let mut rng = rng(seed);
    let mut n = 0u64;
    // The large shapes run one case in 7 (a stride prime to the 54 cases of a shape).
    let large = |&(a, b, c): &(usize, usize, usize)| a.max(b).max(c) >= LARGE;
    for &(n_out, n_in, m) in shapes {
        for w_layout in LAYOUTS {
            for batch_layout in LAYOUTS {
                for (k, &kind) in MASK_KINDS.iter().enumerate() {
                    n += 1;
                    if !sampled(n as usize, (n_out + m) * n_in)
                        || (large(&(n_out, n_in, m)) && !n.is_multiple_of(7))
                    {
                        continue;
                    }
                    // m = 0 masks still need a shared mask to exist.
                    let masks_m = if shared { m.max(1) } else { m };
                    let mask = Masks::new(kind, n_in, masks_m, shared, seed + n);
                    let out = n.is_multiple_of(2).then(|| {
                        let kind = MASK_KINDS[(k + 1 + n as usize) % MASK_KINDS.len()];
                        Masks::new(kind, n_out, masks_m, shared, seed + n + 1000)
                    });
                    let keep = match kind {
                        MaskKind::Random(p) => KeepProb::new(p).unwrap(),
                        _ => KeepProb::new(0.625).unwrap(),
                    };
                    let mut w = Mat::new(n_out, n_in, w_layout, T::sentinel());
                    w.randomize(&mut rng);
                    let mut x = Mat::new(n_in, m, batch_layout, T::sentinel());
                    x.randomize(&mut rng);
                    let mut dz = Mat::new(n_out, m, batch_layout, T::sentinel());
                    dz.randomize(&mut rng);
                    let mut case = Case {
                        n_out,
                        n_in,
                        m,
                        shared,
                        keep,
                        mask,
                        out,
                        w,
                        x,
                        dz,
                        w_layout,
                        batch_layout,
                        kind,
                    };
                    // Poison what must never be read: dropped (unit, example) entries of X
                    // and dZ, and the columns (rows) of W that no example keeps.
                    for k in 0..m {
                        for i in 0..n_in {
                            if !case.mask.kept(i, k) {
                                case.x.set(i, k, poison(i + k));
                            }
                        }
                        for j in 0..n_out {
                            if !case.out_kept(j, k) {
                                case.dz.set(j, k, poison(j + k));
                            }
                        }
                    }
                    for i in 0..n_in {
                        for j in 0..n_out {
                            let unused = (0..masks_m).all(|k| !case.mask.kept(i, k))
                                || (0..masks_m).all(|k| !case.out_kept(j, k));
                            if unused {
                                case.w.set(j, i, poison(i + j));
                            }
                        }
                    }
                    f(&case);
                }
            }
        }
    }
}

fn forward_matches<T: Float>(shapes: &[(usize, usize, usize)], seed: u64, how: How) {
    for_each_case::<T>(shapes, seed, how != How::PerExample, |c| {
        let mut rng = rng(seed + 7);
        let bias: Vec<T> = random_vec(c.n_out, &mut rng);
        let bias = (c.m % 2 == 1).then_some(&bias[..]);
        let mut before = Mat::new(c.n_out, c.m, c.batch_layout, T::sentinel());
        before.randomize(&mut rng);
        for j in 0..c.n_out {
            for k in 0..c.m {
                if !c.out_kept(j, k) {
                    before.set(j, k, T::sentinel());
                }
            }
        }
        let (mut actual, mut expected) = (before.clone(), before.clone());
        reference::forward_batch(
            c.w.view(),
            c.x.view(),
            Some(c.in_mask()),
            c.keep,
            c.out_mask(),
            bias,
            expected.view_mut(),
        )
        .unwrap();
        match how {
            How::Shared => {
                let out = c.out.as_ref().map(|o| o.shared());
                layer::forward_batch(
                    c.w.view(),
                    c.x.view(),
                    c.mask.shared(),
                    c.keep,
                    out,
                    bias,
                    actual.view_mut(),
                    &mut workspace(c),
                )
            }
            #[cfg(feature = "alloc")]
            How::Thinned => thinned(c, |step| step.forward(c.x.view(), bias, actual.view_mut())),
            How::PerExample => {
                let out = c.out.as_ref().map(|o| o.batch());
                layer::forward_per_example(
                    c.w.view(),
                    c.x.view(),
                    c.mask.batch(),
                    c.keep,
                    out,
                    bias,
                    actual.view_mut(),
                )
            }
        }
        .unwrap();
        compare(
            format_args!("forward {c}"),
            &before,
            &actual,
            &expected,
            |j, k| {
                if !c.out_kept(j, k) {
                    return Entry::Untouched;
                }
                let kept: Vec<usize> = (0..c.n_in).filter(|&i| c.mask.kept(i, k)).collect();
                let sum: f64 = kept
                    .iter()
                    .map(|&i| {
                        (c.w.get(j, i).to_f64() * c.x.get(i, k).to_f64()).abs() / c.keep.get()
                    })
                    .sum();
                let b = bias.map_or(0.0, |b| b[j].to_f64().abs());
                Entry::Close(kept.len() + 1, sum + b)
            },
        );
    });
}

/// `dW += dZ Ãᵀ` (`lr = None`) or `W -= lr dZ Ãᵀ` (`lr = Some`).
fn weight_update_matches<T: Float>(
    shapes: &[(usize, usize, usize)],
    seed: u64,
    how: How,
    lr: Option<f64>,
) {
    for_each_case::<T>(shapes, seed, how != How::PerExample, |c| {
        let mut rng = rng(seed + 11);
        let examples = |j: usize, i: usize| -> Vec<usize> {
            (0..c.m)
                .filter(|&k| c.mask.kept(i, k) && c.out_kept(j, k))
                .collect()
        };
        let mut before = Mat::new(c.n_out, c.n_in, c.w_layout, T::sentinel());
        before.randomize(&mut rng);
        // An entry no example updates holds a NaN payload.
        for j in 0..c.n_out {
            for i in 0..c.n_in {
                if examples(j, i).is_empty() {
                    before.set(j, i, T::sentinel());
                }
            }
        }
        let (mut actual, mut expected) = (before.clone(), before.clone());
        let what = match lr {
            None => {
                reference::weight_grad_batch(
                    c.dz.view(),
                    c.x.view(),
                    Some(c.in_mask()),
                    c.keep,
                    c.out_mask(),
                    expected.view_mut(),
                )
                .unwrap();
                match how {
                    How::Shared => {
                        let out = c.out.as_ref().map(|o| o.shared());
                        layer::weight_grad_batch(
                            c.dz.view(),
                            c.x.view(),
                            c.mask.shared(),
                            c.keep,
                            out,
                            actual.view_mut(),
                            &mut workspace(c),
                        )
                    }
                    #[cfg(feature = "alloc")]
                    How::Thinned => thinned(c, |step| {
                        step.weight_grad(c.dz.view(), c.x.view(), actual.view_mut())
                    }),
                    How::PerExample => {
                        let out = c.out.as_ref().map(|o| o.batch());
                        layer::weight_grad_per_example(
                            c.dz.view(),
                            c.x.view(),
                            c.mask.batch(),
                            c.keep,
                            out,
                            actual.view_mut(),
                        )
                    }
                }
                .unwrap();
                "weight_grad"
            }
            Some(lr) => {
                let lr = T::from_f64(lr);
                reference::sgd_step_batch(
                    expected.view_mut(),
                    c.dz.view(),
                    c.x.view(),
                    Some(c.in_mask()),
                    c.keep,
                    c.out_mask(),
                    lr,
                )
                .unwrap();
                match how {
                    #[cfg(feature = "alloc")]
                    How::Thinned => {
                        // The step updates the W it borrows: `actual`.
                        let out = c.out.as_ref().map(|o| o.shared());
                        let len = layer::thinned_workspace_len::<T>(c.n_out, c.n_in, c.m);
                        let mut ws = vec![T::sentinel(); len];
                        layer::ThinnedBatch::new(
                            actual.view_mut(),
                            c.mask.shared(),
                            c.keep,
                            out,
                            &mut ws,
                        )
                        .and_then(|mut step| step.sgd_step(c.dz.view(), c.x.view(), lr))
                    }
                    How::Shared => {
                        let out = c.out.as_ref().map(|o| o.shared());
                        layer::sgd_step_batch(
                            actual.view_mut(),
                            c.dz.view(),
                            c.x.view(),
                            c.mask.shared(),
                            c.keep,
                            out,
                            lr,
                            &mut workspace(c),
                        )
                    }
                    How::PerExample => {
                        let out = c.out.as_ref().map(|o| o.batch());
                        layer::sgd_step_per_example(
                            actual.view_mut(),
                            c.dz.view(),
                            c.x.view(),
                            c.mask.batch(),
                            c.keep,
                            out,
                            lr,
                        )
                    }
                }
                .unwrap();
                "sgd_step"
            }
        };
        let scale = lr.unwrap_or(1.0) / c.keep.get();
        compare(
            format_args!("{what} {c}"),
            &before,
            &actual,
            &expected,
            |j, i| {
                let ks = examples(j, i);
                if ks.is_empty() {
                    return Entry::Untouched;
                }
                let sum: f64 = ks
                    .iter()
                    .map(|&k| (c.dz.get(j, k).to_f64() * c.x.get(i, k).to_f64() * scale).abs())
                    .sum();
                Entry::Close(ks.len() + 2, sum + before.get(j, i).to_f64().abs())
            },
        );
    });
}

fn input_grad_matches<T: Float>(shapes: &[(usize, usize, usize)], seed: u64, how: How) {
    for_each_case::<T>(shapes, seed, how != How::PerExample, |c| {
        let before = Mat::new(c.n_in, c.m, c.batch_layout, T::sentinel());
        let (mut actual, mut expected) = (before.clone(), before.clone());
        reference::input_grad_batch(
            c.w.view(),
            c.dz.view(),
            Some(c.in_mask()),
            c.keep,
            c.out_mask(),
            expected.view_mut(),
        )
        .unwrap();
        match how {
            How::Shared => {
                let out = c.out.as_ref().map(|o| o.shared());
                layer::input_grad_batch(
                    c.w.view(),
                    c.dz.view(),
                    c.mask.shared(),
                    c.keep,
                    out,
                    actual.view_mut(),
                    &mut workspace(c),
                )
            }
            #[cfg(feature = "alloc")]
            How::Thinned => thinned(c, |step| step.input_grad(c.dz.view(), actual.view_mut())),
            How::PerExample => {
                let out = c.out.as_ref().map(|o| o.batch());
                layer::input_grad_per_example(
                    c.w.view(),
                    c.dz.view(),
                    c.mask.batch(),
                    c.keep,
                    out,
                    actual.view_mut(),
                )
            }
        }
        .unwrap();
        compare(
            format_args!("input_grad {c}"),
            &before,
            &actual,
            &expected,
            |i, k| {
                if !c.mask.kept(i, k) {
                    return Entry::Zero;
                }
                let kept: Vec<usize> = (0..c.n_out).filter(|&j| c.out_kept(j, k)).collect();
                let sum: f64 = kept
                    .iter()
                    .map(|&j| (c.w.get(j, i).to_f64() * c.dz.get(j, k).to_f64()).abs())
                    .sum();
                Entry::Close(kept.len() + 1, sum / c.keep.get())
            },
        );
    });
}

#[test]
fn forward_shared_and_per_example() {
    at_every_level(|| {
        forward_matches::<f32>(SHAPES, 100, How::Shared);
        forward_matches::<f64>(SHAPES, 101, How::Shared);
        forward_matches::<f32>(SHAPES, 102, How::PerExample);
        forward_matches::<f64>(SHAPES, 103, How::PerExample);
    });
}

#[test]
fn weight_grad_shared_and_per_example() {
    at_every_level(|| {
        weight_update_matches::<f32>(SHAPES, 200, How::Shared, None);
        weight_update_matches::<f64>(SHAPES, 201, How::Shared, None);
        weight_update_matches::<f32>(SHAPES, 202, How::PerExample, None);
        weight_update_matches::<f64>(SHAPES, 203, How::PerExample, None);
    });
}

#[test]
fn sgd_step_shared_and_per_example() {
    at_every_level(|| {
        weight_update_matches::<f32>(SHAPES, 300, How::Shared, Some(0.25));
        weight_update_matches::<f64>(SHAPES, 301, How::Shared, Some(0.25));
        weight_update_matches::<f32>(SHAPES, 302, How::PerExample, Some(0.25));
        weight_update_matches::<f64>(SHAPES, 303, How::PerExample, Some(0.25));
    });
}

#[test]
fn input_grad_shared_and_per_example() {
    at_every_level(|| {
        input_grad_matches::<f32>(SHAPES, 400, How::Shared);
        input_grad_matches::<f64>(SHAPES, 401, How::Shared);
        input_grad_matches::<f32>(SHAPES, 402, How::PerExample);
        input_grad_matches::<f64>(SHAPES, 403, How::PerExample);
    });
}

#[test]
fn shared_mask_large_shapes() {
    // The matrixmultiply path does not depend on the level; bitdrop's kernels (the
    // portable path without `alloc`, and `dX`'s zeroing) run at the default one.
    forward_matches::<f32>(LARGE_SHAPES, 500, How::Shared);
    weight_update_matches::<f32>(LARGE_SHAPES, 501, How::Shared, None);
    weight_update_matches::<f64>(LARGE_SHAPES, 502, How::Shared, Some(0.25));
    input_grad_matches::<f32>(LARGE_SHAPES, 503, How::Shared);
}

/// A `ThinnedBatch` computes what the shared-mask free functions compute, at every level
/// (its gathers and scatters run bitdrop's vector kernels), `W` untouched outside
/// `sgd_step`, dropped entries untouched by it.
#[cfg(feature = "alloc")]
#[test]
fn thinned_batch_matches_the_reference() {
    at_every_level(|| {
        forward_matches::<f32>(SHAPES, 700, How::Thinned);
        forward_matches::<f64>(SHAPES, 701, How::Thinned);
        weight_update_matches::<f32>(SHAPES, 702, How::Thinned, None);
        weight_update_matches::<f64>(SHAPES, 703, How::Thinned, Some(0.25));
        weight_update_matches::<f32>(SHAPES, 704, How::Thinned, Some(0.25));
        input_grad_matches::<f32>(SHAPES, 705, How::Thinned);
        input_grad_matches::<f64>(SHAPES, 706, How::Thinned);
    });
    forward_matches::<f32>(LARGE_SHAPES, 710, How::Thinned);
    weight_update_matches::<f32>(LARGE_SHAPES, 711, How::Thinned, Some(0.25));
    input_grad_matches::<f32>(LARGE_SHAPES, 712, How::Thinned);
    forward_matches::<f64>(THINNED_BLOCK_SHAPES, 713, How::Thinned);
    input_grad_matches::<f64>(THINNED_BLOCK_SHAPES, 714, How::Thinned);
}

/// One `ThinnedBatch` through a whole step and on: forward, input gradient, SGD step,
/// then a forward pass that must see the updated weights; the same calls through the
/// free functions give the same results (the same GEMM shapes on the same compact
/// operands, so within rounding of each other), and untouched entries stay bitwise.
#[cfg(feature = "alloc")]
#[test]
fn thinned_batch_through_a_step() {
    let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(3, 70, 2)]
    } else {
        &[(65, 130, 9), (1, 64, 1), (200, 7, 33)]
    };
    let mut rng = rng(720);
    for &(n_out, n_in, m) in shapes {
        for w_layout in LAYOUTS {
            for with_out in [false, true] {
                let mask = Bits::new(MaskKind::Random(0.5), n_in, &mut rng);
                let out = Bits::new(MaskKind::Random(0.75), n_out, &mut rng);
                let out_mask = with_out.then(|| out.mask());
                let keep = KeepProb::new(0.5).unwrap();
                let mut w = Mat::<f64>::new(n_out, n_in, w_layout, f64::sentinel());
                w.randomize(&mut rng);
                let mut x = Mat::<f64>::new(n_in, m, Layout::ColMajor, 0.0);
                x.randomize(&mut rng);
                let mut dz = Mat::<f64>::new(n_out, m, Layout::RowMajor, 0.0);
                dz.randomize(&mut rng);
                let bias: Vec<f64> = random_vec(n_out, &mut rng);
                let label = format!("{n_out}x{n_in} m={m} W {w_layout:?} out {with_out}");

                // The free functions.
                let mut w_free = w.clone();
                let mut ws = vec![0.0; layer::batch_workspace_len::<f64>(n_out, n_in, m)];
                let mut z_free = Mat::<f64>::new(n_out, m, Layout::ColMajor, f64::sentinel());
                let mut dx_free = Mat::<f64>::new(n_in, m, Layout::ColMajor, f64::sentinel());
                let mut z2_free = z_free.clone();
                let (xv, dzv) = (x.view(), dz.view());
                let mk = mask.mask();
                layer::forward_batch(
                    w_free.view(),
                    xv,
                    mk,
                    keep,
                    out_mask,
                    Some(&bias),
                    z_free.view_mut(),
                    &mut ws,
                )
                .unwrap();
                layer::input_grad_batch(
                    w_free.view(),
                    dzv,
                    mk,
                    keep,
                    out_mask,
                    dx_free.view_mut(),
                    &mut ws,
                )
                .unwrap();
                layer::sgd_step_batch(
                    w_free.view_mut(),
                    dzv,
                    xv,
                    mk,
                    keep,
                    out_mask,
                    0.125,
                    &mut ws,
                )
                .unwrap();
                layer::forward_batch(
                    w_free.view(),
                    xv,
                    mk,
                    keep,
                    out_mask,
                    None,
                    z2_free.view_mut(),
                    &mut ws,
                )
                .unwrap();

                // One ThinnedBatch.
                let mut w_thin = w.clone();
                let mut ws = vec![0.0; layer::thinned_workspace_len::<f64>(n_out, n_in, m)];
                let mut z = Mat::<f64>::new(n_out, m, Layout::ColMajor, f64::sentinel());
                let mut dx = Mat::<f64>::new(n_in, m, Layout::ColMajor, f64::sentinel());
                let mut z2 = z.clone();
                let mut step =
                    layer::ThinnedBatch::new(w_thin.view_mut(), mk, keep, out_mask, &mut ws)
                        .unwrap();
                step.forward(xv, Some(&bias), z.view_mut()).unwrap();
                step.input_grad(dzv, dx.view_mut()).unwrap();
                step.sgd_step(dzv, xv, 0.125).unwrap();
                step.forward(xv, None, z2.view_mut()).unwrap();

                for (what, a, b) in [
                    ("z", &z, &z_free),
                    ("dx", &dx, &dx_free),
                    ("w", &w_thin, &w_free),
                    ("z after the step", &z2, &z2_free),
                ] {
                    for (k, (p, q)) in a.data.iter().zip(&b.data).enumerate() {
                        let same_bits = p.to_bits() == q.to_bits();
                        let close = (p - q).abs() <= 1e-12 * (1.0 + q.abs());
                        assert!(same_bits || close, "{label}: {what}[{k}] {p} vs {q}");
                    }
                }
                // The forward pass after the step saw the new weights.
                let changed = z2
                    .data
                    .iter()
                    .zip(&z.data)
                    .any(|(p, q)| p.to_bits() != q.to_bits());
                assert!(
                    changed || n_out == 0 || m == 0,
                    "{label}: the second forward pass"
                );
            }
        }
    }
}

/// With every unit kept a `ThinnedBatch` gathers nothing: the workspace comes back
/// untouched. With one unit dropped it is written (so the check can fail).
#[cfg(feature = "alloc")]
#[test]
fn thinned_batch_all_kept_takes_the_direct_path() {
    let (n_out, n_in, m) = if cfg!(miri) { (3, 70, 2) } else { (65, 70, 9) };
    let mut rng = rng(730);
    let mut w = Mat::<f32>::new(n_out, n_in, Layout::ColMajor, 0.0);
    w.randomize(&mut rng);
    let mut x = Mat::<f32>::new(n_in, m, Layout::ColMajor, 0.0);
    x.randomize(&mut rng);
    let all = Bits::new(MaskKind::All, n_in, &mut rng);
    let mut one_dropped = all.words.clone();
    one_dropped[0] &= !(1 << 3);
    let one_dropped = Bits::new_from_words(one_dropped, n_in);
    for (mask, direct) in [(&all, true), (&one_dropped, false)] {
        let mut ws = vec![f32::sentinel(); layer::thinned_workspace_len::<f32>(n_out, n_in, m)];
        let mut z = Mat::<f32>::new(n_out, m, Layout::ColMajor, 0.0);
        let mut w2 = w.clone();
        let mut step =
            layer::ThinnedBatch::new(w2.view_mut(), mask.mask(), KeepProb::ONE, None, &mut ws)
                .unwrap();
        step.forward(x.view(), None, z.view_mut()).unwrap();
        let untouched = ws.iter().all(|v| v.to_bits() == f32::sentinel().to_bits());
        assert_eq!(untouched, direct, "workspace untouched = direct path");
    }
}

/// `dX`'s dropped rows are exactly 0 also in a block of rows that keeps no unit: the mask
/// keeps whole leading words, as many units as one block of rows of the matrixmultiply
/// path takes for a `ThinnedBatch` at m = 128 (512), so its last block keeps none. The
/// free function (300 x 1000, m = 2, 256 kept rows) runs in blocks of the inner
/// dimension instead, two of them in f64, and zeroes the dropped rows in its one
/// scatter. On the portable path the same checks run without blocks.
#[test]
#[cfg_attr(miri, ignore = "large shapes")]
fn input_grad_zeroes_rows_of_a_block_without_kept_units() {
    for (n_out, n_in, m, kept, thinned) in [
        (300, 1000, 2, 256, false),
        (3, 2100, 128, 512, cfg!(feature = "alloc")),
    ] {
        let mut rng = rng(740);
        let mut w = Mat::<f64>::new(n_out, n_in, Layout::ColMajor, 0.0);
        w.randomize(&mut rng);
        let mut dz = Mat::<f64>::new(n_out, m, Layout::ColMajor, 0.0);
        dz.randomize(&mut rng);
        let mut words = vec![0u64; bitdrop::words_for(n_in)];
        words[..kept / 64].fill(u64::MAX);
        let mask = Bits::new_from_words(words, n_in);
        for layout in LAYOUTS {
            let mut expected = Mat::<f64>::new(n_in, m, layout, f64::NAN);
            reference::input_grad_batch(
                w.view(),
                dz.view(),
                Some(BatchMask::Shared(mask.mask())),
                KeepProb::ONE,
                None,
                expected.view_mut(),
            )
            .unwrap();
            let mut actual = Mat::<f64>::new(n_in, m, layout, f64::NAN);
            if thinned {
                #[cfg(feature = "alloc")]
                {
                    let len = layer::thinned_workspace_len::<f64>(n_out, n_in, m);
                    let mut ws = vec![0.0; len];
                    let mut w2 = w.clone();
                    let mut step = layer::ThinnedBatch::new(
                        w2.view_mut(),
                        mask.mask(),
                        KeepProb::ONE,
                        None,
                        &mut ws,
                    )
                    .unwrap();
                    step.input_grad(dz.view(), actual.view_mut()).unwrap();
                }
            } else {
                let mut ws = vec![0.0; layer::batch_workspace_len::<f64>(n_out, n_in, m)];
                layer::input_grad_batch(
                    w.view(),
                    dz.view(),
                    mask.mask(),
                    KeepProb::ONE,
                    None,
                    actual.view_mut(),
                    &mut ws,
                )
                .unwrap();
            }
            for i in 0..n_in {
                for k in 0..m {
                    let (a, e) = (actual.get(i, k), expected.get(i, k));
                    if i >= kept {
                        assert_eq!(a.to_bits(), 0, "{n_in} {layout:?}: dx[{i},{k}] = {a}");
                    } else {
                        assert!((a - e).abs() <= 1e-9 * (1.0 + e.abs()), "dx[{i},{k}]");
                    }
                }
            }
        }
    }
}

/// The matrixmultiply path's blocks of the inner dimension with that dimension masked
/// too, f64: `dX` of a 1000 x 700 layer (350 or so of 700 inputs kept, 900 or so of 1000
/// outputs, m = 2) runs in about three blocks of 305 kept outputs, each taking its rows of
/// the gathered `dZ` from the middle of it; the forward pass of the 700 x 1000 layer
/// (the masks swapped) likewise, with the gathered `X`. The dropped entries of `W`, `dZ`
/// and `X` hold NaN and infinities, which must never be read. Checked against the
/// reference on the clean matrices: kept entries close, `dX`'s dropped rows exactly 0,
/// `Z`'s dropped rows untouched.
#[test]
#[cfg_attr(miri, ignore = "large shapes")]
fn inner_blocks_with_a_masked_inner_dimension() {
    let (wide, narrow, m) = (1000, 700, 2);
    let keep = KeepProb::new(0.5).unwrap();
    let mut rng = rng(760);
    for layout in LAYOUTS {
        for forward in [false, true] {
            // dX: inputs `narrow` (keep 0.5), outputs `wide` (0.9); forward: the reverse.
            let (n_out, n_in) = if forward {
                (narrow, wide)
            } else {
                (wide, narrow)
            };
            let (in_keep, out_keep) = if forward { (0.9, 0.5) } else { (0.5, 0.9) };
            let in_mask = Bits::new(MaskKind::Random(in_keep), n_in, &mut rng);
            let out_mask = Bits::new(MaskKind::Random(out_keep), n_out, &mut rng);
            let mut w = Mat::<f64>::new(n_out, n_in, layout, f64::sentinel());
            w.randomize(&mut rng);
            let batch_rows = if forward { n_in } else { n_out };
            let mut batch = Mat::<f64>::new(batch_rows, m, Layout::ColMajor, 0.0);
            batch.randomize(&mut rng);
            let (mut w_poisoned, mut batch_poisoned) = (w.clone(), batch.clone());
            for j in 0..n_out {
                for i in 0..n_in {
                    if !(in_mask.kept(i) && out_mask.kept(j)) {
                        w_poisoned.set(j, i, poison(j + i));
                    }
                }
            }
            let batch_mask = if forward { &in_mask } else { &out_mask };
            for r in 0..batch_rows {
                for k in 0..m {
                    if !batch_mask.kept(r) {
                        batch_poisoned.set(r, k, poison(r + k));
                    }
                }
            }
            let out_rows = if forward { n_out } else { n_in };
            let before = Mat::<f64>::new(out_rows, m, layout, f64::NAN);
            let (mut expected, mut actual) = (before.clone(), before.clone());
            let mut ws = vec![f64::sentinel(); layer::batch_workspace_len::<f64>(n_out, n_in, m)];
            let (shared_in, shared_out) = (
                Some(BatchMask::Shared(in_mask.mask())),
                Some(BatchMask::Shared(out_mask.mask())),
            );
            if forward {
                reference::forward_batch(
                    w.view(),
                    batch.view(),
                    shared_in,
                    keep,
                    shared_out,
                    None,
                    expected.view_mut(),
                )
                .unwrap();
                layer::forward_batch(
                    w_poisoned.view(),
                    batch_poisoned.view(),
                    in_mask.mask(),
                    keep,
                    Some(out_mask.mask()),
                    None,
                    actual.view_mut(),
                    &mut ws,
                )
                .unwrap();
            } else {
                reference::input_grad_batch(
                    w.view(),
                    batch.view(),
                    shared_in,
                    keep,
                    shared_out,
                    expected.view_mut(),
                )
                .unwrap();
                layer::input_grad_batch(
                    w_poisoned.view(),
                    batch_poisoned.view(),
                    in_mask.mask(),
                    keep,
                    Some(out_mask.mask()),
                    actual.view_mut(),
                    &mut ws,
                )
                .unwrap();
            }
            // Each kept entry sums at most `wide` products of values below 1, scaled by
            // 1 / keep.
            let (kept_rows, summed) = if forward {
                (&out_mask, n_in)
            } else {
                (&in_mask, n_out)
            };
            compare(
                format_args!("forward {forward}, W {layout:?}"),
                &before,
                &actual,
                &expected,
                |r, _| match (kept_rows.kept(r), forward) {
                    (true, _) => Entry::Close(summed, summed as f64 / 0.5),
                    (false, true) => Entry::Untouched,
                    (false, false) => Entry::Zero,
                },
            );
        }
    }
}

/// Wrong shapes and short workspaces are errors that write nothing.
#[cfg(feature = "alloc")]
#[test]
fn thinned_batch_errors() {
    let (n_out, n_in, m) = (5, 9, 4);
    let mut rng = rng(740);
    let mask = Bits::new(MaskKind::Random(0.5), n_in, &mut rng);
    let mut w = Mat::<f32>::new(n_out, n_in, Layout::RowMajor, 0.0);
    w.randomize(&mut rng);
    let before = w.clone();
    let need = layer::thinned_workspace_len::<f32>(n_out, n_in, m);
    let mut short = vec![0.0f32; layer::thinned_workspace_len::<f32>(n_out, n_in, 0) - 1];
    let r = layer::ThinnedBatch::new(w.view_mut(), mask.mask(), KeepProb::ONE, None, &mut short);
    assert!(matches!(r, Err(Error::Workspace { .. })), "{r:?}");
    let wrong = Bits::new(MaskKind::All, n_in + 1, &mut rng);
    let mut ws = vec![0.0f32; need];
    let r = layer::ThinnedBatch::new(w.view_mut(), wrong.mask(), KeepProb::ONE, None, &mut ws);
    assert!(matches!(r, Err(Error::MaskLength { .. })), "{r:?}");

    // A workspace for batches of m - 1 is too short for a batch of m.
    let mut ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(n_out, n_in, m - 1)];
    let x = Mat::<f32>::new(n_in, m, Layout::ColMajor, 1.0);
    let dz = Mat::<f32>::new(n_out, m, Layout::ColMajor, 1.0);
    let mut z = Mat::<f32>::new(n_out, m, Layout::ColMajor, f32::sentinel());
    let z_before = z.clone();
    let mut step =
        layer::ThinnedBatch::new(w.view_mut(), mask.mask(), KeepProb::ONE, None, &mut ws).unwrap();
    let r = step.forward(x.view(), None, z.view_mut());
    assert!(matches!(r, Err(Error::Workspace { .. })), "{r:?}");
    let r = step.sgd_step(dz.view(), x.view(), 1.0);
    assert!(matches!(r, Err(Error::Workspace { .. })), "{r:?}");
    // A batch of the wrong height.
    let x_short = Mat::<f32>::new(n_in - 1, m - 1, Layout::ColMajor, 1.0);
    let r = step.forward(x_short.view(), None, z.view_mut());
    assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
    let same = |a: &Mat<f32>, b: &Mat<f32>| {
        a.data
            .iter()
            .zip(&b.data)
            .all(|(p, q)| p.to_bits() == q.to_bits())
    };
    assert!(same(&z, &z_before), "z written on error");
    assert!(same(&w, &before), "W written on error");
}

/// With every unit kept the GEMM runs on the caller's matrices: a sentinel-filled
/// workspace comes back bitwise untouched. With one unit dropped the same calls gather
/// into it (the check can fail). Without `alloc` the workspace is empty.
#[test]
fn all_kept_takes_the_direct_path() {
    // Under miri (where matrixmultiply runs its portable kernel) one small layout.
    let (n_out, n_in, m) = if cfg!(miri) { (9, 70, 2) } else { (65, 70, 9) };
    let layouts: &[Layout] = if cfg!(miri) {
        &[Layout::RowMajor]
    } else {
        &LAYOUTS
    };
    let mut rng = rng(600);
    for &w_layout in layouts {
        let mut w = Mat::<f32>::new(n_out, n_in, w_layout, f32::sentinel());
        w.randomize(&mut rng);
        let mut x = Mat::<f32>::new(n_in, m, Layout::ColMajor, f32::sentinel());
        x.randomize(&mut rng);
        let mut dz = Mat::<f32>::new(n_out, m, Layout::RowMajor, f32::sentinel());
        dz.randomize(&mut rng);
        let all_in = Bits::new(MaskKind::All, n_in, &mut rng);
        let all_out = Bits::new(MaskKind::All, n_out, &mut rng);
        let mut one_dropped = all_in.clone();
        one_dropped.words[0] &= !(1 << 3);
        let one_dropped = Bits::new_from_words(one_dropped.words, n_in);
        let out_dropped = one_dropped_out(n_out);
        let configs = [
            (&all_in, None, true),
            (&one_dropped, None, false),
            (&all_in, Some(&all_out), true),
            (&all_in, Some(&out_dropped), false),
        ];
        for &(mask, out, direct) in &configs[..if cfg!(miri) { 2 } else { 4 }] {
            let len = layer::batch_workspace_len::<f32>(n_out, n_in, m);
            let mut ws = vec![f32::sentinel(); len];
            let untouched =
                |ws: &[f32]| ws.iter().all(|v| v.to_bits() == f32::sentinel().to_bits());
            let out = out.map(Bits::mask);
            let mut z = Mat::<f32>::new(n_out, m, Layout::ColMajor, 0.0);
            let mut dw = Mat::<f32>::new(n_out, n_in, w_layout, 0.0);
            let mut dx = Mat::<f32>::new(n_in, m, Layout::RowMajor, 0.0);
            let mut w2 = w.clone();
            let keeps = [KeepProb::ONE, KeepProb::new(0.5).unwrap()];
            for &keep in &keeps[..if cfg!(miri) { 1 } else { 2 }] {
                let m_ = mask.mask();
                layer::forward_batch(
                    w.view(),
                    x.view(),
                    m_,
                    keep,
                    out,
                    None,
                    z.view_mut(),
                    &mut ws,
                )
                .unwrap();
                layer::weight_grad_batch(
                    dz.view(),
                    x.view(),
                    m_,
                    keep,
                    out,
                    dw.view_mut(),
                    &mut ws,
                )
                .unwrap();
                layer::input_grad_batch(w.view(), dz.view(), m_, keep, out, dx.view_mut(), &mut ws)
                    .unwrap();
                layer::sgd_step_batch(
                    w2.view_mut(),
                    dz.view(),
                    x.view(),
                    m_,
                    keep,
                    out,
                    0.1,
                    &mut ws,
                )
                .unwrap();
                assert_eq!(
                    untouched(&ws),
                    direct || len == 0,
                    "{w_layout:?} keep {keep:?}: workspace untouched = direct path"
                );
            }
        }
    }
}

fn one_dropped_out(n_out: usize) -> Bits {
    let mut words = vec![u64::MAX; bitdrop::words_for(n_out)];
    if !n_out.is_multiple_of(64) {
        *words.last_mut().unwrap() = (1 << (n_out % 64)) - 1;
    }
    words[0] &= !1;
    Bits::new_from_words(words, n_out)
}
