//! `sampler`: `sample::bernoulli` and `bernoulli_batch` against the algorithm as the
//! module documentation states it, implemented independently here (the binary
//! expansion of `keep` by exact doubling, one `next_u64` per bit position per word).
//!
//! Checks, for arbitrary lengths, keeps (ordinary, dyadic, subnormal, raw bits), mask
//! contents before the call and RNG streams (a generator, fuzzer-chosen words, all
//! zeros, all ones, whose worst cases the bound must cover):
//! - the mask equals the documented algorithm's, bit for bit, and so does the number
//!   of `next_u64` calls; no other RNG method is called;
//! - bits past the length are zero;
//! - determinism: the same RNG state gives the same mask and the same draws;
//! - `keep = 1` keeps every unit and draws nothing; `keep = 0.5` draws once per word,
//!   `keep = 0.75` at most twice;
//! - draws per word never exceed the position of `keep`'s last 1 bit (at most 1074);
//! - `bernoulli_batch` equals `bernoulli` on each mask in turn.

use core::convert::Infallible;

use arbitrary::{Arbitrary, Unstructured};
use bitdrop::{KeepProb, MaskBatchMut, MaskMut, sample, words_for};
use rand_core::TryRng;

use super::common::U;

#[derive(Arbitrary, Debug, Clone)]
enum Source {
    SplitMix(u64),
    /// Cycled; an empty list is all zeros.
    Words(Vec<u64>),
    Zeros,
    Ones,
}

/// An RNG over a [`Source`] that counts what is asked of it.
#[derive(Debug, Clone)]
struct Counting {
    source: Source,
    pos: usize,
    state: u64,
    draws: u64,
    other_calls: u64,
}

impl Counting {
    fn new(source: Source) -> Counting {
        let state = match source {
            Source::SplitMix(s) => s,
            _ => 0,
        };
        Counting {
            source,
            pos: 0,
            state,
            draws: 0,
            other_calls: 0,
        }
    }

