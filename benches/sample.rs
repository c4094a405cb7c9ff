//! The exact bit-parallel sampler against one `next_u64` per unit, 1 Mi units.
//!
//! `cargo bench --bench sample`

use std::hint::black_box;

use bitdrop::{KeepProb, MaskMut, sample, words_for};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

const UNITS: usize = 1 << 20;

/// The usual way: one random word per unit, compared with `keep · 2⁶⁴`, packed into bits.
fn per_element(rng: &mut Xoshiro256PlusPlus, keep: f64, words: &mut [u64]) {
    let threshold = (keep * 2f64.powi(64)) as u64;
    for word in words.iter_mut() {
        let mut bits = 0u64;
        for b in 0..64 {
            bits |= ((rng.next_u64() < threshold) as u64) << b;
        }
        *word = bits;
    }
}

fn sampler(c: &mut Criterion) {
    let mut group = c.benchmark_group("sample_1Mi");
    group.throughput(Throughput::Elements(UNITS as u64));
    let mut words = vec![0u64; words_for(UNITS)];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5eed);
    for keep in [0.5, 0.8, 0.9, 0.3] {
        let keep_prob = KeepProb::new(keep).unwrap();
        group.bench_with_input(BenchmarkId::new("bitdrop", keep), &keep_prob, |b, &k| {
            b.iter(|| {
                let mut mask = MaskMut::new(&mut words, UNITS).unwrap();
                sample::bernoulli(&mut rng, k, &mut mask);
                black_box(&mask);
            })
        });
        group.bench_with_input(BenchmarkId::new("per_element", keep), &keep, |b, &k| {
            b.iter(|| {
                per_element(&mut rng, k, &mut words);
                black_box(&words);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sampler);
criterion_main!(benches);
