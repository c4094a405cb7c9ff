//! AVX2 + FMA lanes: 8 `f32` or 4 `f64`. AVX2 has no mask registers, so a chunk's mask
//! bits become a vector mask, looked up in a table of all 256 (16) of them.

use core::arch::x86_64::*;

use crate::arch::lanes::Lanes;

/// Eight `f32`.
#[derive(Clone, Copy)]
pub(crate) struct F32x8(__m256);

/// Four `f64`.
#[derive(Clone, Copy)]
pub(crate) struct F64x4(__m256d);

/// The lane masks of every 8-bit chunk: entry `b` is all ones in lane `l` when bit `l`
/// of `b` is set. A chunk's mask is then one load (8 KiB of table, hot in L1) instead
/// of a broadcast, an AND and a compare against per-chunk constants, which would hold
/// registers the blocked kernels need for their accumulators.
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
#[repr(align(32))]
struct LaneMasks64([[u64; 4]; 16]);

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

/// Hides a vector from the optimiser. LLVM folds "load, blend with the loaded value,
/// store to the same address" into `vmaskmovps`/`vmaskmovpd` stores, which AMD CPUs run
/// microcoded (the masked axpy ran 2.3x slower than the dense one with them); behind an
/// empty `asm!` the blend and a plain store stay.
macro_rules! opaque {
    ($v:ident) => {
        core::arch::asm!(
            "/* {0} */",
            inout(ymm_reg) $v,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
}

// SAFETY (for every method below): the trait's contract gives AVX2 and FMA on this CPU
// and pointers valid for the stated elements; the intrinsics need nothing more.
impl Lanes for F32x8 {
    type Elem = f32;
    const LANES: usize = 8;

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
    type Mask = __m256;
    /// The group's 32 bits, low in the word.
    type Group = u64;

    #[inline(always)]
    unsafe fn group(word: u64, g: usize) -> u64 {
        word >> (32 * g)
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: u64, k: usize) -> __m256 {
        let masks = &LANE_MASKS_32.0[((group >> (8 * k)) & 0xff) as usize];
        // SAFETY: see the impl; the entry is 32 bytes, 32-byte aligned.
        unsafe { _mm256_load_ps(masks.as_ptr().cast()) }
    }
    #[inline(always)]
    unsafe fn select(m: __m256, a: Self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x8(_mm256_blendv_ps(b.0, a.0, m)) }
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
    unsafe fn load_masked(p: *const f32, m: __m256) -> Self {
        // SAFETY: see the impl. The mask's lanes are all ones or all zeros, so the AND
        // keeps a lane's bits or makes it +0.0.
        unsafe { F32x8(_mm256_and_ps(_mm256_loadu_ps(p), m)) }
    }
    // `asm!` with a ymm register needs the feature on this very function; a caller with
    // it (every wrapper of this level) inlines it all the same.
    #[target_feature(enable = "avx")]
    #[inline]
    unsafe fn store_select(self, m: __m256, old: Self, p: *mut f32) {
        // SAFETY: see the impl; the asm is empty and only names the register.
        unsafe {
            let mut v = _mm256_blendv_ps(old.0, self.0, m);
            opaque!(v);
            _mm256_storeu_ps(p, v)
        }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        // SAFETY: a prefetch is a hint that never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
}

impl Lanes for F64x4 {
    type Elem = f64;
    const LANES: usize = 4;

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
    /// The group's 16 bits, low in the word.
    type Group = u64;

    #[inline(always)]
    unsafe fn group(word: u64, g: usize) -> u64 {
        word >> (16 * g)
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: u64, k: usize) -> __m256d {
        let masks = &LANE_MASKS_64.0[((group >> (4 * k)) & 0xf) as usize];
        // SAFETY: see the F32x8 impl; the entry is 32 bytes, 32-byte aligned.
        unsafe { _mm256_load_pd(masks.as_ptr().cast()) }
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
}

simd_tables!("avx2,fma", F32x8, F64x4);
