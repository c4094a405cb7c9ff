//! The shared-mask batch path against matrixmultiply's dense GEMM, f32, 1024 x 1024 layers.
//!
//! `cargo bench --bench gemm` (filter with e.g. `-- dw_1024_m128`).
//!
//! Each group holds, in one run:
//! - `masked_keep0.5`: the `layer::*_batch` operation with a shared mask at keep 0.5
//!   (gather, matrixmultiply on the compact operands, scatter);
//! - `masked_keep1.0`: the same with an all-ones mask and keep 1 (the direct GEMM);
//! - `matrixmultiply_dense`: `matrixmultiply::sgemm` doing the same product densely, on
//!   the same layouts (the mask multiplied in beforehand, outside the timing), called the
//!   faster way round (a column-major `C` as the row-major `Cᵀ = Bᵀ Aᵀ`, about 15% faster
//!   here), as the batch path calls it;
//! - `compact_gemm_keep0.5`: only the GEMMs the masked operation runs, on operands gathered
//!   beforehand, in the same blocks (of rows for `dW`, of the inner dimension for `dX`),
//!   with no scatter: what a fused kernel (gather while packing, scatter on write) could
//!   at best reach. `masked_keep0.5` minus it is the cost of the gather and the scatter.
//!
//! The measurement is wall time; with `BITDROP_BENCH_CPU_TIME=1` it is the benchmarking
//! thread's CPU time instead (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`), which leaves out
//! the time the thread waits for a core on a shared machine.
//!
//! Batches are `n x m` with one example per column, column-major (as in
//! `examples/train`). `dW` is column-major in the groups named as in the issue, row-major
//! in the `_rowmajor` groups. `step_1024_m128` is a whole layer step: forward, input
//! gradient, fused SGD step, through `layer::ThinnedBatch` (`masked_*`) and through the
//! three free functions (`separate_keep0.5`).

use std::hint::black_box;
use std::time::Duration;

use bitdrop::{KeepProb, Mask, MaskMut, MatMut, MatRef, layer, sample, words_for};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, Criterion, Throughput};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

const N: usize = 1024;

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..len)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
        .collect()
}

/// The keep-0.5 mask over `n` units, and an all-ones one.
fn masks(n: usize) -> (Vec<u64>, Vec<u64>) {
    let mut half = vec![0u64; words_for(n)];
    sample::bernoulli(
        &mut Xoshiro256PlusPlus::seed_from_u64(7),
        KeepProb::new(0.5).unwrap(),
        &mut MaskMut::new(&mut half, n).unwrap(),
    );
    let mut all = vec![0u64; words_for(n)];
    MaskMut::new(&mut all, n).unwrap().fill(true);
    (half, all)
}

fn kept(words: &[u64], n: usize) -> Vec<usize> {
    Mask::new(words, n).unwrap().iter_kept().collect()
}

/// `(row_stride, col_stride)` of an `rows x cols` matrix.
fn strides(rows: usize, cols: usize, col_major: bool) -> (usize, usize) {
    if col_major { (1, rows) } else { (cols, 1) }
}

fn view(d: &[f32], rows: usize, cols: usize, col_major: bool) -> MatRef<'_, f32> {
    let (rs, cs) = strides(rows, cols, col_major);
    MatRef::new(d, rows, cols, rs, cs).unwrap()
}

fn view_mut(d: &mut [f32], rows: usize, cols: usize, col_major: bool) -> MatMut<'_, f32> {
    let (rs, cs) = strides(rows, cols, col_major);
    MatMut::new(d, rows, cols, rs, cs).unwrap()
}

/// `c = alpha a b + beta c` with matrixmultiply; strides as `(row, col)` element pairs.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
    (rsc, csc): (usize, usize),
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if rsc == 1 && csc != 1 {
        // The faster way round for matrixmultiply (as the batch path does): a
        // column-major C as the row-major Cᵀ = Bᵀ Aᵀ.
        return sgemm(
            (n, k, m),
            alpha,
            b,
            (csb, rsb),
            a,
            (csa, rsa),
            beta,
            c,
            (csc, rsc),
        );
    }
    // SAFETY: the slices hold the m x k, k x n and m x n matrices these dense strides
    // describe (checked above), and `c` is a distinct, exclusively borrowed slice.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            csc as isize,
        )
    }
}

