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

simd_tables!("avx2,fma", F32x8, F64x4);
