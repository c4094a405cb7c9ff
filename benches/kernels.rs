//! Masked layer kernels against their dense baselines, one example (m = 1), f32.
//!
//! `cargo bench --bench kernels` (filter with e.g. `-- weight_grad_col_1024`).
//!
//! Each group holds, in one run: the masked kernel at keep 0.1, 0.5, 0.9 and with an
//! all-kept mask; (a) the same kernel with no mask (our dense SIMD code, same level);
//! (b) `matrixmultiply::sgemm` doing the same product; (c) a plain Rust dense loop.

// The plain loops are written like the formulas, index by index, on purpose.
#![allow(clippy::needless_range_loop)]

use std::hint::black_box;
use std::time::Duration;

use bitdrop::{KeepProb, Mask, MaskMut, MatMut, MatRef, blas, layer, sample, words_for};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

const SIZES: [usize; 3] = [256, 1024, 4096];
const KEEPS: [f64; 3] = [0.1, 0.5, 0.9];

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Col,
    Row,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Col => "col",
            Layout::Row => "row",
        }
    }
    /// Strides of an n x n matrix.
    fn strides(self, n: usize) -> (usize, usize) {
        match self {
            Layout::Col => (1, n),
            Layout::Row => (n, 1),
        }
    }
    fn view(self, d: &[f32], n: usize) -> MatRef<'_, f32> {
        let (rs, cs) = self.strides(n);
        MatRef::new(d, n, n, rs, cs).unwrap()
    }
    fn view_mut(self, d: &mut [f32], n: usize) -> MatMut<'_, f32> {
        let (rs, cs) = self.strides(n);
        MatMut::new(d, n, n, rs, cs).unwrap()
    }
    /// Row and column strides as matrixmultiply takes them.
    fn mm_strides(self, n: usize) -> (isize, isize) {
        let (rs, cs) = self.strides(n);
        (rs as isize, cs as isize)
    }
}

/// Mask words for `n` units at `keep` (`None`: all kept).
fn mask_words(n: usize, keep: Option<f64>) -> Vec<u64> {
    let mut words = vec![0u64; words_for(n)];
    let mut mask = MaskMut::new(&mut words, n).unwrap();
    match keep {
        Some(k) => sample::bernoulli(
            &mut Xoshiro256PlusPlus::seed_from_u64(7),
            KeepProb::new(k).unwrap(),
            &mut mask,
        ),
        None => mask.fill(true),
    }
    words
}

/// The masked variants of one group: keep 0.1/0.5/0.9 and an all-kept mask.
fn masked_variants(n: usize) -> Vec<(String, Vec<u64>, KeepProb)> {
    let mut v: Vec<_> = KEEPS
        .iter()
        .map(|&k| {
            (
                format!("masked_keep{k}"),
                mask_words(n, Some(k)),
                KeepProb::new(k).unwrap(),
            )
        })
        .collect();
    v.push(("masked_all_kept".into(), mask_words(n, None), KeepProb::ONE));
    v
}