/// The rows of the GEMMs the batch path runs for `dW` (as `src/arch/mm.rs` cuts them):
/// blocks of `max(512 KiB / (4 · per_row), 64)` of the `n` rows, where `per_row` is the
/// width of a block's compact `C`.
fn blocks(n: usize, per_row: usize) -> Vec<usize> {
    let target = (512 * 1024 / (4 * per_row)).max(64);
    (0..n).step_by(target).map(|s| target.min(n - s)).collect()
}

/// The calling thread's CPU time.
struct CpuTime;

fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant of the platform.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

static WALL: WallTime = WallTime;

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

fn config<'c, M: Measurement>(c: &'c mut Criterion<M>, name: &str) -> BenchmarkGroup<'c, M> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements((N * N) as u64));
    g
}

/// `dW += dZ Xᵀ / keep` at batch `m`, `dW` column- or row-major.
fn dw<M: Measurement>(c: &mut Criterion<M>, name: &str, m: usize, dw_col_major: bool) {
    let dz = random(N * m, 1);
    let x = random(N * m, 2);
    let mut dw = random(N * N, 3);
    let (half, all) = masks(N);
    let mut ws = vec![0.0f32; layer::batch_workspace_len::<f32>(N, N, m)];
    let mut g = config(c, name);
    let dzv = view(&dz, N, m, true);
    let xv = view(&x, N, m, true);
    for (fname, words, keep) in [
        ("masked_keep0.5", &half, KeepProb::new(0.5).unwrap()),
        ("masked_keep1.0", &all, KeepProb::ONE),
    ] {
        let mask = Mask::new(words, N).unwrap();
        g.bench_function(fname, |b| {
            b.iter(|| {
                layer::weight_grad_batch(
                    dzv,
                    xv,
                    mask,
                    keep,
                    None,
                    view_mut(&mut dw, N, N, dw_col_major),
                    &mut ws,
                )
                .unwrap();
                black_box(&mut dw);
            })
        });
    }
    let dw_strides = strides(N, N, dw_col_major);
    g.bench_function("matrixmultiply_dense", |b| {
        b.iter(|| {
            // dZ (N x m, col-major) · Xᵀ (m x N: X col-major transposed is row-major).
            sgemm(
                (N, m, N),
                2.0,
                &dz,
                (1, N),
                &x,
                (N, 1),
                1.0,
                &mut dw,
                dw_strides,
            );
            black_box(&mut dw);
        })
    });
    // The GEMMs alone: Xᵀ's kept columns gathered (m x K, row-major, as the batch path
    // does), each block of dZ's rows times it into a compact block of C.
    let k = kept(&half, N);
    let mut xk = vec![0.0f32; m * k.len()];
    for p in 0..m {
        for (q, &i) in k.iter().enumerate() {
            xk[p * k.len() + q] = x[p * N + i];
        }
    }
    let rows = blocks(N, k.len());
    let mut cblock = vec![0.0f32; (rows[0] + 63) * k.len()];
    let c_strides = |r: usize| {
        if dw_col_major { (1, r) } else { (k.len(), 1) }
    };
    g.bench_function("compact_gemm_keep0.5", |b| {
        b.iter(|| {
            let mut start = 0;
            for &r in &rows {
                sgemm(
                    (r, m, k.len()),
                    2.0,
                    &dz[start..],
                    (1, N),
                    &xk,
                    (k.len(), 1),
                    0.0,
                    &mut cblock,
                    c_strides(r),
                );
                start += r;
            }
            black_box(&mut cblock);
        })
    });
    g.finish();
}

