//! Every f32 kernel behind one `#[inline(never)]`, unmangled entry point (`kernel_*`),
//! called once each: the image that `measure.sh` reads code sizes from (`nm`), and that
//! measures the stack each call uses (painting, see `bitdrop_embedded::stack`).
//!
//! With the feature `size-baseline` the entry points keep their signatures and calls but
//! do nothing: the difference in `.text` between the two builds is the flash that the
//! kernels cost, whatever the compiler inlined where.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::ptr::addr_of_mut;

use bitdrop::{KeepProb, Mask, MaskMut, MatMut, MatRef, blas, layer, sample, words_for};
use bitdrop_embedded::{CORE, TestRng, rng, say, stack, uniform};
use cortex_m_rt::entry;
use panic_semihosting as _;

const N: usize = 16;

/// `body` in the real build; nothing (but keeping the arguments alive) in the baseline.
macro_rules! kernel {
    ($body:expr, $($arg:expr),*) => {{
        if cfg!(feature = "size-baseline") {
            $(black_box($arg);)*
            true
        } else {
            $body
        }
    }};
}

#[unsafe(no_mangle)]
#[inline(never)]
fn kernel_sample_bernoulli(
    rng: &mut TestRng,
    keep: KeepProb,
    words: &mut [u64],
    len: usize,
) -> bool {
    kernel!(
        match MaskMut::new(words, len) {
            Ok(mut m) => {
                sample::bernoulli(rng, keep, &mut m);
                true
            }
            Err(_) => false,
        },
        rng,
        keep,
        words,
        len
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
fn kernel_blas_ger(
    alpha: f32,
    x: &[f32],
    rows: Option<Mask<'_>>,
    y: &[f32],
    cols: Option<Mask<'_>>,
    a: MatMut<'_, f32>,
) -> bool {
    kernel!(
        blas::ger(alpha, x, rows, y, cols, a).is_ok(),
        alpha,
        x,
        rows,
        y,
        cols,
        a
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn kernel_blas_gemv(
    alpha: f32,
    a: MatRef<'_, f32>,
    x: &[f32],
    cols: Option<Mask<'_>>,
    beta: f32,
    y: &mut [f32],
    rows: Option<Mask<'_>>,
) -> bool {
    kernel!(
        blas::gemv(alpha, a, x, cols, beta, y, rows).is_ok(),
        alpha,
        a,
        x,
        cols,
        beta,
        y,
        rows
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
fn kernel_layer_forward(
    w: MatRef<'_, f32>,
    x: &[f32],
    mask: Mask<'_>,
    keep: KeepProb,
    bias: Option<&[f32]>,
    z: &mut [f32],
) -> bool {
    kernel!(
        layer::forward(w, x, mask, keep, bias, z).is_ok(),
        w,
        x,
        mask,
        keep,
        bias,
        z
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
fn kernel_layer_weight_grad(
    dz: &[f32],
    x: &[f32],
    mask: Mask<'_>,
    keep: KeepProb,
    dw: MatMut<'_, f32>,
) -> bool {
    kernel!(
        layer::weight_grad(dz, x, mask, keep, dw).is_ok(),
        dz,
        x,
        mask,
        keep,
        dw
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
fn kernel_layer_input_grad(
    w: MatRef<'_, f32>,
    dz: &[f32],
    mask: Mask<'_>,
    keep: KeepProb,
    dx: &mut [f32],
) -> bool {
    kernel!(
        layer::input_grad(w, dz, mask, keep, dx).is_ok(),
        w,
        dz,
        mask,
        keep,
        dx
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
fn kernel_layer_sgd_step(
    w: MatMut<'_, f32>,
    dz: &[f32],
    x: &[f32],
    mask: Mask<'_>,
    keep: KeepProb,
    lr: f32,
) -> bool {
    kernel!(
        layer::sgd_step(w, dz, x, mask, keep, lr).is_ok(),
        w,
        dz,
        x,
        mask,
        keep,
        lr
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn kernel_layer_forward_both(
    w: MatRef<'_, f32>,
    x: &[f32],
    mask: Mask<'_>,
    keep: KeepProb,
    out: Mask<'_>,
    bias: Option<&[f32]>,
    z: &mut [f32],
) -> bool {
    kernel!(
        layer::forward_both(w, x, mask, keep, out, bias, z).is_ok(),
        w,
        x,
        mask,
        keep,
        out,
        bias,
        z
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
fn kernel_layer_weight_grad_both(
    dz: &[f32],
    x: &[f32],
    mask: Mask<'_>,
    keep: KeepProb,
    out: Mask<'_>,
    dw: MatMut<'_, f32>,
) -> bool {
    kernel!(
        layer::weight_grad_both(dz, x, mask, keep, out, dw).is_ok(),
        dz,
        x,
        mask,
        keep,
        out,
        dw
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
fn kernel_layer_input_grad_both(
    w: MatRef<'_, f32>,
    dz: &[f32],
    mask: Mask<'_>,
    keep: KeepProb,
    out: Mask<'_>,
    dx: &mut [f32],
) -> bool {
    kernel!(
        layer::input_grad_both(w, dz, mask, keep, out, dx).is_ok(),
        w,
        dz,
        mask,
        keep,
        out,
        dx
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn kernel_layer_sgd_step_both(
    w: MatMut<'_, f32>,
    dz: &[f32],
    x: &[f32],
    mask: Mask<'_>,
    keep: KeepProb,
    out: Mask<'_>,
    lr: f32,
) -> bool {
    kernel!(
        layer::sgd_step_both(w, dz, x, mask, keep, out, lr).is_ok(),
        w,
        dz,
        x,
        mask,
        keep,
        out,
        lr
    )
}

/// `unwrap` without `Debug`: keeps `Error`'s formatting code out of the image.
trait OrFail<T> {
    fn or_fail(self) -> T;
}

impl<T, E> OrFail<T> for Result<T, E> {
    fn or_fail(self) -> T {
        match self {
            Ok(v) => v,
            Err(_) => panic!("setup failed"),
        }
    }
}

struct Data {
    w: [f32; N * N],
    x: [f32; N],
    y: [f32; N],
}

static mut DATA: Data = Data {
    w: [0.0; N * N],
    x: [0.0; N],
    y: [0.0; N],
};

#[entry]
fn main() -> ! {
    say!(
        "bitdrop kernels on {}: stack used per call ({}x{} layer, keep 0.5)",
        CORE,
        N,
        N
    );
    // SAFETY: `main` runs once and is the only code that names DATA.
    let d = unsafe { &mut *addr_of_mut!(DATA) };
    let mut rng = rng(3);
    for v in d.w.iter_mut().chain(d.x.iter_mut()).chain(d.y.iter_mut()) {
        *v = uniform(&mut rng);
    }
    let keep = KeepProb::new(0.5).or_fail();
    let (mut in_words, mut out_words) = ([0u64; words_for(N)], [0u64; words_for(N)]);
    let mut ok = true;
    let mut row = |name: &str, used: Option<usize>, call_ok: bool| {
        ok &= call_ok && used.is_some();
        match used {
            Some(bytes) => say!("stack: {:28} {:4} bytes", name, bytes),
            None => say!("stack: {:28} more than the painted window", name),
        }
    };
    const WINDOW: usize = 2048;

    let mut r = true;
    let used = stack::used_by(WINDOW, || {
        r = kernel_sample_bernoulli(&mut rng, keep, &mut in_words, N)
    });
    row("sample::bernoulli", used, r);
    kernel_sample_bernoulli(&mut rng, keep, &mut out_words, N);
    let inm = Mask::new(&in_words, N).or_fail();
    let outm = Mask::new(&out_words, N).or_fail();
    let Data { w, x, y } = d;

    let used = stack::used_by(WINDOW, || {
        r = kernel_blas_ger(
            0.5,
            x,
            Some(outm),
            y,
            Some(inm),
            MatMut::col_major(w, N, N).or_fail(),
        )
    });
    row("blas::ger", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_blas_gemv(
            0.5,
            MatRef::col_major(w, N, N).or_fail(),
            x,
            Some(inm),
            0.0,
            y,
            Some(outm),
        )
    });
    row("blas::gemv", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_forward(MatRef::col_major(w, N, N).or_fail(), x, inm, keep, None, y)
    });
    row("layer::forward", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_weight_grad(x, x, inm, keep, MatMut::col_major(w, N, N).or_fail())
    });
    row("layer::weight_grad", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_input_grad(MatRef::col_major(w, N, N).or_fail(), x, inm, keep, y)
    });
    row("layer::input_grad", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_sgd_step(MatMut::col_major(w, N, N).or_fail(), x, x, inm, keep, 0.01)
    });
    row("layer::sgd_step", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_forward_both(
            MatRef::col_major(w, N, N).or_fail(),
            x,
            inm,
            keep,
            outm,
            None,
            y,
        )
    });
    row("layer::forward_both", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_weight_grad_both(
            x,
            x,
            inm,
            keep,
            outm,
            MatMut::col_major(w, N, N).or_fail(),
        )
    });
    row("layer::weight_grad_both", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_input_grad_both(
            MatRef::col_major(w, N, N).or_fail(),
            x,
            inm,
            keep,
            outm,
            y,
        )
    });
    row("layer::input_grad_both", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_sgd_step_both(
            MatMut::col_major(w, N, N).or_fail(),
            x,
            x,
            inm,
            keep,
            outm,
            0.01,
        )
    });
    row("layer::sgd_step_both", used, r);
    // Row-major too: the kernels take other branches there.
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_weight_grad(x, x, inm, keep, MatMut::row_major(w, N, N).or_fail())
    });
    row("layer::weight_grad row-major", used, r);
    let used = stack::used_by(WINDOW, || {
        r = kernel_layer_input_grad(MatRef::row_major(w, N, N).or_fail(), x, inm, keep, y)
    });
    row("layer::input_grad row-major", used, r);
    bitdrop_embedded::report::exit(ok)
}
