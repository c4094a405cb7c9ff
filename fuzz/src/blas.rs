//! `blas`: masked `ger` and `gemv` against the formulas written as literal loops (the
//! reference module has no BLAS-level functions; these loops are its style), at every
//! level, `f32` and `f64`, every layout including broadcast and interleaved strides,
//! optional row and column masks, arbitrary alpha and beta (0 and 1 are BLAS's special
//! cases).

// The oracle loops index like the formulas they transcribe.
#![allow(clippy::needless_range_loop)]

use arbitrary::{Arbitrary, Unstructured};
use bitdrop::blas;

use super::common::*;

const MAX: usize = 300;

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
    let gemv: bool = u.arbitrary()?;
    match (gemv, u.arbitrary()?) {
        (false, false) => ger::<f32>(u),
        (false, true) => ger::<f64>(u),
        (true, false) => gemv_case::<f32>(u),
        (true, true) => gemv_case::<f64>(u),
    }
}

struct Shape {
    rows: usize,
    cols: usize,
    layout: LayoutSpec,
    g: Gen,
    row_mask: Option<Bits>,
    col_mask: Option<Bits>,
    label: String,
}

fn shape(u: &mut U, what: &str) -> arbitrary::Result<Shape> {
    let rows = size(u, MAX)?;
    let cols = size(u, MAX)?;
    let layout: LayoutSpec = u.arbitrary()?;
    let row_spec: Option<MaskSpec> = u.arbitrary()?;
    let col_spec: Option<MaskSpec> = u.arbitrary()?;
    let mut g = Gen::new(u.arbitrary()?);
    let row_mask = row_spec.map(|s| Bits::new(s, rows, &mut g, u));
    let col_mask = col_spec.map(|s| Bits::new(s, cols, &mut g, u));
    let label = format!("{what} {rows}x{cols} {layout:?} rows {row_spec:?} cols {col_spec:?}");
    Ok(Shape {
        rows,
        cols,
        layout,
        g,
        row_mask,
        col_mask,
        label,
    })
}

fn ger<T: Float>(u: &mut U) -> arbitrary::Result<()> {
    let mut s = shape(u, &format!("ger {}", T::NAME))?;
    let (rm, cm) = (s.row_mask.clone(), s.col_mask.clone());
    let touched = |j: usize, i: usize| kept(&rm, j) && kept(&cm, i);
    let alpha: T = s.g.value();
    let x: Vec<T> = vector(s.rows, &mut s.g, |j| kept(&rm, j));
    let y: Vec<T> = vector(s.cols, &mut s.g, |i| kept(&cm, i));
    let mut before = Mat::<T>::new(s.rows, s.cols, s.layout, true);
    before.fill(&mut s.g, touched);
    let mut expected = before.clone();
    for j in 0..s.rows {
        for i in 0..s.cols {
            if touched(j, i) {
                let v = expected.get(j, i) + alpha * x[j] * y[i];
                expected.set(j, i, v);
            }
        }
    }
    let label = format!("{} alpha {alpha}", s.label);
    at_every_level(|level| {
        let mut actual = before.clone();
        blas::ger(
            alpha,
            &x,
            opt_mask(&rm),
            &y,
            opt_mask(&cm),
            actual.view_mut(),
        )
        .expect("blas::ger");
        let what = || format!("{label} at {level}");
        compare(&what, &before, &actual, &expected, true, |j, i| {
            if !touched(j, i) {
                return Entry::Untouched;
            }
            let mut t = Terms::new();
            t.term(&[alpha.to_f64(), x[j].to_f64(), y[i].to_f64()]);
            t.term(&[before.get(j, i).to_f64()]);
            Entry::Computed(t)
        });
    });
    Ok(())
}

/// `beta · y`, and exactly 0 for `beta = 0` whatever `y` holds.
fn beta_times<T: Float>(beta: T, y: T) -> T {
    if beta == T::ZERO { T::ZERO } else { beta * y }
}

fn gemv_case<T: Float>(u: &mut U) -> arbitrary::Result<()> {
    let mut s = shape(u, &format!("gemv {}", T::NAME))?;
    let beta: Beta = u.arbitrary()?;
    let (rows, cols) = (s.rows, s.cols);
    let (rm, cm) = (s.row_mask.clone(), s.col_mask.clone());
    let alpha: T = s.g.value();
    let beta = match beta {
        Beta::Zero => T::ZERO,
        Beta::One => T::ONE,
        Beta::Value => s.g.value(),
    };
    let mut a = Mat::<T>::new(rows, cols, s.layout, false);
    a.fill(&mut s.g, |j, i| kept(&rm, j) && kept(&cm, i));
    let x: Vec<T> = vector(cols, &mut s.g, |i| kept(&cm, i));
    // y is read only for kept rows and beta != 0.
    let before: Vec<T> = vector(rows, &mut s.g, |j| kept(&rm, j) && beta != T::ZERO);
    let quick_return = cols == 0 && beta == T::ONE;
    let mut expected = before.clone();
    for j in (0..rows).filter(|&j| kept(&rm, j)) {
        if cols == 0 {
            // No columns at all: y = beta · y, and nothing written for beta = 1.
            if !quick_return {
                expected[j] = beta_times(beta, before[j]);
            }
            continue;
        }
        let mut sum = T::ZERO;
        for i in (0..cols).filter(|&i| kept(&cm, i)) {
            sum += a.get(j, i) * x[i];
        }
        expected[j] = alpha * sum + beta_times(beta, before[j]);
    }
    let label = format!("{} alpha {alpha} beta {beta}", s.label);
    at_every_level(|level| {
        let mut actual = before.clone();
        blas::gemv(
            alpha,
            a.view(),
            &x,
            opt_mask(&cm),
            beta,
            &mut actual,
            opt_mask(&rm),
        )
        .expect("blas::gemv");
        let what = || format!("{label} at {level}");
        compare(
            &what,
            &column(&before),
            &column(&actual),
            &column(&expected),
            true,
            |j, _| {
                if !kept(&rm, j) || quick_return {
                    return Entry::Untouched;
                }
                if cols == 0 && beta == T::ZERO {
                    return Entry::Zero;
                }
                let mut t = Terms::new();
                if cols > 0 {
                    t.global(alpha.to_f64());
                    let kept_cols = (0..cols).filter(|&i| kept(&cm, i));
                    if kept_cols.clone().next().is_none() && !alpha.to_f64().is_finite() {
                        t.unspecified();
                    }
                    for i in kept_cols {
                        t.term(&[alpha.to_f64(), a.get(j, i).to_f64(), x[i].to_f64()]);
                    }
                }
                if beta != T::ZERO {
                    t.term(&[beta.to_f64(), before[j].to_f64()]);
                }
                Entry::Computed(t)
            },
        );
    });
    Ok(())
}
