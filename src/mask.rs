//! Packed dropout masks: one bit per unit, 1 = kept.
//!
//! Bit `i` lives in word `i / 64` at bit `i % 64` (least significant first). Bits at or
//! past the mask's length are zero: the constructors check it and the sampler writes it,
//! so a kernel may read whole words.

use core::iter::FusedIterator;

use crate::Error;

/// Number of `u64` words that hold a mask of `len` units: `ceil(len / 64)`.
///
/// Usable in const context, to size static buffers:
///
/// ```
/// use bitdrop::words_for;
///
/// static mut HIDDEN_MASK: [u64; words_for(100)] = [0; words_for(100)];
/// assert_eq!(words_for(0), 0);
/// assert_eq!(words_for(64), 1);
/// assert_eq!(words_for(65), 2);
/// assert_eq!(words_for(usize::MAX), usize::MAX / 64 + 1);
/// ```
pub const fn words_for(len: usize) -> usize {
    len / 64 + !len.is_multiple_of(64) as usize
}

/// The index of the first set bit at or past `len`, if any.
fn first_tail_bit(words: &[u64], len: usize) -> Option<usize> {
    let full = len / 64;
    let tail_shift = len % 64;
    words.iter().enumerate().skip(full).find_map(|(w, &word)| {
        // In word `full` only the bits from `len % 64` up are tail bits.
        let tail = if w == full {
            word >> tail_shift << tail_shift
        } else {
            word
        };
        (tail != 0).then(|| w * 64 + tail.trailing_zeros() as usize)
    })
}

fn check_words(words: &[u64], len: usize) -> Result<(), Error> {
    let expected = words_for(len);
    if words.len() != expected {
        return Err(Error::MaskWords {
            len,
            expected,
            found: words.len(),
        });
    }
    match first_tail_bit(words, len) {
        Some(bit) => Err(Error::MaskTail { len, bit }),
        None => Ok(()),
    }
}

/// A dropout mask over `len` units, borrowed from packed `u64` words.
///
/// ```
/// use bitdrop::Mask;
///
/// // Units 0, 2 and 64 of 70 are kept.
/// let words = [0b101, 0b1];
/// let mask = Mask::new(&words, 70)?;
/// assert_eq!(mask.len(), 70);
/// assert_eq!(mask.count_kept(), 3);
/// assert!(mask.is_kept(2) && !mask.is_kept(1));
/// assert!(mask.iter_kept().eq([0, 2, 64]));
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask<'a> {
    words: &'a [u64],
    len: usize,
}

impl<'a> Mask<'a> {
    /// Views `words` as a mask of `len` units.
    ///
    /// # Errors
    ///
    /// [`Error::MaskWords`] if `words.len() != words_for(len)`; [`Error::MaskTail`] if a
    /// bit at or past `len` is set.
    ///
    /// ```
    /// use bitdrop::{Error, Mask};
    ///
    /// assert_eq!(Mask::new(&[0, 0], 64), Err(Error::MaskWords { len: 64, expected: 1, found: 2 }));
    /// assert_eq!(Mask::new(&[1 << 10], 10), Err(Error::MaskTail { len: 10, bit: 10 }));
    /// ```
    pub fn new(words: &'a [u64], len: usize) -> Result<Mask<'a>, Error> {
        check_words(words, len)?;
        Ok(Mask { words, len })
    }

    /// The empty mask of zero units.
    ///
    /// ```
    /// assert!(bitdrop::Mask::empty().is_empty());
    /// ```
    pub const fn empty() -> Mask<'static> {
        Mask { words: &[], len: 0 }
    }

