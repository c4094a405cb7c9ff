//! AVX2 + FMA lanes: 8 `f32` or 4 `f64`. AVX2 has no mask registers, so a chunk's mask
//! bits become a vector mask (broadcast, AND with one bit per lane, compare).

use core::arch::x86_64::*;

use crate::arch::lanes::Lanes;

/// Eight `f32`.
#[derive(Clone, Copy)]
pub(crate) struct F32x8(__m256);

/// Four `f64`.
#[derive(Clone, Copy)]
pub(crate) struct F64x4(__m256d);

/// All ones in the 32-bit lanes whose bit of `bits` is set.
///
/// # Safety
///
/// The CPU has AVX2.
#[inline(always)]
unsafe fn lane_mask_32(bits: u64) -> __m256i {
    // SAFETY: AVX2 is present (the caller's contract).
    unsafe {
        let lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        let spread = _mm256_and_si256(_mm256_set1_epi32(bits as i32), lanes);
        _mm256_cmpeq_epi32(spread, lanes)
    }
}

/// All ones in the 64-bit lanes whose bit of `bits` is set.
///
/// # Safety
///
/// The CPU has AVX2.
#[inline(always)]
unsafe fn lane_mask_64(bits: u64) -> __m256i {
    // SAFETY: AVX2 is present (the caller's contract).
    unsafe {
        let lanes = _mm256_setr_epi64x(1, 2, 4, 8);
        let spread = _mm256_and_si256(_mm256_set1_epi64x(bits as i64), lanes);
        _mm256_cmpeq_epi64(spread, lanes)
    }
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
    #[inline(always)]
    unsafe fn select(bits: u64, a: Self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe {
            F32x8(_mm256_blendv_ps(
                b.0,
                a.0,
                _mm256_castsi256_ps(lane_mask_32(bits)),
            ))
        }
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
    unsafe fn load_masked(p: *const f32, bits: u64) -> Self {
        // SAFETY: see the impl; `maskload` does not touch the memory of cleared lanes.
        unsafe { F32x8(_mm256_maskload_ps(p, lane_mask_32(bits))) }
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
    #[inline(always)]
    unsafe fn select(bits: u64, a: Self, b: Self) -> Self {
        // SAFETY: see the F32x8 impl.
        unsafe {
            F64x4(_mm256_blendv_pd(
                b.0,
                a.0,
                _mm256_castsi256_pd(lane_mask_64(bits)),
            ))
        }
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
    unsafe fn load_masked(p: *const f64, bits: u64) -> Self {
        // SAFETY: see the F32x8 impl; `maskload` does not touch cleared lanes' memory.
        unsafe { F64x4(_mm256_maskload_pd(p, lane_mask_64(bits))) }
    }
}

simd_tables!("avx2,fma", F32x8, F64x4);