fn configure(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("kernels");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

/// dW += dz xᵀ / keep (and the fused SGD step, W -= lr dz xᵀ / keep): a rank-1 update.
fn weight_updates(c: &mut Criterion) {
    for layout in [Layout::Col, Layout::Row] {
        for n in SIZES {
            let x = vec![0.5f32; n];
            let dz = vec![0.25f32; n];
            let mut dw = vec![0.0f32; n * n];
            for op in ["weight_grad", "sgd_step"] {
                let mut g = configure(c);
                g.throughput(Throughput::Elements((n * n) as u64));
                let id = |f: &str| BenchmarkId::new(format!("{op}_{}_{n}", layout.name()), f);
                for (name, words, keep) in masked_variants(n) {
                    let mask = Mask::new(&words, n).unwrap();
                    g.bench_function(id(&name), |b| {
                        b.iter(|| match op {
                            "weight_grad" => {
                                layer::weight_grad(&dz, &x, mask, keep, layout.view_mut(&mut dw, n))
                            }
                            _ => layer::sgd_step(
                                layout.view_mut(&mut dw, n),
                                &dz,
                                &x,
                                mask,
                                keep,
                                1e-3,
                            ),
                        })
                    });
                }
                g.bench_function(id("dense_simd"), |b| {
                    b.iter(|| blas::ger(1.0, &dz, None, &x, None, layout.view_mut(&mut dw, n)))
                });
                let (rs, cs) = layout.mm_strides(n);
                g.bench_function(id("matrixmultiply"), |b| {
                    // SAFETY: dz is n x 1, x is 1 x n, dw is n x n with strides (rs, cs).
                    b.iter(|| unsafe {
                        matrixmultiply::sgemm(
                            n,
                            1,
                            n,
                            1.0,
                            dz.as_ptr(),
                            1,
                            1,
                            x.as_ptr(),
                            1,
                            1,
                            1.0,
                            dw.as_mut_ptr(),
                            rs,
                            cs,
                        )
                    })
                });
                g.bench_function(id("plain_loop"), |b| {
                    b.iter(|| {
                        for j in 0..n {
                            for i in 0..n {
                                let k = match layout {
                                    Layout::Col => j + i * n,
                                    Layout::Row => j * n + i,
                                };
                                dw[k] += dz[j] * x[i];
                            }
                        }
                        black_box(&dw);
                    })
                });
                g.finish();
            }
        }
    }
}

/// dx = (Wᵀ dz) ⊙ r / keep and z = W (r ⊙ x / keep): matrix-vector products.
fn products(c: &mut Criterion) {
    for layout in [Layout::Col, Layout::Row] {
        for n in SIZES {
            let w: Vec<f32> = (0..n * n).map(|k| (k % 7) as f32 * 0.1).collect();
            let v = vec![0.5f32; n];
            let mut out = vec![0.0f32; n];
            for op in ["input_grad", "forward"] {
                let mut g = configure(c);
                g.throughput(Throughput::Elements((n * n) as u64));
                let id = |f: &str| BenchmarkId::new(format!("{op}_{}_{n}", layout.name()), f);
                let wv = layout.view(&w, n);
                for (name, words, keep) in masked_variants(n) {
                    let mask = Mask::new(&words, n).unwrap();
                    g.bench_function(id(&name), |b| {
                        b.iter(|| match op {
                            "input_grad" => layer::input_grad(wv, &v, mask, keep, &mut out),
                            _ => layer::forward(wv, &v, mask, keep, None, &mut out),
                        })
                    });
                }
                // The dense product of the same orientation: Wᵀ dz or W x.
                let a = if op == "input_grad" { wv.t() } else { wv };
                g.bench_function(id("dense_simd"), |b| {
                    b.iter(|| blas::gemv(1.0, a, &v, None, 0.0, &mut out, None))
                });
                let (rs, cs) = (a.row_stride() as isize, a.col_stride() as isize);
                g.bench_function(id("matrixmultiply"), |b| {
                    // SAFETY: a is n x n with strides (rs, cs) over w; v is n x 1; out n x 1.
                    b.iter(|| unsafe {
                        matrixmultiply::sgemm(
                            n,
                            n,
                            1,
                            1.0,
                            w.as_ptr(),
                            rs,
                            cs,
                            v.as_ptr(),
                            1,
                            1,
                            0.0,
                            out.as_mut_ptr(),
                            1,
                            1,
                        )
                    })
                });
                g.bench_function(id("plain_loop"), |b| {
                    b.iter(|| {
                        for j in 0..n {
                            let mut s = 0.0f32;
                            for i in 0..n {
                                s += w[j * rs as usize + i * cs as usize] * v[i];
                            }
                            out[j] = s;
                        }
                        black_box(&out);
                    })
                });
                g.finish();
            }
        }
    }
}

criterion_group!(benches, weight_updates, products);
criterion_main!(benches);