    /// Number of units (kept or dropped).
    ///
    /// ```
    /// assert_eq!(bitdrop::Mask::new(&[0], 5)?.len(), 5);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn len(self) -> usize {
        self.len
    }

    /// Whether the mask has zero units.
    ///
    /// ```
    /// assert!(!bitdrop::Mask::new(&[0], 5)?.is_empty());
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The packed words; bits at or past [`len`](Self::len) are zero.
    ///
    /// ```
    /// assert_eq!(bitdrop::Mask::new(&[0b11], 2)?.words(), &[0b11]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn words(self) -> &'a [u64] {
        self.words
    }

    /// Number of kept units.
    ///
    /// ```
    /// assert_eq!(bitdrop::Mask::new(&[u64::MAX, 1], 65)?.count_kept(), 65);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn count_kept(self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether unit `i` is kept; `false` for `i >= len`.
    ///
    /// ```
    /// let mask = bitdrop::Mask::new(&[0b10], 2)?;
    /// assert!(mask.is_kept(1) && !mask.is_kept(0) && !mask.is_kept(99));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn is_kept(self, i: usize) -> bool {
        // Bits past `len` are zero, so reading the word is enough.
        self.words
            .get(i / 64)
            .is_some_and(|word| word >> (i % 64) & 1 == 1)
    }

    /// Whether every unit is kept (true for the empty mask).
    ///
    /// ```
    /// assert!(bitdrop::Mask::new(&[0b111], 3)?.all_kept());
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn all_kept(self) -> bool {
        self.count_kept() == self.len
    }

    /// The indices of the kept units, in increasing order.
    ///
    /// A zero word is passed over in one step, so the cost is one step per word plus one
    /// per kept unit.
    ///
    /// ```
    /// let mask = bitdrop::Mask::new(&[0, 1 << 63, 0b1], 129)?;
    /// assert!(mask.iter_kept().eq([127, 128]));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn iter_kept(self) -> KeptIter<'a> {
        KeptIter {
            words: self.words.iter(),
            current: 0,
            base: 0,
            next_base: 0,
        }
    }
}

impl Default for Mask<'_> {
    fn default() -> Self {
        Mask::empty()
    }
}

/// Iterator over the kept units of a [`Mask`], from [`Mask::iter_kept`].
#[derive(Debug, Clone)]
pub struct KeptIter<'a> {
    words: core::slice::Iter<'a, u64>,
    /// Bits of the current word not yet yielded.
    current: u64,
    /// Unit index of bit 0 of `current`.
    base: usize,
    /// Unit index of bit 0 of the next word.
    next_base: usize,
}

impl Iterator for KeptIter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.current == 0 {
            self.current = *self.words.next()?;
            self.base = self.next_base;
            self.next_base += 64;
        }
        let bit = self.current.trailing_zeros() as usize;
        // Clear the lowest set bit (hashbrown's BitMask loop).
        self.current &= self.current - 1;
        Some(self.base + bit)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let now = self.current.count_ones() as usize;
        (now, Some(now + 64 * self.words.len()))
    }
}

impl FusedIterator for KeptIter<'_> {}

/// A mask over `len` units whose bits can be written: the sampler's output.
///
/// ```
/// use bitdrop::MaskMut;
///
/// let mut words = [0u64; 2];
/// let mut mask = MaskMut::new(&mut words, 100)?;
/// mask.fill_with(|i| i % 3 == 0);
/// assert_eq!(mask.as_mask().count_kept(), 34);
/// mask.set(1, true)?;
/// assert!(mask.as_mask().is_kept(1));
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct MaskMut<'a> {
    words: &'a mut [u64],
    len: usize,
}

impl<'a> MaskMut<'a> {
    /// Views `words` as a writable mask of `len` units.
    ///
    /// # Errors
    ///
    /// [`Error::MaskWords`] if `words.len() != words_for(len)`; [`Error::MaskTail`] if a
    /// bit at or past `len` is set.
    ///
    /// ```
    /// let mut words = [0u64; 1];
    /// assert!(bitdrop::MaskMut::new(&mut words, 64).is_ok());
    /// assert!(bitdrop::MaskMut::new(&mut words, 65).is_err());
    /// ```
    pub fn new(words: &'a mut [u64], len: usize) -> Result<MaskMut<'a>, Error> {
        check_words(words, len)?;
        Ok(MaskMut { words, len })
    }

    /// Number of units.
    ///
    /// ```
    /// assert_eq!(bitdrop::MaskMut::new(&mut [0], 7)?.len(), 7);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask has zero units.
    ///
    /// ```
    /// assert!(bitdrop::MaskMut::new(&mut [], 0)?.is_empty());
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A read-only view of the current bits.
    ///
    /// ```
    /// let mut words = [0b1u64];
    /// let mask = bitdrop::MaskMut::new(&mut words, 3)?;
    /// assert_eq!(mask.as_mask().count_kept(), 1);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn as_mask(&self) -> Mask<'_> {
        Mask {
            words: self.words,
            len: self.len,
        }
    }

