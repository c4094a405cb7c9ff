//! The sampler on the target: how often it keeps, whether every lane of a word is
//! alike, whether it repeats itself, and whether it matches the host bit for bit.

use bitdrop::{KeepProb, MaskMut, sample, words_for};
use rand_xoshiro::rand_core::Rng;

use crate::{Report, rng};

/// Units per frequency run: 64 words.
const UNITS: usize = 4096;
/// Masks drawn per keep probability.
const ROUNDS: usize = 8;

/// `keep = 0.8` from `seed_from_u64(1)`, 128 units, as the x86_64 build computes it
/// (the crate's `tests/sample.rs`, `known_answers`).
const KNOWN_0_8: [u64; 2] = [0x70ff_bfed_f9fc_3f7f, 0xff5d_7a7e_ff9f_fffe];

/// Runs every sampler check.
pub fn run(report: &mut Report) {
    known_answers(report);
    frequencies(report);
    lanes(report);
    determinism(report);
}

fn known_answers(report: &mut Report) {
    // keep = 0.5 takes one draw per word and keeps the lanes whose bit is 0.
    let mut draws = rng(1);
    let expected = [
        !draws.next_u64(),
        !draws.next_u64(),
        !draws.next_u64() & ((1 << 22) - 1),
    ];
    let mut words = [0u64; 3];
    let half = KeepProb::new(0.5).unwrap();
    if let Ok(mut mask) = MaskMut::new(&mut words, 150) {
        sample::bernoulli(&mut rng(1), half, &mut mask);
    }
    report.check(
        words == expected,
        format_args!("sampler: keep 0.5, 150 units = complement of the draws, tail bits clear"),
    );

    let mut words = [0u64; 2];
    if let Ok(mut mask) = MaskMut::new(&mut words, 128) {
        sample::bernoulli(&mut rng(1), KeepProb::new(0.8).unwrap(), &mut mask);
    }
    report.check(
        words == KNOWN_0_8,
        format_args!(
            "sampler: keep 0.8 known answer = x86_64's ({:#018x} {:#018x})",
            words[0], words[1]
        ),
    );
}

/// `|kept - n·keep| <= 5 σ` for several probabilities, over `ROUNDS` masks of `UNITS`.
fn frequencies(report: &mut Report) {
    let mut words = [0u64; words_for(UNITS)];
    for (k, &keep) in [0.5, 0.8, 0.1, 0.25, 0.9, 1.0 / 3.0, 0.999]
        .iter()
        .enumerate()
    {
        let keep_p = KeepProb::new(keep).unwrap();
        let mut rng = rng(1000 + k as u64);
        let mut kept = 0usize;
        for _ in 0..ROUNDS {
            let Ok(mut mask) = MaskMut::new(&mut words, UNITS) else {
                return;
            };
            sample::bernoulli(&mut rng, keep_p, &mut mask);
            kept += mask.as_mask().count_kept();
        }
        let n = (UNITS * ROUNDS) as f64;
        let sigma = libm::sqrt(n * keep * (1.0 - keep));
        let dev = kept as f64 - n * keep;
        report.check(
            libm::fabs(dev) <= 5.0 * sigma,
            format_args!(
                "sampler: keep {:.4}: {} of {} kept ({:+.2} sigma, bound 5)",
                keep,
                kept,
                n as u32,
                dev / sigma
            ),
        );
    }
    // keep = 1 keeps every unit and draws nothing.
    let mut rng1 = rng(5);
    let before = rng1.clone().next_u64();
    let Ok(mut mask) = MaskMut::new(&mut words, UNITS - 3) else {
        return;
    };
    sample::bernoulli(&mut rng1, KeepProb::ONE, &mut mask);
    let all = mask.as_mask().count_kept() == UNITS - 3 && words[words.len() - 1] == u64::MAX >> 3;
    report.check(
        all && rng1.next_u64() == before,
        format_args!(
            "sampler: keep 1 keeps all {} units, tail clear, no draws",
            UNITS - 3
        ),
    );
}

/// Every one of the 64 lanes of a word is kept at the same rate (5 σ per lane).
fn lanes(report: &mut Report) {
    const WORDS: usize = 256;
    let keep = 0.3;
    let mut rng = rng(77);
    let mut counts = [0u32; 64];
    let mut words = [0u64; WORDS / 4];
    for _ in 0..4 {
        let Ok(mut mask) = MaskMut::new(&mut words, 64 * WORDS / 4) else {
            return;
        };
        sample::bernoulli(&mut rng, KeepProb::new(keep).unwrap(), &mut mask);
        for w in words {
            for (lane, c) in counts.iter_mut().enumerate() {
                *c += (w >> lane & 1) as u32;
            }
        }
    }
    let n = WORDS as f64;
    let sigma = libm::sqrt(n * keep * (1.0 - keep));
    let worst = counts
        .iter()
        .map(|&c| libm::fabs(c as f64 - n * keep) / sigma)
        .fold(0.0, f64::max);
    report.check(
        worst <= 5.0,
        format_args!(
            "sampler: keep 0.3, each of 64 lanes over {} words: worst {:.2} sigma",
            WORDS, worst
        ),
    );
}

/// The same seed gives the same mask; another seed another one.
fn determinism(report: &mut Report) {
    let draw = |seed: u64, words: &mut [u64; 40]| {
        if let Ok(mut mask) = MaskMut::new(words, 2500) {
            sample::bernoulli(&mut rng(seed), KeepProb::new(0.8).unwrap(), &mut mask);
        }
    };
    let (mut a, mut b, mut c) = ([0u64; 40], [0u64; 40], [0u64; 40]);
    draw(5, &mut a);
    draw(5, &mut b);
    draw(6, &mut c);
    report.check(
        a == b && a != c && a[39] >> (2500 - 39 * 64) == 0,
        format_args!("sampler: same seed same mask, other seed other mask (2500 units, keep 0.8)"),
    );
}
