//! Exact, bit-parallel Bernoulli sampling of dropout masks.
//!
//! # The algorithm (part of the contract)
//!
//! Each unit `i` keeps with probability exactly `keep`: think of a uniform number
//! `U_i = 0.u₁u₂u₃…` (binary) per unit and keep it when `U_i < keep`. The bits of `U_i`
//! are drawn lazily, 64 units at a time, and compared with the binary expansion
//! `keep = 0.k₁k₂k₃…` from the most significant bit:
//!
//! For each mask word `w = 0, 1, …` (units `64w .. 64w + 63`), with `undecided` = the
//! word's units (all 64, or the `len % 64` low bits in the last word) and `kept = 0`:
//! for bit position `n = 1, 2, …`, while `undecided != 0` and `n` is not past the last 1
//! of `keep`'s expansion:
//!
//! 1. draw `u = rng.next_u64()`; bit `b` of `u` is bit `uₙ` of unit `64w + b`;
//! 2. if `kₙ = 1`: units with `uₙ = 0` are decided kept (`U < keep`):
//!    `kept |= undecided & !u; undecided &= u`;
//! 3. if `kₙ = 0`: units with `uₙ = 1` are decided dropped (`U > keep`):
//!    `undecided &= !u`.
//!
//! Units still undecided after the last 1 of `keep` have `U ≥ keep`: dropped. The word
//! is `kept`. `keep = 1` draws nothing and keeps every unit.
//!
//! So the mask is a pure function of the RNG's `next_u64` stream and `keep`'s bits: the
//! same RNG state gives the same mask on every target. Each round decides each undecided
//! unit with probability 1/2, so a word costs about 7.3 draws on average whatever
//! `keep` is (the expected maximum of 64 geometric variables, `log₂64 + 1.33`), never
//! more than the position of `keep`'s last 1 (at most 1074); `keep = 0.5` costs exactly
//! one draw per word and `keep = 0.75` at most two. Drawing one `u64` per unit and
//! comparing it with a threshold costs 64 draws per word and is exact only to 2⁻⁶⁴.

use rand_core::Rng;

use crate::mask::valid_bits;
use crate::{KeepProb, MaskBatchMut, MaskMut};

/// Fills `mask` with independent Bernoulli(`keep`) bits (1 = kept); bits past its length
/// stay zero.
///
/// Exact: unit `i` is kept with probability exactly `keep.get()`. Deterministic: the
/// result depends only on the `next_u64` values drawn, by the algorithm in the
/// [module documentation](self), on every target.
///
/// ```
/// use bitdrop::{KeepProb, MaskMut, sample, words_for};
/// use rand_xoshiro::{Xoshiro256PlusPlus, rand_core::SeedableRng};
///
/// let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
/// let mut words = [0u64; words_for(1000)];
/// let mut mask = MaskMut::new(&mut words, 1000)?;
/// sample::bernoulli(&mut rng, KeepProb::new(0.8)?, &mut mask);
/// let kept = mask.as_mask().count_kept();
/// assert!((740..860).contains(&kept));
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn bernoulli<R: Rng + ?Sized>(rng: &mut R, keep: KeepProb, mask: &mut MaskMut<'_>) {
    let len = mask.len();
    let words = mask.words_mut();
    // Whole words first, then the partial last word: the hot loop has no tail test.
    let (full, tail) = words.split_at_mut(len / 64);
    if keep.get() == 1.0 {
        full.fill(u64::MAX);
        if let Some(last) = tail.first_mut() {
            *last = valid_bits(len % 64);
        }
        return;
    }
    let expansion = keep.expansion();
    for word in full {
        *word = sample_word(rng, u64::MAX, expansion);
    }
    if let Some(last) = tail.first_mut() {
        *last = sample_word(rng, valid_bits(len % 64), expansion);
    }
}

/// Fills every mask of a batch, mask 0 first; the same as calling [`bernoulli`] on each
/// mask in order.
///
/// ```
/// use bitdrop::{KeepProb, MaskBatchMut, sample};
/// use rand_xoshiro::{Xoshiro256PlusPlus, rand_core::SeedableRng};
///
/// let mut words = [0u64; 4];
/// let mut masks = MaskBatchMut::new(&mut words, 64, 4)?;
/// sample::bernoulli_batch(&mut Xoshiro256PlusPlus::seed_from_u64(1), KeepProb::ONE, &mut masks);
/// assert_eq!(words, [u64::MAX; 4]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn bernoulli_batch<R: Rng + ?Sized>(rng: &mut R, keep: KeepProb, masks: &mut MaskBatchMut<'_>) {
    // Masks of zero units have no words and draw nothing: any number of them (a count of
    // `usize::MAX` is valid) is done at once.
    if masks.as_batch().words().is_empty() {
        return;
    }
    let mut k = 0;
    while let Some(mut mask) = masks.get_mut(k) {
        bernoulli(rng, keep, &mut mask);
        k += 1;
    }
}

/// One mask word: the lanes in `valid` (non-zero) are decided against `keep < 1`.
#[inline(always)]
fn sample_word<R: Rng + ?Sized>(rng: &mut R, valid: u64, keep: crate::keep::Expansion) -> u64 {
    let mut undecided = valid;
    // Leading zeros of keep: a 1 in U there means U > keep.
    let mut zeros = keep.leading_zeros;
    while zeros > 0 && undecided != 0 {
        undecided &= !rng.next_u64();
        zeros -= 1;
    }
    let mut kept = 0;
    let mut bits = keep.significant_bits;
    let mut remaining = keep.significant;
    // `significant >= 1`; one exit test per round, evaluated without short-circuit.
    while undecided != 0 {
        let u = rng.next_u64();
        // All ones when this bit of keep is 1, else zero: one branch-free update.
        let keep_bit = ((bits as i64) >> 63) as u64;
        kept |= undecided & !u & keep_bit;
        undecided &= !(u ^ keep_bit);
        bits <<= 1;
        remaining -= 1;
        // Past keep's last 1 every undecided lane has U >= keep: dropped.
        undecided &= ((remaining != 0) as u64).wrapping_neg();
    }
    kept
}