    /// Keeps unit `i` if `kept`, drops it otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Index`] if `i >= len`.
    ///
    /// ```
    /// let mut words = [0u64];
    /// let mut mask = bitdrop::MaskMut::new(&mut words, 3)?;
    /// mask.set(2, true)?;
    /// assert!(mask.set(3, true).is_err());
    /// assert_eq!(words, [0b100]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn set(&mut self, i: usize, kept: bool) -> Result<(), Error> {
        if i >= self.len {
            return Err(Error::Index {
                index: i,
                len: self.len,
            });
        }
        let bit = 1u64 << (i % 64);
        let word = &mut self.words[i / 64];
        if kept {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        Ok(())
    }

    /// Keeps every unit (`true`) or drops every unit (`false`).
    ///
    /// ```
    /// let mut words = [0u64; 2];
    /// let mut mask = bitdrop::MaskMut::new(&mut words, 70)?;
    /// mask.fill(true);
    /// assert_eq!(words, [u64::MAX, 0b111111]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn fill(&mut self, kept: bool) {
        self.fill_with(|_| kept);
    }

    /// Sets each unit `i` to `kept(i)`, in increasing order of `i`.
    ///
    /// ```
    /// let mut words = [0u64];
    /// bitdrop::MaskMut::new(&mut words, 4)?.fill_with(|i| i >= 2);
    /// assert_eq!(words, [0b1100]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn fill_with(&mut self, mut kept: impl FnMut(usize) -> bool) {
        for (w, word) in self.words.iter_mut().enumerate() {
            let units = (self.len - w * 64).min(64);
            *word = (0..units).fold(0, |acc, b| acc | (kept(w * 64 + b) as u64) << b);
        }
    }

    /// The words, for writers that keep bits at or past `len` zero (the sampler).
    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        self.words
    }
}

/// The bits of a word that hold units when `remaining` units start at its bit 0.
pub(crate) const fn valid_bits(remaining: usize) -> u64 {
    if remaining >= 64 {
        u64::MAX
    } else {
        (1 << remaining) - 1
    }
}

impl<'a> From<MaskMut<'a>> for Mask<'a> {
    fn from(mask: MaskMut<'a>) -> Mask<'a> {
        Mask {
            words: mask.words,
            len: mask.len,
        }
    }
}

/// `count` masks of `len` units each, one per example of a mini-batch.
///
/// Mask `k` occupies words `k * words_for(len) .. (k + 1) * words_for(len)`, so every
/// mask starts on a word boundary.
///
/// ```
/// use bitdrop::{MaskBatch, words_for};
///
/// // Three masks of 3 units: {0}, {1, 2}, {}.
/// let words = [0b001, 0b110, 0b000];
/// let masks = MaskBatch::new(&words, 3, 3)?;
/// assert_eq!(words_for(3), 1);
/// assert_eq!(masks.get(1).unwrap().count_kept(), 2);
/// assert_eq!(masks.iter().map(|m| m.count_kept()).sum::<usize>(), 3);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskBatch<'a> {
    words: &'a [u64],
    mask_len: usize,
    count: usize,
}

