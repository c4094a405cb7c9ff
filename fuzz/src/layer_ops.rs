//! `layer_ops`: the single-example layer operations (`forward`, `weight_grad`,
//! `input_grad`, `sgd_step`, each with and without an output mask, and `dropout`)
//! against `bitdrop::reference`, at every instruction-set level, for `f32` and `f64`,
//! over sizes up to 300, every layout of `W`, arbitrary masks, keeps and values.

use arbitrary::{Arbitrary, Unstructured};
use bitdrop::{KeepProb, layer, reference};

use super::common::*;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Forward,
    WeightGrad,
    InputGrad,
    SgdStep,
    Dropout,
}

const MAX: usize = 300;

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

/// Everything one case reads.
struct Case<T> {
    n_out: usize,
    n_in: usize,
    keep: KeepProb,
    /// `1 / keep` as the kernels fold it, or 1 when the keep is extreme (see `common`).
    scale: f64,
    values: bool,
    input: Bits,
    out: Option<Bits>,
    g: Gen,
    w_layout: LayoutSpec,
    label: String,
    _t: core::marker::PhantomData<T>,
}

impl<T: Float> Case<T> {
    fn out_kept(&self, j: usize) -> bool {
        kept(&self.out, j)
    }
    fn w(&mut self) -> Mat<T> {
        let mut w = Mat::new(self.n_out, self.n_in, self.w_layout, false);
        let (input, out) = (self.input.clone(), self.out.clone());
        w.fill(&mut self.g, |j, i| input.kept(i) && kept(&out, j));
        w
    }
}

fn one<T: Float>(op: Op, u: &mut U) -> arbitrary::Result<()> {
    let n_out = size(u, MAX)?;
    let n_in = size(u, MAX)?;
    let w_layout: LayoutSpec = u.arbitrary()?;
    let in_spec: MaskSpec = u.arbitrary()?;
    let out_spec: Option<MaskSpec> = u.arbitrary()?;
    let keep = u.arbitrary::<KeepSpec>()?.get();
    let mut g = Gen::new(u.arbitrary()?);
    let input = Bits::new(in_spec, n_in, &mut g, u);
    let out = out_spec.map(|s| Bits::new(s, n_out, &mut g, u));
    let values = keep_is_ordinary::<T>(keep);
    let label = format!(
        "{op:?} {} {n_out}x{n_in} W {w_layout:?} keep {keep} in {in_spec:?} out {out_spec:?}",
        T::NAME
    );
    let mut c = Case::<T> {
        n_out,
        n_in,
        keep,
        scale: if values {
            T::from_f64(keep.scale()).to_f64()
        } else {
            1.0
        },
        values,
        input,
        out,
        g,
        w_layout,
        label,
        _t: core::marker::PhantomData,
    };
    match op {
        Op::Forward => forward(&mut c, u.arbitrary()?),
        Op::WeightGrad => weight_update(&mut c, None),
        Op::SgdStep => {
            let lr = c.g.value::<T>();
            weight_update(&mut c, Some(lr))
        }
        Op::InputGrad => input_grad(&mut c),
        Op::Dropout => dropout(&mut c),
    }
    Ok(())
}

fn forward<T: Float>(c: &mut Case<T>, with_bias: bool) {
    let w = c.w();
    let x: Vec<T> = vector(c.n_in, &mut c.g, |i| c.input.kept(i));
    let bias: Vec<T> = vector(c.n_out, &mut c.g, |j| kept(&c.out, j));
    let bias = with_bias.then_some(&bias[..]);
    let before: Vec<T> = (0..c.n_out).map(|_| c.g.poison()).collect();
    let mut expected = before.clone();
    let in_mask = c.input.mask();
    let out_mask = opt_mask(&c.out);
    reference::forward(
        w.view(),
        &x,
        Some(in_mask),
        c.keep,
        out_mask,
        bias,
        &mut expected,
    )
    .expect("reference::forward");
    let (w0, x0) = (w.data.clone(), x.clone());
    at_every_level(|level| {
        let mut actual = before.clone();
        match out_mask {
            None => layer::forward(w.view(), &x, in_mask, c.keep, bias, &mut actual),
            Some(out) => layer::forward_both(w.view(), &x, in_mask, c.keep, out, bias, &mut actual),
        }
        .expect("layer::forward");
        let what = || format!("{} z at {level}", c.label);
        compare(
            &what,
            &column(&before),
            &column(&actual),
            &column(&expected),
            c.values,
            |j, _| {
                if !c.out_kept(j) {
                    return Entry::Untouched;
                }
                let mut t = Terms::new();
                for i in (0..c.n_in).filter(|&i| c.input.kept(i)) {
                    t.term(&[c.scale, w.get(j, i).to_f64(), x[i].to_f64()]);
                }
                if let Some(b) = bias {
                    t.term(&[b[j].to_f64()]);
                }
                Entry::Computed(t)
            },
        );
    });
    unchanged(&|| c.label.clone(), &w0, &w.data);
    unchanged(&|| c.label.clone(), &x0, &x);
}

