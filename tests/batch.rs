//! Mini-batch layer operations against the reference: a mask shared by the batch and a
//! mask per example, with and without an output mask, every layout pairing.

mod common;

use bitdrop::{BatchMask, KeepProb, Mask, MaskBatch, layer, reference};
use common::*;

/// (n_out, n_in, m): empty, tiny, word tails, a batch wider than tall.
const SHAPES: &[(usize, usize, usize)] = if cfg!(miri) {
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

/// Shapes with a 1000-unit side, sampled sparsely (see `for_each_case`): the
/// matrixmultiply path's blocks of rows, and a long masked dimension. Miri runs none.
const LARGE_SHAPES: &[(usize, usize, usize)] = if cfg!(miri) {
    &[]
} else {
    &[
        (1000, 65, 7),
        (7, 1000, 65),
        (65, 7, 1000),
        (1000, 1, 0),
        (0, 1000, 7),
    ]
};
const LARGE: usize = 1000;

/// A workspace for a case, pre-filled with the sentinel.
fn workspace<T: Float>(c: &Case<T>) -> Vec<T> {
    vec![T::sentinel(); layer::batch_workspace_len::<T>(c.n_out, c.n_in, c.m)]
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
    label: String,
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
                        label: String::new(),
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
                    case.label = format!(
                        "{} {}x{} m={m} W {w_layout:?} batch {batch_layout:?} {kind:?} out {}",
                        if shared { "shared" } else { "per-example" },
                        n_out,
                        n_in,
                        case.out.is_some()
                    );
                    f(&case);
                }
            }
        }
    }
}

fn forward_matches<T: Float>(shapes: &[(usize, usize, usize)], seed: u64, shared: bool) {
    for_each_case::<T>(shapes, seed, shared, |c| {
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
        if c.shared {
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
        } else {
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
        .unwrap();
        compare(
            &format!("forward {}", c.label),
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
    shared: bool,
    lr: Option<f64>,
) {
    for_each_case::<T>(shapes, seed, shared, |c| {
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
                if c.shared {
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
                } else {
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
                if c.shared {
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
                } else {
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
                .unwrap();
                "sgd_step"
            }
        };
        let scale = lr.unwrap_or(1.0) / c.keep.get();
        compare(
            &format!("{what} {}", c.label),
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

fn input_grad_matches<T: Float>(shapes: &[(usize, usize, usize)], seed: u64, shared: bool) {
    for_each_case::<T>(shapes, seed, shared, |c| {
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
        if c.shared {
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
        } else {
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
        .unwrap();
        compare(
            &format!("input_grad {}", c.label),
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
        forward_matches::<f32>(SHAPES, 100, true);
        forward_matches::<f64>(SHAPES, 101, true);
        forward_matches::<f32>(SHAPES, 102, false);
        forward_matches::<f64>(SHAPES, 103, false);
    });
}

#[test]
fn weight_grad_shared_and_per_example() {
    at_every_level(|| {
        weight_update_matches::<f32>(SHAPES, 200, true, None);
        weight_update_matches::<f64>(SHAPES, 201, true, None);
        weight_update_matches::<f32>(SHAPES, 202, false, None);
        weight_update_matches::<f64>(SHAPES, 203, false, None);
    });
}

#[test]
fn sgd_step_shared_and_per_example() {
    at_every_level(|| {
        weight_update_matches::<f32>(SHAPES, 300, true, Some(0.25));
        weight_update_matches::<f64>(SHAPES, 301, true, Some(0.25));
        weight_update_matches::<f32>(SHAPES, 302, false, Some(0.25));
        weight_update_matches::<f64>(SHAPES, 303, false, Some(0.25));
    });
}

#[test]
fn input_grad_shared_and_per_example() {
    at_every_level(|| {
        input_grad_matches::<f32>(SHAPES, 400, true);
        input_grad_matches::<f64>(SHAPES, 401, true);
        input_grad_matches::<f32>(SHAPES, 402, false);
        input_grad_matches::<f64>(SHAPES, 403, false);
    });
}

#[test]
fn shared_mask_large_shapes() {
    // The matrixmultiply path does not depend on the level; bitdrop's kernels (the
    // portable path without `alloc`, and `dX`'s zeroing) run at the default one.
    forward_matches::<f32>(LARGE_SHAPES, 500, true);
    weight_update_matches::<f32>(LARGE_SHAPES, 501, true, None);
    weight_update_matches::<f64>(LARGE_SHAPES, 502, true, Some(0.25));
    input_grad_matches::<f32>(LARGE_SHAPES, 503, true);
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