fn check_batch_words(words: &[u64], mask_len: usize, count: usize) -> Result<(), Error> {
    let per_mask = words_for(mask_len);
    let expected = per_mask.checked_mul(count);
    if expected != Some(words.len()) {
        return Err(Error::MaskWords {
            len: mask_len,
            expected: expected.unwrap_or(usize::MAX),
            found: words.len(),
        });
    }
    if per_mask == 0 {
        return Ok(());
    }
    for (k, mask) in words.chunks_exact(per_mask).enumerate() {
        if let Some(bit) = first_tail_bit(mask, mask_len) {
            return Err(Error::MaskTail {
                len: mask_len,
                bit: k * per_mask * 64 + bit,
            });
        }
    }
    Ok(())
}

impl<'a> MaskBatch<'a> {
    /// Views `words` as `count` masks of `mask_len` units each.
    ///
    /// # Errors
    ///
    /// [`Error::MaskWords`] if `words.len() != count * words_for(mask_len)`;
    /// [`Error::MaskTail`] if a mask has a bit set at or past `mask_len` (`bit` counts
    /// from the start of `words`).
    ///
    /// ```
    /// assert!(bitdrop::MaskBatch::new(&[0, 0], 64, 2).is_ok());
    /// assert!(bitdrop::MaskBatch::new(&[0, 0], 64, 3).is_err());
    /// ```
    pub fn new(words: &'a [u64], mask_len: usize, count: usize) -> Result<MaskBatch<'a>, Error> {
        check_batch_words(words, mask_len, count)?;
        Ok(MaskBatch {
            words,
            mask_len,
            count,
        })
    }

    /// Units per mask.
    ///
    /// ```
    /// assert_eq!(bitdrop::MaskBatch::new(&[0, 0], 5, 2)?.mask_len(), 5);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn mask_len(self) -> usize {
        self.mask_len
    }

    /// Number of masks (examples).
    ///
    /// ```
    /// assert_eq!(bitdrop::MaskBatch::new(&[0, 0], 5, 2)?.count(), 2);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn count(self) -> usize {
        self.count
    }

    /// The packed words of all masks.
    ///
    /// ```
    /// assert_eq!(bitdrop::MaskBatch::new(&[1, 2], 5, 2)?.words(), &[1, 2]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn words(self) -> &'a [u64] {
        self.words
    }

    /// Mask `k`, or `None` if `k >= count`.
    ///
    /// ```
    /// let masks = bitdrop::MaskBatch::new(&[1, 2], 5, 2)?;
    /// assert!(masks.get(1).unwrap().is_kept(1));
    /// assert!(masks.get(2).is_none());
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn get(self, k: usize) -> Option<Mask<'a>> {
        if k >= self.count {
            return None;
        }
        let per_mask = words_for(self.mask_len);
        Some(Mask {
            words: &self.words[k * per_mask..(k + 1) * per_mask],
            len: self.mask_len,
        })
    }

    /// The masks in order.
    ///
    /// ```
    /// let masks = bitdrop::MaskBatch::new(&[1, 3], 5, 2)?;
    /// assert!(masks.iter().map(|m| m.count_kept()).eq([1, 2]));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn iter(self) -> impl ExactSizeIterator<Item = Mask<'a>> + DoubleEndedIterator + 'a {
        let mask_len = self.mask_len;
        (0..self.count).map(move |k| {
            let per_mask = words_for(mask_len);
            Mask {
                words: &self.words[k * per_mask..(k + 1) * per_mask],
                len: mask_len,
            }
        })
    }
}

/// `count` writable masks of `len` units each: the per-example sampler's output.
///
/// ```
/// use bitdrop::{KeepProb, MaskBatchMut, sample, words_for};
/// use rand_xoshiro::{Xoshiro256PlusPlus, rand_core::SeedableRng};
///
/// let (units, examples) = (100, 8);
/// let mut words = vec![0u64; words_for(units) * examples];
/// let mut masks = MaskBatchMut::new(&mut words, units, examples)?;
/// let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
/// sample::bernoulli_batch(&mut rng, KeepProb::new(0.5)?, &mut masks);
/// assert!(masks.as_batch().iter().all(|m| m.count_kept() > 20));
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct MaskBatchMut<'a> {
    words: &'a mut [u64],
    mask_len: usize,
    count: usize,
}

