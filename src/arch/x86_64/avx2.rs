//! AVX2 + FMA lanes: 8 `f32` or 4 `f64`. AVX2 has no mask registers, so a chunk's mask
//! bits become a vector mask: for a blend, each lane shifts its own bit of the broadcast
//! mask word into its sign bit, which is all that `vblendvps` reads; for an AND, an
//! `f32` chunk's whole-lane mask comes from a table.

use core::arch::x86_64::*;

use crate::arch::lanes::Lanes;

/// Eight `f32`.
#[derive(Clone, Copy)]
pub(crate) struct F32x8(__m256);

/// Four `f64`.
#[derive(Clone, Copy)]
pub(crate) struct F64x4(__m256d);

/// An `f32` chunk's mask in the two forms its users read: `sign`, bit `l` of the chunk
/// in lane `l`'s sign bit (all that a blend reads), and the chunk's `bits`, for the
/// table of whole-lane masks that an AND needs. Each user reads one form and LLVM drops
/// the other's instructions. Measured at 1024x1024, keep 0.5, against the dense kernels
/// (interleaved): on a Zen 1 host the row-major dot products ran 1.62-1.76x computing
/// whole-lane masks (a second shift per chunk, beside the four FMAs on the same two
/// pipes) and 1.27-1.31x with the table, while the row-major updates, which blend, ran
/// 1.17-1.21x on the sign bits and 1.19-1.25x with the table.
#[derive(Clone, Copy)]
pub(crate) struct Mask32 {
    sign: __m256,
    bits: u64,
}

/// Four `f32` chunks' worth of mask bits: broadcast to every lane (for the shifts of
/// [`Mask32::sign`]) and as they are (for its `bits`).
#[derive(Clone, Copy)]
pub(crate) struct Group32 {
    lanes: __m256i,
    word: u64,
}

/// The lane masks of every 8-bit chunk: entry `b` is all ones in lane `l` when bit `l`
/// of `b` is set. Where whole-lane masks are needed (the AND of a masked load, and the
/// batch path's expands, whose chunks each have their own bits with no group to
/// broadcast), they are looked up here; a blend reads only sign bits, which one variable
/// shift per chunk computes (see [`Mask32`]).
#[repr(align(32))]
struct LaneMasks32([[u32; 8]; 256]);

static LANE_MASKS_32: LaneMasks32 = LaneMasks32({
    let mut table = [[0; 8]; 256];
    let mut b = 0;
    while b < 256 {
        let mut l = 0;
        while l < 8 {
            if (b >> l) & 1 == 1 {
                table[b][l] = u32::MAX;
            }
            l += 1;
        }
        b += 1;
    }
    table
});

/// As [`LANE_MASKS_32`], for the 4-bit chunks of 64-bit lanes.
#[cfg(feature = "alloc")]
#[repr(align(32))]
struct LaneMasks64([[u64; 4]; 16]);

#[cfg(feature = "alloc")]
static LANE_MASKS_64: LaneMasks64 = LaneMasks64({
    let mut table = [[0; 4]; 16];
    let mut b = 0;
    while b < 16 {
        let mut l = 0;
        while l < 4 {
            if (b >> l) & 1 == 1 {
                table[b][l] = u64::MAX;
            }
            l += 1;
        }
        b += 1;
    }
    table
});

/// All ones in the 32-bit lanes whose bit of `bits` is set (low 8 bits).
///
/// # Safety
///
/// The CPU has AVX.
#[inline(always)]
unsafe fn lane_mask_32(bits: u64) -> __m256i {
    let masks = &LANE_MASKS_32.0[(bits & 0xff) as usize];
    // SAFETY: the entry is 32 bytes, 32-byte aligned; AVX is present (the caller).
    unsafe { _mm256_load_si256(masks.as_ptr().cast()) }
}

/// All ones in the 64-bit lanes whose bit of `bits` is set (low 4 bits).
///
/// # Safety
///
/// The CPU has AVX.
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn lane_mask_64(bits: u64) -> __m256i {
    let masks = &LANE_MASKS_64.0[(bits & 0xf) as usize];
    // SAFETY: the entry is 32 bytes, 32-byte aligned; AVX is present (the caller).
    unsafe { _mm256_load_si256(masks.as_ptr().cast()) }
}

