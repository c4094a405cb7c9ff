//! Single-example layer operations against the reference: every operation, f32 and f64,
//! three layouts, six kinds of mask, sizes across every tail; poisoned dropped inputs and
//! NaN-payload outputs where nothing may be written.

mod common;

use bitdrop::{KeepProb, layer, reference};
use common::*;

/// One test case: a layer shape, a layout for `W`, an input mask and an output mask.
struct Case<T> {
    n_out: usize,
    n_in: usize,
    layout: Layout,
    keep: KeepProb,
    mask: Bits,
    out: Bits,
    /// The kept units of `mask` and of `out`, in order.
    kept_in: Vec<usize>,
    kept_out: Vec<usize>,
    /// `W`, with NaN/inf in dropped columns (and dropped rows, for the two-mask cases).
    w: Mat<T>,
    x: Vec<T>,
    dz: Vec<T>,
}

/// Calls `f` with every case: sizes x sizes x layouts x mask kinds; the output mask
/// cycles through the kinds too.
fn for_each_case<T: Float>(seed: u64, both: bool, mut f: impl FnMut(&Case<T>)) {
    let mut rng = rng(seed);
    let mut n = 0;
    for &n_out in SIZES {
        for &n_in in SIZES {
            for layout in LAYOUTS {
                for (k, &kind) in MASK_KINDS.iter().enumerate() {
                    n += 1;
                    if !sampled(n, n_out * n_in) {
                        continue;
                    }
                    let mask = Bits::new(kind, n_in, &mut rng);
                    let out_kind = if both {
                        MASK_KINDS[(k + n_in + n_out) % MASK_KINDS.len()]
                    } else {
                        MaskKind::All
                    };
                    let out = Bits::new(out_kind, n_out, &mut rng);
                    let keep = match kind {
                        MaskKind::Random(p) => KeepProb::new(p).unwrap(),
                        MaskKind::All => KeepProb::ONE,
                        _ => KeepProb::new(0.3).unwrap(),
                    };
                    let mut w = Mat::new(n_out, n_in, layout, T::sentinel());
                    w.randomize(&mut rng);
                    for j in 0..n_out {
                        for i in 0..n_in {
                            if !mask.kept(i) || !out.kept(j) {
                                w.set(j, i, poison(i + j));
                            }
                        }
                    }
                    let mut x = random_vec(n_in, &mut rng);
                    poison_vec(&mut x, &mask);
                    let mut dz = random_vec(n_out, &mut rng);
                    poison_vec(&mut dz, &out);
                    f(&Case {
                        n_out,
                        n_in,
                        layout,
                        keep,
                        kept_in: mask.mask().iter_kept().collect(),
                        kept_out: out.mask().iter_kept().collect(),
                        mask,
                        out,
                        w,
                        x,
                        dz,
                    });
                }
            }
        }
    }
}

/// A case's name for a failure's message, formatted only then.
struct Name<'c, T> {
    case: &'c Case<T>,
    op: &'static str,
}

impl<T> core::fmt::Display for Name<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let c = self.case;
        write!(
            f,
            "{}<{}> {}x{} {:?} keep {} ({} of {} in, {} of {} out)",
            self.op,
            core::any::type_name::<T>(),
            c.n_out,
            c.n_in,
            c.layout,
            c.keep,
            c.kept_in.len(),
            c.n_in,
            c.kept_out.len(),
            c.n_out
        )
    }
}