impl<'a> MaskBatchMut<'a> {
    /// Views `words` as `count` writable masks of `mask_len` units each.
    ///
    /// # Errors
    ///
    /// As [`MaskBatch::new`].
    ///
    /// ```
    /// assert!(bitdrop::MaskBatchMut::new(&mut [0, 0, 0], 1, 3).is_ok());
    /// ```
    pub fn new(
        words: &'a mut [u64],
        mask_len: usize,
        count: usize,
    ) -> Result<MaskBatchMut<'a>, Error> {
        check_batch_words(words, mask_len, count)?;
        Ok(MaskBatchMut {
            words,
            mask_len,
            count,
        })
    }

    /// A read-only view of all masks.
    ///
    /// ```
    /// let mut words = [0u64; 3];
    /// assert_eq!(bitdrop::MaskBatchMut::new(&mut words, 1, 3)?.as_batch().count(), 3);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn as_batch(&self) -> MaskBatch<'_> {
        MaskBatch {
            words: self.words,
            mask_len: self.mask_len,
            count: self.count,
        }
    }

    /// Mask `k` for writing, or `None` if `k >= count`.
    ///
    /// ```
    /// let mut words = [0u64; 2];
    /// let mut masks = bitdrop::MaskBatchMut::new(&mut words, 3, 2)?;
    /// masks.get_mut(1).unwrap().fill(true);
    /// assert_eq!(words, [0, 0b111]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn get_mut(&mut self, k: usize) -> Option<MaskMut<'_>> {
        if k >= self.count {
            return None;
        }
        let per_mask = words_for(self.mask_len);
        Some(MaskMut {
            words: &mut self.words[k * per_mask..(k + 1) * per_mask],
            len: self.mask_len,
        })
    }
}

/// The input mask of a mini-batch: one mask shared by every example, or one per example.
///
/// Only the [`reference`](crate::reference) functions take this; the fast kernels have one
/// function per case, because the two cases want different loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMask<'a> {
    /// One mask for the whole batch: one thinned network per step.
    Shared(Mask<'a>),
    /// Mask `k` drops units of example `k` (PyTorch's `nn.Dropout`).
    PerExample(MaskBatch<'a>),
}

impl<'a> BatchMask<'a> {
    /// Units per mask.
    ///
    /// ```
    /// use bitdrop::{BatchMask, Mask};
    /// assert_eq!(BatchMask::Shared(Mask::new(&[0], 9)?).mask_len(), 9);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn mask_len(self) -> usize {
        match self {
            BatchMask::Shared(mask) => mask.len(),
            BatchMask::PerExample(masks) => masks.mask_len(),
        }
    }

    /// The mask of example `k`, or `None` if a per-example batch has no mask `k`.
    ///
    /// ```
    /// use bitdrop::{BatchMask, Mask};
    /// let shared = BatchMask::Shared(Mask::new(&[1], 9)?);
    /// assert_eq!(shared.example(1000), Some(Mask::new(&[1], 9)?));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn example(self, k: usize) -> Option<Mask<'a>> {
        match self {
            BatchMask::Shared(mask) => Some(mask),
            BatchMask::PerExample(masks) => masks.get(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_bit_search() {
        assert_eq!(first_tail_bit(&[u64::MAX], 64), None);
        assert_eq!(first_tail_bit(&[u64::MAX], 63), Some(63));
        assert_eq!(first_tail_bit(&[0, 1 << 5], 70), None);
        assert_eq!(first_tail_bit(&[0, 1 << 5], 69), Some(69));
        assert_eq!(first_tail_bit(&[], 0), None);
    }

    #[test]
    fn valid_bits_cover_the_tail() {
        assert_eq!(valid_bits(0), 0);
        assert_eq!(valid_bits(1), 1);
        assert_eq!(valid_bits(63), u64::MAX >> 1);
        assert_eq!(valid_bits(64), u64::MAX);
        assert_eq!(valid_bits(1000), u64::MAX);
    }
}