/// Hides a vector from the optimiser. LLVM folds "load, blend with the loaded value,
/// store to the same address" into `vmaskmovps`/`vmaskmovpd` stores, which AMD CPUs run
/// microcoded (the masked axpy ran 2.3x slower than the dense one with them); behind an
/// empty `asm!` the blend and a plain store stay. Miri runs no `asm!`, and the asm has no
/// effect on values, so under miri the macro is nothing.
#[cfg(not(miri))]
macro_rules! opaque {
    ($v:ident) => {
        core::arch::asm!(
            "/* {0} */",
            inout(ymm_reg) $v,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
}
#[cfg(miri)]
macro_rules! opaque {
    ($v:ident) => {
        let _ = &mut $v;
    };
}

#[cfg(feature = "alloc")]
/// For each 8-bit lane mask: byte `lane` is the index, among the set lanes, of the element
/// that lane `lane` receives in an expand (0 for a clear lane).
static EXPAND_32: [u64; 256] = expand_table(8, 1);
#[cfg(feature = "alloc")]
/// The same for 4 `f64` lanes, as pairs of 32-bit indices (`2s`, `2s + 1`).
static EXPAND_64: [u64; 16] = {
    let wide = expand_table(4, 2);
    let mut t = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = wide[i];
        i += 1;
    }
    t
};

#[cfg(feature = "alloc")]
/// For each 8-bit lane mask: byte `q` is the lane of the `q`-th set bit (a compress).
static COMPRESS_32: [u64; 256] = compress_table(8, 1);
#[cfg(feature = "alloc")]
/// The same for 4 `f64` lanes, as pairs of 32-bit indices.
static COMPRESS_64: [u64; 16] = {
    let wide = compress_table(4, 2);
    let mut t = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = wide[i];
        i += 1;
    }
    t
};

#[cfg(feature = "alloc")]
/// The compress permutations of `lanes` lanes of `width` 32-bit halves each.
const fn compress_table(lanes: usize, width: usize) -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut bits = 0;
    while bits < (1 << lanes) {
        let mut q = 0;
        let mut lane = 0;
        let mut v = 0u64;
        while lane < lanes {
            if bits >> lane & 1 != 0 {
                let mut h = 0;
                while h < width {
                    v |= ((width * lane + h) as u64) << (8 * (width * q + h));
                    h += 1;
                }
                q += 1;
            }
            lane += 1;
        }
        t[bits] = v;
        bits += 1;
    }
    t
}

#[cfg(feature = "alloc")]
/// The expand permutations of `lanes` lanes of `width` 32-bit halves each.
const fn expand_table(lanes: usize, width: usize) -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut bits = 0;
    while bits < (1 << lanes) {
        let mut k = 0;
        let mut lane = 0;
        let mut v = 0u64;
        while lane < lanes {
            if bits >> lane & 1 != 0 {
                let mut h = 0;
                while h < width {
                    v |= ((width * k + h) as u64) << (8 * (width * lane + h));
                    h += 1;
                }
                k += 1;
            }
            lane += 1;
        }
        t[bits] = v;
        bits += 1;
    }
    t
}

#[cfg(feature = "alloc")]
/// The 32-bit lane indices of byte table entry `entry`, as a permutation vector.
///
/// # Safety
///
/// The CPU has AVX2.
#[inline(always)]
unsafe fn permutation(entry: u64) -> __m256i {
    // SAFETY: AVX2 is present (the caller's contract).
    unsafe { _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(entry as i64)) }
}

