//! The masked BLAS primitives against literal loops: row and column masks present or
//! absent, every layout, alpha and beta (including BLAS's beta = 0).

// The oracle loops index like the formulas they transcribe.
#![allow(clippy::needless_range_loop)]

mod common;

use bitdrop::{Mask, blas};
use common::*;

fn opt_mask(bits: &Option<Bits>) -> Option<Mask<'_>> {
    bits.as_ref().map(Bits::mask)
}

fn kept(bits: &Option<Bits>, i: usize) -> bool {
    bits.as_ref().is_none_or(|b| b.kept(i))
}

/// Row and column masks for one case: absent, or of a kind chosen by `n`.
fn masks(rows: usize, cols: usize, n: usize, seed: u64) -> (Option<Bits>, Option<Bits>) {
    let mut rng = rng(seed);
    let pick = |k: usize, len: usize, rng: &mut _| {
        (k % 7 != 6).then(|| Bits::new(MASK_KINDS[k % 6], len, rng))
    };
    (pick(n, rows, &mut rng), pick(n / 7 + 3, cols, &mut rng))
}

fn ger_matches<T: Float>(seed: u64) {
    let mut rng = rng(seed);
    let mut n = 0;
    for &rows in SIZES {
        for &cols in SIZES {
            for layout in LAYOUTS {
                for _ in 0..3 {
                    n += 1;
                    if !sampled(n, rows * cols) {
                        continue;
                    }
                    let (row_mask, col_mask) = masks(rows, cols, n, seed + n as u64);
                    let mut x: Vec<T> = random_vec(rows, &mut rng);
                    let mut y: Vec<T> = random_vec(cols, &mut rng);
                    if let Some(m) = &row_mask {
                        poison_vec(&mut x, m);
                    }
                    if let Some(m) = &col_mask {
                        poison_vec(&mut y, m);
                    }
                    let alpha = T::from_f64(uniform(&mut rng) * 4.0);
                    let touched = |j: usize, i: usize| kept(&row_mask, j) && kept(&col_mask, i);
                    let mut before = Mat::new(rows, cols, layout, T::sentinel());
                    before.randomize(&mut rng);
                    for j in 0..rows {
                        for i in 0..cols {
                            if !touched(j, i) {
                                before.set(j, i, T::sentinel());
                            }
                        }
                    }
                    let mut expected = before.clone();
                    for j in 0..rows {
                        for i in 0..cols {
                            if touched(j, i) {
                                let v = expected.get(j, i) + alpha * x[j] * y[i];
                                expected.set(j, i, v);
                            }
                        }
                    }
                    let mut actual = before.clone();
                    blas::ger(
                        alpha,
                        &x,
                        opt_mask(&row_mask),
                        &y,
                        opt_mask(&col_mask),
                        actual.view_mut(),
                    )
                    .unwrap();
                    compare(
                        format_args!("ger {rows}x{cols} {layout:?} case {n}"),
                        &before,
                        &actual,
                        &expected,
                        |j, i| {
                            if touched(j, i) {
                                let p = (alpha * x[j] * y[i]).to_f64().abs();
                                Entry::Close(2, p + before.get(j, i).to_f64().abs())
                            } else {
                                Entry::Untouched
                            }
                        },
                    );
                }
            }
        }
    }
}

/// `gemv` on every layout and beta for the shapes `row_counts x col_counts`; `run(n,
/// entries)` says whether to run case `n`.
fn gemv_matches<T: Float>(
    seed: u64,
    row_counts: &[usize],
    col_counts: &[usize],
    run: impl Fn(usize, usize) -> bool,
) {
    let mut rng = rng(seed);
    let mut n = 0;
    for &rows in row_counts {
        for &cols in col_counts {
            for layout in LAYOUTS {
                for beta in [0.0, 1.0, -0.5] {
                    n += 1;
                    if !run(n, rows * cols) {
                        continue;
                    }
                    let (row_mask, col_mask) = masks(rows, cols, n, seed + n as u64);
                    let mut a = Mat::new(rows, cols, layout, T::sentinel());
                    a.randomize(&mut rng);
                    for i in 0..cols {
                        if !kept(&col_mask, i) {
                            for j in 0..rows {
                                a.set(j, i, poison(j));
                            }
                        }
                    }
                    let mut x: Vec<T> = random_vec(cols, &mut rng);
                    if let Some(m) = &col_mask {
                        poison_vec(&mut x, m);
                    }
                    let alpha = T::from_f64(uniform(&mut rng) * 4.0);
                    let beta = T::from_f64(beta);
                    // With beta = 0 a NaN in y must not survive; otherwise y is read.
                    let mut before: Vec<T> = random_vec(rows, &mut rng);
                    for (j, v) in before.iter_mut().enumerate() {
                        if !kept(&row_mask, j) || beta == T::ZERO {
                            *v = T::sentinel();
                        }
                    }
                    let mut expected = before.clone();
                    for j in 0..rows {
                        if kept(&row_mask, j) {
                            let mut sum = T::ZERO;
                            for i in 0..cols {
                                if kept(&col_mask, i) {
                                    sum += a.get(j, i) * x[i];
                                }
                            }
                            let old = if beta == T::ZERO {
                                T::ZERO
                            } else {
                                beta * before[j]
                            };
                            expected[j] = alpha * sum + old;
                        }
                    }
                    let mut actual = before.clone();
                    blas::gemv(
                        alpha,
                        a.view(),
                        &x,
                        opt_mask(&col_mask),
                        beta,
                        &mut actual,
                        opt_mask(&row_mask),
                    )
                    .unwrap();
                    compare(
                        format_args!("gemv {rows}x{cols} {layout:?} beta {beta} case {n}"),
                        &column(&before),
                        &column(&actual),
                        &column(&expected),
                        |j, _| {
                            if !kept(&row_mask, j) {
                                return Entry::Untouched;
                            }
                            let terms = (0..cols).filter(|&i| kept(&col_mask, i));
                            let sum: f64 = terms
                                .clone()
                                .map(|i| (alpha * a.get(j, i) * x[i]).to_f64().abs())
                                .sum();
                            let old = if beta == T::ZERO {
                                0.0
                            } else {
                                (beta * before[j]).to_f64().abs()
                            };
                            Entry::Close(terms.count() + 2, sum + old)
                        },
                    );
                }
            }
        }
    }
}