/// `dW += dz x̃ᵀ` (`lr = None`) or `W -= lr dz x̃ᵀ`.
fn weight_update<T: Float>(c: &mut Case<T>, lr: Option<T>) {
    let dz: Vec<T> = vector(c.n_out, &mut c.g, |j| kept(&c.out, j));
    let x: Vec<T> = vector(c.n_in, &mut c.g, |i| c.input.kept(i));
    let touched = |j: usize, i: usize| c.input.kept(i) && kept(&c.out, j);
    let mut before = Mat::<T>::new(c.n_out, c.n_in, c.w_layout, true);
    before.fill(&mut c.g, touched);
    let mut expected = before.clone();
    let in_mask = c.input.mask();
    let out_mask = opt_mask(&c.out);
    match lr {
        None => reference::weight_grad(
            &dz,
            &x,
            Some(in_mask),
            c.keep,
            out_mask,
            expected.view_mut(),
        ),
        Some(lr) => reference::sgd_step(
            expected.view_mut(),
            &dz,
            &x,
            Some(in_mask),
            c.keep,
            out_mask,
            lr,
        ),
    }
    .expect("reference weight update");
    let (dz0, x0) = (dz.clone(), x.clone());
    at_every_level(|level| {
        let mut actual = before.clone();
        let a = actual.view_mut();
        match (lr, out_mask) {
            (None, None) => layer::weight_grad(&dz, &x, in_mask, c.keep, a),
            (None, Some(o)) => layer::weight_grad_both(&dz, &x, in_mask, c.keep, o, a),
            (Some(lr), None) => layer::sgd_step(a, &dz, &x, in_mask, c.keep, lr),
            (Some(lr), Some(o)) => layer::sgd_step_both(a, &dz, &x, in_mask, c.keep, o, lr),
        }
        .expect("layer weight update");
        let what = || format!("{} lr {lr:?} W at {level}", c.label);
        compare(&what, &before, &actual, &expected, c.values, |j, i| {
            if !touched(j, i) {
                return Entry::Untouched;
            }
            let mut t = Terms::new();
            let (d, xi) = (dz[j].to_f64(), x[i].to_f64());
            match lr {
                None => t.term(&[c.scale, d, xi]),
                Some(lr) => t.term(&[lr.to_f64(), c.scale, d, xi]),
            }
            t.term(&[before.get(j, i).to_f64()]);
            Entry::Computed(t)
        });
    });
    unchanged(&|| c.label.clone(), &dz0, &dz);
    unchanged(&|| c.label.clone(), &x0, &x);
}

fn input_grad<T: Float>(c: &mut Case<T>) {
    let w = c.w();
    let dz: Vec<T> = vector(c.n_out, &mut c.g, |j| kept(&c.out, j));
    let before: Vec<T> = (0..c.n_in).map(|_| c.g.poison()).collect();
    let mut expected = before.clone();
    let in_mask = c.input.mask();
    let out_mask = opt_mask(&c.out);
    reference::input_grad(
        w.view(),
        &dz,
        Some(in_mask),
        c.keep,
        out_mask,
        &mut expected,
    )
    .expect("reference::input_grad");
    let (w0, dz0) = (w.data.clone(), dz.clone());
    at_every_level(|level| {
        let mut actual = before.clone();
        match out_mask {
            None => layer::input_grad(w.view(), &dz, in_mask, c.keep, &mut actual),
            Some(o) => layer::input_grad_both(w.view(), &dz, in_mask, c.keep, o, &mut actual),
        }
        .expect("layer::input_grad");
        let what = || format!("{} dx at {level}", c.label);
        compare(
            &what,
            &column(&before),
            &column(&actual),
            &column(&expected),
            c.values,
            |i, _| {
                if !c.input.kept(i) {
                    return Entry::Zero;
                }
                let mut t = Terms::new();
                for j in (0..c.n_out).filter(|&j| c.out_kept(j)) {
                    t.term(&[c.scale, w.get(j, i).to_f64(), dz[j].to_f64()]);
                }
                Entry::Computed(t)
            },
        );
    });
    unchanged(&|| c.label.clone(), &w0, &w.data);
    unchanged(&|| c.label.clone(), &dz0, &dz);
}

/// `layer::dropout` has no reference function: the reference's thinning, `x / keep`.
fn dropout<T: Float>(c: &mut Case<T>) {
    let x: Vec<T> = vector(c.n_in, &mut c.g, |i| c.input.kept(i));
    let before: Vec<T> = (0..c.n_in).map(|_| c.g.poison()).collect();
    let keep = T::from_f64(c.keep.get());
    let expected: Vec<T> = (0..c.n_in)
        .map(|i| {
            if c.input.kept(i) {
                x[i] / keep
            } else {
                T::ZERO
            }
        })
        .collect();
    at_every_level(|level| {
        let mut actual = before.clone();
        layer::dropout(&x, c.input.mask(), c.keep, &mut actual).expect("layer::dropout");
        let what = || format!("{} y at {level}", c.label);
        compare(
            &what,
            &column(&before),
            &column(&actual),
            &column(&expected),
            c.values,
            |i, _| {
                if !c.input.kept(i) {
                    return Entry::Zero;
                }
                let mut t = Terms::new();
                t.term(&[c.scale, x[i].to_f64()]);
                Entry::Computed(t)
            },
        );
    });
}
