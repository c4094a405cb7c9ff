//! Instruction counts of masked against dense layer operations on one 64x64 layer
//! (32x32 on the Cortex-M0, whose 16 KiB of RAM cannot hold two 64x64 matrices).
//!
//! Run it under `-icount shift=0` (one instruction = 1 ns of virtual time), which is what
//! `measure.sh` does; without it SysTick follows the host's clock and the numbers are
//! neither instruction counts nor reproducible. The image prints, per operation:
//!
//! - masked: the bitdrop kernel with a mask sampled at keep 0.5;
//! - dense: the same kernel with `KeepProb::ONE` and an all-ones mask;
//! - plain: a straightforward dense Rust loop over the column-major matrix.
//!
//! `W` and `dW` are column-major (each input unit owns a contiguous column), the
//! layout the crate recommends; a second table repeats the kernels on row-major ones.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::ptr::addr_of_mut;

use bitdrop::{KeepProb, Mask, MaskMut, MatMut, MatRef, layer, sample, words_for};
use bitdrop_embedded::count::Counter;
use bitdrop_embedded::{CORE, rng, say, uniform};
use cortex_m_rt::entry;
use panic_semihosting as _;

#[cfg(not(armv6m))]
const N: usize = 64;
#[cfg(armv6m)]
const N: usize = 32;
/// Calls per measurement.
const REPS: u32 = 32;

struct Data {
    w: [f32; N * N],
    dw: [f32; N * N],
    x: [f32; N],
    dz: [f32; N],
    out: [f32; N],
}

static mut DATA: Data = Data {
    w: [0.0; N * N],
    dw: [0.0; N * N],
    x: [0.0; N],
    dz: [0.0; N],
    out: [0.0; N],
};

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Forward,
    WeightGrad,
    InputGrad,
    SgdStep,
}

const OPS: [(Op, &str); 4] = [
    (Op::WeightGrad, "weight_grad"),
    (Op::InputGrad, "input_grad"),
    (Op::Forward, "forward"),
    (Op::SgdStep, "sgd_step"),
];

/// One call of a bitdrop layer operation on `d`, with `W`/`dW` in the given layout.
#[inline(never)]
fn kernel(op: Op, col_major: bool, d: &mut Data, mask: Mask<'_>, keep: KeepProb) {
    let view = |data| {
        if col_major {
            MatRef::col_major(data, N, N)
        } else {
            MatRef::row_major(data, N, N)
        }
    };
    let result = match op {
        Op::Forward => {
            view(&d.w).and_then(|w| layer::forward(w, &d.x, mask, keep, None, &mut d.out))
        }
        Op::InputGrad => {
            view(&d.w).and_then(|w| layer::input_grad(w, &d.dz, mask, keep, &mut d.out))
        }
        Op::WeightGrad => {
            let dw = if col_major {
                MatMut::col_major(&mut d.dw, N, N)
            } else {
                MatMut::row_major(&mut d.dw, N, N)
            };
            dw.and_then(|dw| layer::weight_grad(&d.dz, &d.x, mask, keep, dw))
        }
        Op::SgdStep => {
            let w = if col_major {
                MatMut::col_major(&mut d.w, N, N)
            } else {
                MatMut::row_major(&mut d.w, N, N)
            };
            w.and_then(|w| layer::sgd_step(w, &d.dz, &d.x, mask, keep, 1e-3))
        }
    };
    if result.is_err() {
        panic!("layer call failed");
    }
}