/// `dX = (Wᵀ dZ) ⊙ r / keep` at m = 128, `W` column-major.
fn dx<M: Measurement>(c: &mut Criterion<M>) {
    let m = 128;
    let w = random(N * N, 4);
    let dz = random(N * m, 5);
    let mut dx = vec![0.0f32; N * m];
    let (half, all) = masks(N);
    let mut ws = vec![0.0f32; layer::batch_workspace_len::<f32>(N, N, m)];
    let mut g = config(c, "dx_1024_m128");
    let wv = view(&w, N, N, true);
    let dzv = view(&dz, N, m, true);
    for (fname, words, keep) in [
        ("masked_keep0.5", &half, KeepProb::new(0.5).unwrap()),
        ("masked_keep1.0", &all, KeepProb::ONE),
    ] {
        let mask = Mask::new(words, N).unwrap();
        g.bench_function(fname, |b| {
            b.iter(|| {
                layer::input_grad_batch(
                    wv,
                    dzv,
                    mask,
                    keep,
                    None,
                    view_mut(&mut dx, N, m, true),
                    &mut ws,
                )
                .unwrap();
                black_box(&mut dx);
            })
        });
    }
    g.bench_function("matrixmultiply_dense", |b| {
        b.iter(|| {
            // Wᵀ (W col-major: Wᵀ row-major) · dZ into dX, column-major.
            sgemm(
                (N, N, m),
                2.0,
                &w,
                (N, 1),
                &dz,
                (1, N),
                0.0,
                &mut dx,
                (1, N),
            );
            black_box(&mut dx);
        })
    });
    // The GEMMs alone, as the batch path runs them for dX: in blocks of the inner
    // dimension (dZ's rows), each block's kept rows of Wᵀ (kept columns of W, gathered
    // beforehand into one compact buffer per block) times that block of dZ, summed into
    // one compact block of all the kept rows.
    let k = kept(&half, N);
    let a_blocks: Vec<(usize, Vec<f32>)> = inner_blocks(k.len(), N, m)
        .into_iter()
        .map(|(start, len)| {
            let mut a = vec![0.0f32; k.len() * len];
            for (q, &i) in k.iter().enumerate() {
                a[q * len..(q + 1) * len].copy_from_slice(&w[i * N + start..i * N + start + len]);
            }
            (start, a)
        })
        .collect();
    let mut cblock = vec![0.0f32; k.len() * m];
    g.bench_function("compact_gemm_keep0.5", |b| {
        b.iter(|| {
            for (q, (start, a)) in a_blocks.iter().enumerate() {
                let len = a.len() / k.len();
                sgemm(
                    (k.len(), len, m),
                    2.0,
                    a,
                    (len, 1),
                    &dz[*start..],
                    (1, N),
                    if q == 0 { 0.0 } else { 1.0 },
                    &mut cblock,
                    (1, k.len()),
                );
            }
            black_box(&mut cblock);
        })
    });
    g.finish();
}

/// The blocks of the inner dimension (`(start, len)`) in which the batch path computes
/// `dX` (as `src/arch/mm.rs` cuts them) for `kept` kept rows, an unmasked inner dimension
/// of `n` units and `m` columns, f32: what is left of the workspace
/// (`batch_workspace_len`'s share for this product: `n · m` plus a block of
/// `min(n · p, max(127 p, 512 KiB / 4 + 63 p))`, `p = n + m`) after the compact
/// `kept x m` result, divided among the kept rows, less 63.
fn inner_blocks(kept: usize, n: usize, m: usize) -> Vec<(usize, usize)> {
    let p = n + m;
    let block = (n * p).min((127 * p).max(512 * 1024 / 4 + 63 * p));
    let room = n * m + block;
    let width = (room - kept * m) / kept - 63;
    (0..n)
        .step_by(width)
        .map(|s| (s, width.min(n - s)))
        .collect()
}