impl<T: Float> Case<T> {
    fn name(&self, op: &'static str) -> Name<'_, T> {
        Name { case: self, op }
    }

    fn kept(&self, j: usize, i: usize) -> bool {
        self.out.kept(j) && self.mask.kept(i)
    }

    fn x_scaled(&self, i: usize) -> f64 {
        self.x[i].to_f64() / self.keep.get()
    }

    /// Σ |W[j,i] x_i / keep| over kept i, and the number of terms.
    fn forward_bound(&self, j: usize) -> (usize, f64) {
        let kept = &self.kept_in;
        let sum = kept
            .iter()
            .map(|&i| (self.w.get(j, i).to_f64() * self.x_scaled(i)).abs())
            .sum();
        (kept.len(), sum)
    }

    /// Σ |W[j,i] dz_j| / keep over kept j, and the number of terms.
    fn input_grad_bound(&self, i: usize) -> (usize, f64) {
        let kept = &self.kept_out;
        let sum: f64 = kept
            .iter()
            .map(|&j| (self.w.get(j, i).to_f64() * self.dz[j].to_f64()).abs())
            .sum();
        (kept.len(), sum / self.keep.get())
    }
}

fn forward_matches<T: Float>(seed: u64, both: bool) {
    for_each_case::<T>(seed, both, |c| {
        let mut rng = rng(seed ^ 0xb1a5);
        let bias: Vec<T> = random_vec(c.n_out, &mut rng);
        let bias = (c.n_in % 2 == 0).then_some(&bias[..]);
        // Entries of z for dropped outputs hold a NaN payload; the rest random.
        let mut before: Vec<T> = random_vec(c.n_out, &mut rng);
        for (j, z) in before.iter_mut().enumerate() {
            if !c.out.kept(j) {
                *z = T::sentinel();
            }
        }
        let (mut actual, mut expected) = (before.clone(), before.clone());
        let out = both.then(|| c.out.mask());
        reference::forward(
            c.w.view(),
            &c.x,
            Some(c.mask.mask()),
            c.keep,
            out,
            bias,
            &mut expected,
        )
        .unwrap();
        if both {
            layer::forward_both(
                c.w.view(),
                &c.x,
                c.mask.mask(),
                c.keep,
                c.out.mask(),
                bias,
                &mut actual,
            )
        } else {
            layer::forward(c.w.view(), &c.x, c.mask.mask(), c.keep, bias, &mut actual)
        }
        .unwrap();
        compare(
            c.name("forward"),
            &column(&before),
            &column(&actual),
            &column(&expected),
            |j, _| {
                if !c.out.kept(j) {
                    Entry::Untouched
                } else {
                    let (terms, sum) = c.forward_bound(j);
                    let b = bias.map_or(0.0, |b| b[j].to_f64().abs());
                    Entry::Close(terms + 1, sum + b)
                }
            },
        );
    });
}

fn weight_grad_matches<T: Float>(seed: u64, both: bool) {
    for_each_case::<T>(seed, both, |c| {
        let mut rng = rng(seed ^ 0xd00d);
        let mut before = Mat::new(c.n_out, c.n_in, c.layout, T::sentinel());
        before.randomize(&mut rng);
        for j in 0..c.n_out {
            for i in 0..c.n_in {
                if !c.kept(j, i) {
                    before.set(j, i, T::sentinel());
                }
            }
        }
        let (mut actual, mut expected) = (before.clone(), before.clone());
        let out = both.then(|| c.out.mask());
        reference::weight_grad(
            &c.dz,
            &c.x,
            Some(c.mask.mask()),
            c.keep,
            out,
            expected.view_mut(),
        )
        .unwrap();
        if both {
            layer::weight_grad_both(
                &c.dz,
                &c.x,
                c.mask.mask(),
                c.keep,
                c.out.mask(),
                actual.view_mut(),
            )
        } else {
            layer::weight_grad(&c.dz, &c.x, c.mask.mask(), c.keep, actual.view_mut())
        }
        .unwrap();
        compare(
            c.name("weight_grad"),
            &before,
            &actual,
            &expected,
            |j, i| {
                if c.kept(j, i) {
                    let product = (c.dz[j].to_f64() * c.x_scaled(i)).abs();
                    Entry::Close(2, before.get(j, i).to_f64().abs() + product)
                } else {
                    Entry::Untouched
                }
            },
        );
    });
}

fn sgd_step_matches<T: Float>(seed: u64, both: bool) {
    let lr = T::from_f64(0.375);
    for_each_case::<T>(seed, both, |c| {
        let mut w = c.w.clone();
        // Dropped entries of W keep their poison: they must not be read or written.
        let before = w.clone();
        let mut expected = w.clone();
        let out = both.then(|| c.out.mask());
        reference::sgd_step(
            expected.view_mut(),
            &c.dz,
            &c.x,
            Some(c.mask.mask()),
            c.keep,
            out,
            lr,
        )
        .unwrap();
        if both {
            layer::sgd_step_both(
                w.view_mut(),
                &c.dz,
                &c.x,
                c.mask.mask(),
                c.keep,
                c.out.mask(),
                lr,
            )
        } else {
            layer::sgd_step(w.view_mut(), &c.dz, &c.x, c.mask.mask(), c.keep, lr)
        }
        .unwrap();
        compare(c.name("sgd_step"), &before, &w, &expected, |j, i| {
            if c.kept(j, i) {
                let product = (lr.to_f64() * c.dz[j].to_f64() * c.x_scaled(i)).abs();
                Entry::Close(3, before.get(j, i).to_f64().abs() + product)
            } else {
                Entry::Untouched
            }
        });
    });
}

fn input_grad_matches<T: Float>(seed: u64, both: bool) {
    for_each_case::<T>(seed, both, |c| {
        let before = vec![T::sentinel(); c.n_in];
        let (mut actual, mut expected) = (before.clone(), before.clone());
        let out = both.then(|| c.out.mask());
        reference::input_grad(
            c.w.view(),
            &c.dz,
            Some(c.mask.mask()),
            c.keep,
            out,
            &mut expected,
        )
        .unwrap();
        if both {
            layer::input_grad_both(
                c.w.view(),
                &c.dz,
                c.mask.mask(),
                c.keep,
                c.out.mask(),
                &mut actual,
            )
        } else {
            layer::input_grad(c.w.view(), &c.dz, c.mask.mask(), c.keep, &mut actual)
        }
        .unwrap();
        compare(
            c.name("input_grad"),
            &column(&before),
            &column(&actual),
            &column(&expected),
            |i, _| {
                if c.mask.kept(i) {
                    let (terms, sum) = c.input_grad_bound(i);
                    Entry::Close(terms + 1, sum)
                } else {
                    Entry::Zero
                }
            },
        );
    });
}

#[test]
fn forward_f32() {
    at_every_level(|| {
        forward_matches::<f32>(1, false);
        forward_matches::<f32>(2, true);
    });
}

#[test]
fn forward_f64() {
    at_every_level(|| {
        forward_matches::<f64>(3, false);
        forward_matches::<f64>(4, true);
    });
}

#[test]
fn weight_grad_f32() {
    at_every_level(|| {
        weight_grad_matches::<f32>(5, false);
        weight_grad_matches::<f32>(6, true);
    });
}

#[test]
fn weight_grad_f64() {
    at_every_level(|| {
        weight_grad_matches::<f64>(7, false);
        weight_grad_matches::<f64>(8, true);
    });
}

#[test]
fn input_grad_f32() {
    at_every_level(|| {
        input_grad_matches::<f32>(9, false);
        input_grad_matches::<f32>(10, true);
    });
}

#[test]
fn input_grad_f64() {
    at_every_level(|| {
        input_grad_matches::<f64>(11, false);
        input_grad_matches::<f64>(12, true);
    });
}

#[test]
fn sgd_step_f32() {
    at_every_level(|| {
        sgd_step_matches::<f32>(13, false);
        sgd_step_matches::<f32>(14, true);
    });
}

#[test]
fn sgd_step_f64() {
    at_every_level(|| {
        sgd_step_matches::<f64>(15, false);
        sgd_step_matches::<f64>(16, true);
    });
}

#[test]
fn dropout_scales_kept_and_zeroes_dropped() {
    at_every_level(|| {
        let mut rng = rng(17);
        for &n in SIZES {
            for kind in MASK_KINDS {
                let mask = Bits::new(kind, n, &mut rng);
                let mut x: Vec<f32> = random_vec(n, &mut rng);
                poison_vec(&mut x, &mask);
                let keep = KeepProb::new(0.8).unwrap();
                let mut y = vec![f32::sentinel(); n];
                layer::dropout(&x, mask.mask(), keep, &mut y).unwrap();
                for i in 0..n {
                    if mask.kept(i) {
                        assert_eq!(y[i], x[i] * 1.25);
                    } else {
                        assert_eq!(y[i].to_bits(), 0);
                    }
                }
            }
        }
    });
}