/// The same operation as a plain dense loop over column-major storage.
#[inline(never)]
fn plain(op: Op, d: &mut Data, scale: f32) {
    match op {
        Op::WeightGrad => {
            for (col, &xi) in d.dw.chunks_exact_mut(N).zip(&d.x) {
                let s = xi * scale;
                for (a, &g) in col.iter_mut().zip(&d.dz) {
                    *a += g * s;
                }
            }
        }
        Op::SgdStep => {
            for (col, &xi) in d.w.chunks_exact_mut(N).zip(&d.x) {
                let s = -1e-3 * xi * scale;
                for (a, &g) in col.iter_mut().zip(&d.dz) {
                    *a += g * s;
                }
            }
        }
        Op::InputGrad => {
            for (col, o) in d.w.chunks_exact(N).zip(&mut d.out) {
                let mut acc = 0.0;
                for (&a, &g) in col.iter().zip(&d.dz) {
                    acc += a * g;
                }
                *o = acc * scale;
            }
        }
        Op::Forward => {
            d.out.fill(0.0);
            for (col, &xi) in d.w.chunks_exact(N).zip(&d.x) {
                let s = xi * scale;
                for (o, &a) in d.out.iter_mut().zip(col) {
                    *o += a * s;
                }
            }
        }
    }
}

#[entry]
fn main() -> ! {
    say!(
        "bitdrop instruction counts on {}, {}x{} layer, {} calls per measurement",
        CORE,
        N,
        N,
        REPS
    );
    let peripherals = cortex_m::Peripherals::take().unwrap();
    #[cfg(not(armv6m))]
    {
        // The cycle counter would be the natural choice; show whether QEMU models it.
        let (mut dcb, mut dwt) = (peripherals.DCB, peripherals.DWT);
        dcb.enable_trace();
        dwt.enable_cycle_counter();
        let c0 = cortex_m::peripheral::DWT::cycle_count();
        bitdrop_embedded::count::spin(100_000);
        let c1 = cortex_m::peripheral::DWT::cycle_count();
        say!(
            "DWT CYCCNT over 200000 instructions: {} -> {} (not used)",
            c0,
            c1
        );
    }
    let counter = Counter::new(peripherals.SYST, REPS);
    if !counter.works() {
        say!("SysTick did not advance: run this image under qemu -icount shift=0 (measure.sh)");
        bitdrop_embedded::report::exit(false);
    }
    say!(
        "calibration: {:.3} instructions per SysTick tick",
        counter.per_tick
    );
    // SAFETY: `main` runs once and is the only code that names DATA.
    let d = unsafe { &mut *addr_of_mut!(DATA) };
    let mut rng = rng(64);
    for v in d.w.iter_mut().chain(d.x.iter_mut()).chain(d.dz.iter_mut()) {
        *v = uniform(&mut rng);
    }

    let mut half_words = [0u64; words_for(N)];
    let mut all_words = [0u64; words_for(N)];
    let half = KeepProb::new(0.5).unwrap();
    let mut m = MaskMut::new(&mut half_words, N).unwrap();
    sample::bernoulli(&mut rng, half, &mut m);
    let masked = Mask::from(m);
    let mut m = MaskMut::new(&mut all_words, N).unwrap();
    m.fill(true);
    let all = Mask::from(m);
    say!(
        "mask: {} of {} input units kept (keep 0.5)",
        masked.count_kept(),
        N
    );

    for col_major in [true, false] {
        say!(
            "{} W: op, masked, dense (KeepProb::ONE), plain loop, masked/dense, masked/plain",
            if col_major {
                "column-major"
            } else {
                "row-major"
            }
        );
        for (op, name) in OPS {
            let masked_n = counter.per_call(|| {
                kernel(
                    op,
                    col_major,
                    black_box(&mut *d),
                    black_box(masked),
                    black_box(half),
                )
            });
            let dense_n = counter.per_call(|| {
                kernel(
                    op,
                    col_major,
                    black_box(&mut *d),
                    black_box(all),
                    black_box(KeepProb::ONE),
                )
            });
            if col_major {
                let plain_n = counter.per_call(|| plain(op, black_box(&mut *d), black_box(1.0)));
                say!(
                    "count: {:11} {:8.0} {:8.0} {:8.0}  {:.3}  {:.3}",
                    name,
                    masked_n,
                    dense_n,
                    plain_n,
                    masked_n / dense_n,
                    masked_n / plain_n
                );
            } else {
                say!(
                    "count: {:11} {:8.0} {:8.0} {:>8}  {:.3}  -",
                    name,
                    masked_n,
                    dense_n,
                    "-",
                    masked_n / dense_n
                );
            }
        }
    }
    bitdrop_embedded::report::exit(true)
}