    fn word(&mut self) -> u64 {
        self.draws += 1;
        match &self.source {
            Source::SplitMix(_) => {
                self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            Source::Words(w) if w.is_empty() => 0,
            Source::Words(w) => {
                let v = w[self.pos % w.len()];
                self.pos += 1;
                v
            }
            Source::Zeros => 0,
            Source::Ones => u64::MAX,
        }
    }
}

impl TryRng for Counting {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.other_calls += 1;
        Ok(self.word() as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.word())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.other_calls += 1;
        dst.fill(0);
        Ok(())
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum KeepSpec {
    Bits(u64),
    /// `num / 2^bits`.
    Dyadic(u64, u8),
    One,
    Half,
    ThreeQuarters,
    Subnormal(u64),
    BelowOne(u8),
}

impl KeepSpec {
    fn get(self) -> Option<KeepProb> {
        let keep = match self {
            KeepSpec::Bits(b) => f64::from_bits(b),
            KeepSpec::Dyadic(num, bits) => {
                let bits = i32::from(bits % 64);
                (num % (1u64 << bits).max(1)) as f64 / 2f64.powi(bits)
            }
            KeepSpec::One => 1.0,
            KeepSpec::Half => 0.5,
            KeepSpec::ThreeQuarters => 0.75,
            KeepSpec::Subnormal(b) => f64::from_bits(b & ((1 << 52) - 1)),
            KeepSpec::BelowOne(k) => 1.0 - 2f64.powi(-i32::from(k % 54)),
        };
        KeepProb::new(keep).ok()
    }
}

/// `keep < 1` as bits `k_1, k_2, …` (`k_n` has weight `2^-n`), up to the last 1: exact
/// doubling, independent of the crate's decomposition of the `f64`.
fn expansion(keep: f64) -> Vec<bool> {
    let mut r = keep;
    let mut bits = Vec::new();
    while r != 0.0 {
        r *= 2.0;
        let bit = r >= 1.0;
        if bit {
            r -= 1.0;
        }
        bits.push(bit);
        assert!(bits.len() <= 1074, "keep {keep} has more than 1074 bits");
    }
    bits
}

/// The documented algorithm: the mask words and the number of draws.
fn oracle(keep: f64, len: usize, rng: &mut Counting) -> Vec<u64> {
    let mut words = vec![0u64; words_for(len)];
    let expansion = if keep == 1.0 {
        Vec::new()
    } else {
        expansion(keep)
    };
    for (w, word) in words.iter_mut().enumerate() {
        let units = (len - 64 * w).min(64);
        let valid = if units == 64 {
            u64::MAX
        } else {
            (1 << units) - 1
        };
        if keep == 1.0 {
            *word = valid;
            continue;
        }
        let (mut undecided, mut kept) = (valid, 0u64);
        for &k in &expansion {
            if undecided == 0 {
                break;
            }
            let u = rng.word();
            if k {
                kept |= undecided & !u;
                undecided &= u;
            } else {
                undecided &= !u;
            }
        }
        *word = kept;
    }
    words
}

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = case(&mut u);
}

fn case(u: &mut U) -> arbitrary::Result<()> {
    let Some(keep) = u.arbitrary::<KeepSpec>()?.get() else {
        return Ok(());
    };
    let len = usize::from(u.arbitrary::<u16>()? % 4097);
    let count = usize::from(u.arbitrary::<u8>()? % 5);
    let prefill: u64 = u.arbitrary()?;
    let source: Source = u.arbitrary()?;
    let k = keep.get();
    let label = format!(
        "keep {k:e} ({:#x}) len {len} source {source:?}",
        k.to_bits()
    );
    let n_words = words_for(len);
    let prefilled = || {
        let mut words = vec![prefill; n_words];
        if let Some(last) = words.last_mut()
            && len % 64 != 0
        {
            *last &= (1 << (len % 64)) - 1;
        }
        words
    };

    // One mask against the oracle, twice from the same state.
    let mut expected_rng = Counting::new(source.clone());
    let expected = oracle(k, len, &mut expected_rng);
    let mut first = None;
    for run in 0..2 {
        let mut rng = Counting::new(source.clone());
        let mut words = prefilled();
        let mut mask = MaskMut::new(&mut words, len).expect("valid prefilled mask");
        sample::bernoulli(&mut rng, keep, &mut mask);
        assert_eq!(rng.other_calls, 0, "{label}: only next_u64 may be used");
        assert_eq!(
            words, expected,
            "{label}: run {run}: mask differs from the documented algorithm"
        );
        assert_eq!(
            rng.draws, expected_rng.draws,
            "{label}: run {run}: draws differ from the documented algorithm"
        );
        if let Some(last) = words.last()
            && len % 64 != 0
        {
            assert_eq!(last >> (len % 64), 0, "{label}: tail bits set");
        }
        match &first {
            None => first = Some((words.clone(), rng.draws)),
            Some(f) => assert_eq!(f, &(words.clone(), rng.draws), "{label}: not deterministic"),
        }
        // The documented costs.
        let n = n_words as u64;
        if k == 1.0 {
            let kept = words.iter().map(|w| w.count_ones() as usize).sum::<usize>();
            assert_eq!((kept, rng.draws), (len, 0), "{label}: keep = 1");
        } else {
            let last_one = expansion(k).len() as u64;
            assert!(last_one <= 1074);
            assert!(
                rng.draws <= n * last_one,
                "{label}: {} draws for {n} words, bound {}",
                rng.draws,
                n * last_one
            );
        }
        if k == 0.5 {
            assert_eq!(rng.draws, n, "{label}: keep = 0.5 draws once per word");
        }
        if k == 0.75 {
            assert!(
                rng.draws <= 2 * n,
                "{label}: keep = 0.75 draws at most twice"
            );
        }
    }

    // A batch equals the masks in turn.
    let mut batch_rng = Counting::new(source.clone());
    let mut batch_words: Vec<u64> = (0..count).flat_map(|_| prefilled()).collect();
    let mut masks = MaskBatchMut::new(&mut batch_words, len, count).expect("valid batch");
    sample::bernoulli_batch(&mut batch_rng, keep, &mut masks);
    let mut one_rng = Counting::new(source);
    for k in 0..count {
        let mut words = prefilled();
        let mut mask = MaskMut::new(&mut words, len).expect("valid mask");
        sample::bernoulli(&mut one_rng, keep, &mut mask);
        assert_eq!(
            &batch_words[k * n_words..(k + 1) * n_words],
            &words[..],
            "{label}: batch mask {k} of {count} differs from one bernoulli call"
        );
    }
    assert_eq!(batch_rng.draws, one_rng.draws, "{label}: batch draws");
    Ok(())
}