/// A whole layer step at m = 128, `W` column-major: `Z = W X̃ + b`, `dX = Wᵀ dZ ⊙ r /
/// keep`, `W -= lr dZ X̃ᵀ`. `masked_*` runs it through a `layer::ThinnedBatch` (the kept
/// columns of `W` gathered once for the three operations); `separate_keep0.5` calls
/// `forward_batch`, `input_grad_batch` and `sgd_step_batch`, each gathering on its own.
fn step<M: Measurement>(c: &mut Criterion<M>) {
    let m = 128;
    let mut w = random(N * N, 6);
    let x = random(N * m, 7);
    let dz = random(N * m, 8);
    let bias = random(N, 9);
    let mut z = vec![0.0f32; N * m];
    let mut dx = vec![0.0f32; N * m];
    let (half, all) = masks(N);
    let mut ws = vec![0.0f32; layer::batch_workspace_len::<f32>(N, N, m)];
    let mut thin_ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(N, N, m)];
    let lr = 1e-6;
    let mut g = config(c, "step_1024_m128");
    for (fname, words, keep) in [
        ("masked_keep0.5", &half, KeepProb::new(0.5).unwrap()),
        ("masked_keep1.0", &all, KeepProb::ONE),
    ] {
        let mask = Mask::new(words, N).unwrap();
        g.bench_function(fname, |b| {
            b.iter(|| {
                let mut step = layer::ThinnedBatch::new(
                    view_mut(&mut w, N, N, true),
                    mask,
                    keep,
                    None,
                    &mut thin_ws,
                )
                .unwrap();
                step.forward(
                    view(&x, N, m, true),
                    Some(&bias),
                    view_mut(&mut z, N, m, true),
                )
                .unwrap();
                step.input_grad(view(&dz, N, m, true), view_mut(&mut dx, N, m, true))
                    .unwrap();
                step.sgd_step(view(&dz, N, m, true), view(&x, N, m, true), lr)
                    .unwrap();
                black_box((&mut z, &mut dx, &mut w));
            })
        });
    }
    let mask = Mask::new(&half, N).unwrap();
    let keep = KeepProb::new(0.5).unwrap();
    g.bench_function("separate_keep0.5", |b| {
        b.iter(|| {
            let xv = view(&x, N, m, true);
            let dzv = view(&dz, N, m, true);
            layer::forward_batch(
                view(&w, N, N, true),
                xv,
                mask,
                keep,
                None,
                Some(&bias),
                view_mut(&mut z, N, m, true),
                &mut ws,
            )
            .unwrap();
            layer::input_grad_batch(
                view(&w, N, N, true),
                dzv,
                mask,
                keep,
                None,
                view_mut(&mut dx, N, m, true),
                &mut ws,
            )
            .unwrap();
            layer::sgd_step_batch(
                view_mut(&mut w, N, N, true),
                dzv,
                xv,
                mask,
                keep,
                None,
                lr,
                &mut ws,
            )
            .unwrap();
            black_box((&mut z, &mut dx, &mut w));
        })
    });
    g.bench_function("matrixmultiply_dense", |b| {
        b.iter(|| {
            for k in 0..m {
                z[k * N..(k + 1) * N].copy_from_slice(&bias);
            }
            sgemm((N, N, m), 2.0, &w, (1, N), &x, (1, N), 1.0, &mut z, (1, N));
            sgemm(
                (N, N, m),
                2.0,
                &w,
                (N, 1),
                &dz,
                (1, N),
                0.0,
                &mut dx,
                (1, N),
            );
            sgemm((N, m, N), -lr, &dz, (1, N), &x, (N, 1), 1.0, &mut w, (1, N));
            black_box((&mut z, &mut dx, &mut w));
        })
    });
    g.finish();
}

fn all_groups<M: Measurement>(c: &mut Criterion<M>) {
    dw(c, "dw_1024_m128", 128, true);
    dw(c, "dw_1024_m128_rowmajor", 128, false);
    dx(c);
    dw(c, "dw_1024_m32", 32, true);
    dw(c, "dw_1024_m32_rowmajor", 32, false);
    step(c);
}

fn main() {
    if std::env::var_os("BITDROP_BENCH_CPU_TIME").is_some_and(|v| v == "1") {
        let mut c = Criterion::default()
            .with_measurement(CpuTime)
            .configure_from_args();
        all_groups(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        all_groups(&mut c);
        c.final_summary();
    }
}