// SAFETY (for every method below): the trait's contract gives AVX2 and FMA on this CPU
// and pointers valid for the stated elements; the intrinsics need nothing more.
impl Lanes for F32x8 {
    type Elem = f32;
    const LANES: usize = 8;
    #[cfg(feature = "alloc")]
    const SPREADS: bool = true;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x8(_mm256_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x8(_mm256_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: see the impl.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    type Mask = Mask32;
    type Group = Group32;

    #[inline(always)]
    unsafe fn group(word: u64, g: usize) -> Group32 {
        let word = (word >> (32 * g)) & 0xffff_ffff;
        // SAFETY: see the impl.
        let lanes = unsafe { _mm256_set1_epi32(word as u32 as i32) };
        Group32 { lanes, word }
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: Group32, k: usize) -> Mask32 {
        // Lane l shifts bit 8k + l of the group into its sign bit. `k` is a constant in
        // the unrolled loops, so the shift counts are four constant vectors.
        let top = 31 - 8 * k as i32;
        // SAFETY: see the impl; every count is in 0..32 since k < 4.
        let sign = unsafe {
            let counts = _mm256_setr_epi32(
                top,
                top - 1,
                top - 2,
                top - 3,
                top - 4,
                top - 5,
                top - 6,
                top - 7,
            );
            _mm256_castsi256_ps(_mm256_sllv_epi32(group.lanes, counts))
        };
        Mask32 {
            sign,
            bits: (group.word >> (8 * k)) & 0xff,
        }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn lane_mask(bits: u64) -> Mask32 {
        let bits = bits & 0xff;
        // SAFETY: see the impl. A whole-lane mask has the sign bits a blend reads.
        let sign = unsafe { _mm256_castsi256_ps(lane_mask_32(bits)) };
        Mask32 { sign, bits }
    }
    #[inline(always)]
    unsafe fn select(m: Mask32, a: Self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x8(_mm256_blendv_ps(b.0, a.0, m.sign)) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x8(_mm256_fmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x8(_mm256_mul_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x8(_mm256_add_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        // SAFETY: see the impl.
        unsafe {
            let four = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps(self.0, 1),
            );
            let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
            _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)))
        }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: Mask32) -> Self {
        // SAFETY: see the impl. The table's lanes are all ones or all zeros, so the AND
        // keeps a lane's bits or makes it +0.0.
        unsafe {
            F32x8(_mm256_and_ps(
                _mm256_loadu_ps(p),
                _mm256_castsi256_ps(lane_mask_32(m.bits)),
            ))
        }
    }
    // `asm!` with a ymm register needs the feature on this very function; a caller with
    // it (every wrapper of this level) inlines it all the same.
    #[target_feature(enable = "avx")]
    #[inline]
    unsafe fn store_select(self, m: Mask32, old: Self, p: *mut f32) {
        // SAFETY: see the impl; the asm is empty and only names the register.
        unsafe {
            let mut v = _mm256_blendv_ps(old.0, self.0, m.sign);
            opaque!(v);
            _mm256_storeu_ps(p, v)
        }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        // SAFETY: a prefetch is a hint that never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn expand_load(p: *const f32, bits: u64) -> Self {
        let bits = bits & 0xff;
        let count = bits.count_ones();
        // SAFETY: see the impl; `maskload` reads only the first `count` elements, which
        // the caller made readable, and the permutation moves element k to the k-th set
        // lane; clear lanes are then zeroed.
        unsafe { F32x8(_mm256_maskload_ps(p, lane_mask_32((1u64 << count) - 1))).expand(bits) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn expand(self, bits: u64) -> Self {
        let bits = bits & 0xff;
        // SAFETY: see the impl. The permutation moves lane k to the k-th set lane; clear
        // lanes are then zeroed.
        unsafe {
            let spread = _mm256_permutevar8x32_ps(self.0, permutation(EXPAND_32[bits as usize]));
            F32x8(_mm256_and_ps(
                spread,
                _mm256_castsi256_ps(lane_mask_32(bits)),
            ))
        }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn spread(self, bits: u64) -> Self {
        // SAFETY: see the impl. The permutation alone: clear lanes keep whatever it moves
        // there.
        unsafe {
            F32x8(_mm256_permutevar8x32_ps(
                self.0,
                permutation(EXPAND_32[(bits & 0xff) as usize]),
            ))
        }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn compress(self, bits: u64) -> Self {
        // SAFETY: see the impl.
        unsafe {
            let idx = permutation(COMPRESS_32[(bits & 0xff) as usize]);
            F32x8(_mm256_permutevar8x32_ps(self.0, idx))
        }
    }
}

impl Lanes for F64x4 {
    type Elem = f64;
    const LANES: usize = 4;
    #[cfg(feature = "alloc")]
    const SPREADS: bool = true;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: see the F32x8 impl.
        unsafe { F64x4(_mm256_set1_pd(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: see the F32x8 impl.
        unsafe { F64x4(_mm256_loadu_pd(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: see the F32x8 impl.
        unsafe { _mm256_storeu_pd(p, self.0) }
    }
    type Mask = __m256d;
    /// The group's 16 bits in every lane.
    type Group = __m256i;

    #[inline(always)]
    unsafe fn group(word: u64, g: usize) -> __m256i {
        // SAFETY: see the F32x8 impl.
        unsafe { _mm256_set1_epi64x((word >> (16 * g)) as i64) }
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: __m256i, k: usize) -> __m256d {
        // As for F32x8: bit 4k + l into lane l's sign bit. AVX2 has no 64-bit arithmetic
        // shift, so the lane is compared with zero (a set sign bit is negative).
        let top = 63 - 4 * k as i64;
        // SAFETY: see the F32x8 impl; every count is in 0..64 since k < 4.
        unsafe {
            let counts = _mm256_setr_epi64x(top, top - 1, top - 2, top - 3);
            let bit = _mm256_sllv_epi64(group, counts);
            _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_setzero_si256(), bit))
        }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn lane_mask(bits: u64) -> __m256d {
        // SAFETY: see the F32x8 impl.
        unsafe { _mm256_castsi256_pd(lane_mask_64(bits)) }
    }
    #[inline(always)]
    unsafe fn select(m: __m256d, a: Self, b: Self) -> Self {
        // SAFETY: see the F32x8 impl.
        unsafe { F64x4(_mm256_blendv_pd(b.0, a.0, m)) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: see the F32x8 impl.
        unsafe { F64x4(_mm256_fmadd_pd(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: see the F32x8 impl.
        unsafe { F64x4(_mm256_mul_pd(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the F32x8 impl.
        unsafe { F64x4(_mm256_add_pd(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn sum(self) -> f64 {
        // SAFETY: see the F32x8 impl.
        unsafe {
            let two = _mm_add_pd(
                _mm256_castpd256_pd128(self.0),
                _mm256_extractf128_pd(self.0, 1),
            );
            _mm_cvtsd_f64(_mm_add_sd(two, _mm_unpackhi_pd(two, two)))
        }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f64, m: __m256d) -> Self {
        // SAFETY: see the F32x8 impl; the AND keeps a lane or makes it +0.0.
        unsafe { F64x4(_mm256_and_pd(_mm256_loadu_pd(p), m)) }
    }
    // `asm!` with a ymm register needs the feature on this very function; a caller with
    // it (every wrapper of this level) inlines it all the same.
    #[target_feature(enable = "avx")]
    #[inline]
    unsafe fn store_select(self, m: __m256d, old: Self, p: *mut f64) {
        // SAFETY: see the F32x8 impl.
        unsafe {
            let mut v = _mm256_blendv_pd(old.0, self.0, m);
            opaque!(v);
            _mm256_storeu_pd(p, v)
        }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        // SAFETY: a prefetch is a hint that never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn expand_load(p: *const f64, bits: u64) -> Self {
        let bits = bits & 0xf;
        let count = bits.count_ones();
        // SAFETY: as for F32x8, on 64-bit lanes moved as pairs of 32-bit halves.
        unsafe { F64x4(_mm256_maskload_pd(p, lane_mask_64((1u64 << count) - 1))).expand(bits) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn expand(self, bits: u64) -> Self {
        let bits = bits & 0xf;
        // SAFETY: as for F32x8, on 64-bit lanes moved as pairs of 32-bit halves.
        unsafe {
            let idx = permutation(EXPAND_64[bits as usize]);
            let spread = _mm256_permutevar8x32_ps(_mm256_castpd_ps(self.0), idx);
            let spread = _mm256_castps_pd(spread);
            F64x4(_mm256_and_pd(
                spread,
                _mm256_castsi256_pd(lane_mask_64(bits)),
            ))
        }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn spread(self, bits: u64) -> Self {
        // SAFETY: as for F32x8, on 64-bit lanes moved as pairs of 32-bit halves.
        unsafe {
            let idx = permutation(EXPAND_64[(bits & 0xf) as usize]);
            F64x4(_mm256_castps_pd(_mm256_permutevar8x32_ps(
                _mm256_castpd_ps(self.0),
                idx,
            )))
        }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn compress(self, bits: u64) -> Self {
        // SAFETY: see the impl; 64-bit lanes move as pairs of 32-bit halves.
        unsafe {
            let idx = permutation(COMPRESS_64[(bits & 0xf) as usize]);
            F64x4(_mm256_castps_pd(_mm256_permutevar8x32_ps(
                _mm256_castpd_ps(self.0),
                idx,
            )))
        }
    }
}

simd_tables!("avx2,fma,popcnt", F32x8, F64x4);