const GEMM_SHAPES: &[(usize, usize, usize)] = if cfg!(miri) {
    &[(0, 2, 1), (1, 1, 1), (7, 5, 3)]
} else {
    &[
        (0, 0, 0),
        (0, 2, 1),
        (2, 0, 3),
        (1, 1, 1),
        (7, 5, 3),
        (65, 7, 17),
        (3, 65, 2),
        (17, 3, 65),
        (64, 64, 1),
        (1, 64, 64),
        (20, 30, 40),
    ]
};

fn gemm_matches<T: Float>(seed: u64) {
    let mut rng = rng(seed);
    let mut n = 0;
    for &(rows, inner, cols) in GEMM_SHAPES {
        for la in LAYOUTS {
            for lb in LAYOUTS {
                for lc in LAYOUTS {
                    n += 1;
                    if !sampled(n, (rows + cols) * inner) {
                        continue;
                    }
                    let (row_mask, col_mask) = masks(rows, cols, n, seed + n as u64);
                    let (inner_mask, _) = masks(inner, 0, n + 2, seed + 77 * n as u64);
                    let beta = T::from_f64([0.0, 1.0, 0.5][n % 3]);
                    let alpha = T::from_f64(uniform(&mut rng) * 2.0);
                    let mut a = Mat::new(rows, inner, la, T::sentinel());
                    a.randomize(&mut rng);
                    let mut b = Mat::new(inner, cols, lb, T::sentinel());
                    b.randomize(&mut rng);
                    for p in 0..inner {
                        if !kept(&inner_mask, p) {
                            (0..rows).for_each(|j| a.set(j, p, poison(j)));
                            (0..cols).for_each(|k| b.set(p, k, poison(k)));
                        }
                    }
                    let touched = |j: usize, k: usize| kept(&row_mask, j) && kept(&col_mask, k);
                    let mut before = Mat::new(rows, cols, lc, T::sentinel());
                    before.randomize(&mut rng);
                    for j in 0..rows {
                        for k in 0..cols {
                            if !touched(j, k) || beta == T::ZERO {
                                before.set(j, k, T::sentinel());
                            }
                        }
                    }
                    let mut expected = before.clone();
                    for j in 0..rows {
                        for k in 0..cols {
                            if touched(j, k) {
                                let mut sum = T::ZERO;
                                for p in (0..inner).filter(|&p| kept(&inner_mask, p)) {
                                    sum += a.get(j, p) * b.get(p, k);
                                }
                                let old = if beta == T::ZERO {
                                    T::ZERO
                                } else {
                                    beta * before.get(j, k)
                                };
                                expected.set(j, k, alpha * sum + old);
                            }
                        }
                    }
                    let mut actual = before.clone();
                    blas::gemm(
                        alpha,
                        a.view(),
                        opt_mask(&inner_mask),
                        b.view(),
                        beta,
                        actual.view_mut(),
                        opt_mask(&row_mask),
                        opt_mask(&col_mask),
                    )
                    .unwrap();
                    compare(
                        format_args!("gemm {rows}x{inner}x{cols} {la:?} {lb:?} {lc:?} case {n}"),
                        &before,
                        &actual,
                        &expected,
                        |j, k| {
                            if !touched(j, k) {
                                return Entry::Untouched;
                            }
                            let terms = (0..inner).filter(|&p| kept(&inner_mask, p));
                            let sum: f64 = terms
                                .clone()
                                .map(|p| (alpha * a.get(j, p) * b.get(p, k)).to_f64().abs())
                                .sum();
                            let old = if beta == T::ZERO {
                                0.0
                            } else {
                                (beta * before.get(j, k)).to_f64().abs()
                            };
                            Entry::Close(terms.count() + 2, sum + old)
                        },
                    );
                }
            }
        }
    }
}

#[test]
fn ger_f32_f64() {
    at_every_level(|| {
        ger_matches::<f32>(1);
        ger_matches::<f64>(2);
    });
}

#[test]
fn gemv_f32_f64() {
    at_every_level(|| {
        gemv_matches::<f32>(3, SIZES, SIZES, sampled);
        gemv_matches::<f64>(4, SIZES, SIZES, sampled);
    });
}

/// Rows of several mask words, up to and past the 4 KiB (1024 `f32`, 512 `f64`) up to
/// which the row-major kernels stage `x`, in row blocks of every size. Under miri one
/// small shape, every case of it run.
#[test]
fn gemv_wide_rows() {
    let (row_counts, col_counts): (&[usize], &[usize]) = if cfg!(miri) {
        (&[5], &[70])
    } else {
        (&[3, 4, 9], &[129, 511, 512, 513, 1023, 1024, 1025, 2100])
    };
    at_every_level(|| {
        gemv_matches::<f32>(7, row_counts, col_counts, |_, _| true);
        gemv_matches::<f64>(8, row_counts, col_counts, |_, _| true);
    });
}

#[test]
fn gemm_f32_f64() {
    at_every_level(|| {
        gemm_matches::<f32>(5);
        gemm_matches::<f64>(6);
    });
}
