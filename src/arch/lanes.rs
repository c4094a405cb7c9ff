//! The one abstraction the generic kernels are written against: a vector of floats.

use crate::Element;

/// A vector of `LANES` elements of one float type, on one instruction set.
///
/// Masks come straight from the dropout mask's bits: bit `b` of `bits` is lane `b`, only
/// the low `LANES` bits are meaningful, and a clear bit means "dropped".
///
/// # Safety
///
/// Every method may execute instructions of the implementor's CPU feature, so every
/// caller must have proven that feature present (the level's wrapper functions carry
/// `#[target_feature]`, and the dispatch only hands them out after detection). Pointer
/// arguments must be valid for reads (or writes) of `LANES` consecutive elements.
pub(crate) trait Lanes: Copy {
    /// The element type.
    type Elem: Element;
    /// Elements per vector: a power of two that divides 64.
    const LANES: usize;
    /// The low `LANES` bits: a chunk with every lane kept.
    const ALL: u64 = if Self::LANES == 64 {
        u64::MAX
    } else {
        (1 << Self::LANES) - 1
    };

    /// Every lane `x`.
    ///
    /// # Safety
    ///
    /// The CPU has the implementor's feature.
    unsafe fn splat(x: Self::Elem) -> Self;

    /// Loads `LANES` elements.
    ///
    /// # Safety
    ///
    /// The CPU has the feature; `p` is valid for `LANES` reads.
    unsafe fn load(p: *const Self::Elem) -> Self;

    /// Stores `LANES` elements.
    ///
    /// # Safety
    ///
    /// The CPU has the feature; `p` is valid for `LANES` writes.
    unsafe fn store(self, p: *mut Self::Elem);

    /// A chunk's mask in the instruction set's own form (a k-mask, a vector of lane
    /// masks, a flag), decoded once and used by every masked operation on the chunk.
    type Mask: Copy;

    /// Four chunks' worth of a mask word (`4 · LANES` bits) prepared for decoding chunk
    /// by chunk: broadcast into a vector once, say, so that each chunk's mask is a test
    /// against constant lane bits.
    type Group: Copy;

    /// Prepares group `g` of `word`: bits `4 · LANES · g ..` of it.
    ///
    /// # Safety
    ///
    /// The CPU has the feature; `g < 16 / LANES`.
    unsafe fn group(word: u64, g: usize) -> Self::Group;

    /// The mask of chunk `k` of a prepared group: lane `b` kept when bit
    /// `k · LANES + b` of the group is set.
    ///
    /// # Safety
    ///
    /// The CPU has the feature; `k < 4`.
    unsafe fn chunk_mask(group: Self::Group, k: usize) -> Self::Mask;

    /// The mask of one chunk's bits (the low `LANES` of `bits`), for loops that take
    /// each chunk on its own rather than a word four chunks at a time.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn lane_mask(bits: u64) -> Self::Mask {
        // SAFETY: the caller's contract; group 0 exists for every LANES.
        unsafe { Self::chunk_mask(Self::group(bits, 0), 0) }
    }

    /// Lane by lane: `a` where `m` keeps the lane, else `b`, bit for bit.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    unsafe fn select(m: Self::Mask, a: Self, b: Self) -> Self;

    /// `self * b + c`, fused where the instruction set has it.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;

    /// `self * b`.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    unsafe fn mul(self, b: Self) -> Self;

    /// `self + b`.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    unsafe fn add(self, b: Self) -> Self;

    /// The sum of the lanes.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    unsafe fn sum(self) -> Self::Elem;

    /// Loads the lanes `m` keeps; the others are 0.0, whatever memory holds there (a
    /// NaN in a dropped lane cannot leak).
    ///
    /// # Safety
    ///
    /// The CPU has the feature; `p` is valid for `LANES` reads.
    #[inline(always)]
    unsafe fn load_masked(p: *const Self::Elem, m: Self::Mask) -> Self {
        // SAFETY: the caller's contract is ours.
        unsafe { Self::select(m, Self::load(p), Self::splat(Self::Elem::ZERO)) }
    }

    /// Loads `bits.count_ones()` consecutive elements from `p` into the lanes whose bit is
    /// set, in order (the first into the lowest set lane); the other lanes are 0.0.
    /// Memory past those elements is not touched.
    ///
    /// # Safety
    ///
    /// The CPU has the feature; `p` is valid for `bits.count_ones()` reads (only the low
    /// `LANES` bits count).
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn expand_load(p: *const Self::Elem, bits: u64) -> Self {
        let mut buf = [Self::Elem::ZERO; 64];
        let mut k = 0;
        for (lane, slot) in buf.iter_mut().enumerate().take(Self::LANES) {
            if bits >> lane & 1 != 0 {
                // SAFETY: k < the number of set low bits, which the caller made readable.
                *slot = unsafe { *p.add(k) };
                k += 1;
            }
        }
        // SAFETY: `buf` holds 64 >= LANES elements.
        unsafe { Self::load(buf.as_ptr()) }
    }

    /// The low lanes of `self` moved into the lanes whose bit is set, in order (lane 0 to
    /// the lowest set lane); the other lanes are 0.0. `expand_load` on a register.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    #[cfg(feature = "alloc")]
    // Called by AVX2's `expand_load`; the levels that spread override `spread`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline(always)]
    unsafe fn expand(self, bits: u64) -> Self {
        let mut buf = [Self::Elem::ZERO; 64];
        // SAFETY: `buf` holds 64 >= LANES elements; the expand reads at most LANES.
        unsafe {
            self.store(buf.as_mut_ptr());
            Self::expand_load(buf.as_ptr(), bits)
        }
    }

    /// Whether [`Lanes::spread`] is a register operation (a permutation), so that a plain
    /// load and a spread beat [`Lanes::expand_load`]. The defaults go through memory.
    #[cfg(feature = "alloc")]
    const SPREADS: bool = false;

    /// [`Lanes::expand`], except that the lanes whose bit is clear hold unspecified
    /// values: for callers that select those lanes away anyway.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn spread(self, bits: u64) -> Self {
        // SAFETY: the caller's contract.
        unsafe { self.expand(bits) }
    }

    /// The lanes whose bit is set moved to the low lanes, in order (the lowest set lane
    /// to lane 0); the lanes above them hold unspecified values. The inverse of `expand`.
    ///
    /// # Safety
    ///
    /// The CPU has the feature.
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn compress(self, bits: u64) -> Self {
        let mut buf = [Self::Elem::ZERO; 64];
        let mut out = [Self::Elem::ZERO; 64];
        let mut k = 0;
        // SAFETY: `buf` and `out` hold 64 >= LANES elements.
        unsafe {
            self.store(buf.as_mut_ptr());
            for (lane, &v) in buf.iter().enumerate().take(Self::LANES) {
                if bits >> lane & 1 != 0 {
                    out[k] = v;
                    k += 1;
                }
            }
            Self::load(out.as_ptr())
        }
    }

    /// Stores `self` in the lanes `m` keeps and `old` (the memory's own bits, loaded
    /// before) in the others.
    ///
    /// # Safety
    ///
    /// The CPU has the feature; `p` is valid for `LANES` writes.
    #[inline(always)]
    unsafe fn store_select(self, m: Self::Mask, old: Self, p: *mut Self::Elem) {
        // SAFETY: the caller's contract is ours.
        unsafe { Self::select(m, self, old).store(p) }
    }

    /// A hint to bring the cache line of `p` closer; nothing where the instruction set
    /// has no such hint.
    ///
    /// # Safety
    ///
    /// The CPU has the feature (`p` need not be valid: a prefetch does not fault).
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        let _ = p;
    }
}
