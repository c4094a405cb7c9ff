//! NEON lanes: 4 `f32` or 2 `f64`. NEON has no masked loads, so a chunk's mask bits
//! become a vector mask and dropped lanes are selected away (`vbsl`); all lanes of a
//! chunk lie inside the vector, so reading them is in bounds.

use core::arch::aarch64::*;

use crate::arch::lanes::Lanes;

/// Four `f32`.
#[derive(Clone, Copy)]
pub(crate) struct F32x4(float32x4_t);

/// Two `f64`.
#[derive(Clone, Copy)]
pub(crate) struct F64x2(float64x2_t);

// SAFETY (for every method below): the trait's contract gives NEON on this CPU and
// pointers valid for the stated elements; the intrinsics need nothing more.
impl Lanes for F32x4 {
    type Elem = f32;
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x4(vdupq_n_f32(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x4(vld1q_f32(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: see the impl.
        unsafe { vst1q_f32(p, self.0) }
    }
    type Mask = uint32x4_t;
    /// The group's 16 bits (and the ones above) in every 32-bit lane.
    type Group = uint32x4_t;

    #[inline(always)]
    unsafe fn group(word: u64, g: usize) -> uint32x4_t {
        // SAFETY: see the impl; g < 4.
        unsafe { vdupq_n_u32((word >> (16 * g)) as u32) }
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: uint32x4_t, k: usize) -> uint32x4_t {
        // Lane l tests bit 4k + l: a constant once `k` is known.
        let s = 4 * k;
        let lanes = [1u32 << s, 2 << s, 4 << s, 8 << s];
        // SAFETY: see the impl; `lanes` is four readable u32.
        unsafe {
            let lanes = vld1q_u32(lanes.as_ptr());
            vceqq_u32(vandq_u32(group, lanes), lanes)
        }
    }
    #[inline(always)]
    unsafe fn select(m: uint32x4_t, a: Self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x4(vbslq_f32(m, a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: see the impl. vfmaq(c, a, b) = c + a * b, fused.
        unsafe { F32x4(vfmaq_f32(c.0, self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x4(vmulq_f32(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x4(vaddq_f32(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        // SAFETY: see the impl.
        unsafe { vaddvq_f32(self.0) }
    }
}

impl Lanes for F64x2 {
    type Elem = f64;
    const LANES: usize = 2;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: see the F32x4 impl.
        unsafe { F64x2(vdupq_n_f64(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: see the F32x4 impl.
        unsafe { F64x2(vld1q_f64(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: see the F32x4 impl.
        unsafe { vst1q_f64(p, self.0) }
    }
    type Mask = uint64x2_t;
    /// The group's 8 bits (and the ones above) in both 64-bit lanes.
    type Group = uint64x2_t;

    #[inline(always)]
    unsafe fn group(word: u64, g: usize) -> uint64x2_t {
        // SAFETY: see the F32x4 impl; g < 8.
        unsafe { vdupq_n_u64(word >> (8 * g)) }
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: uint64x2_t, k: usize) -> uint64x2_t {
        let lanes = [1u64 << (2 * k), 2 << (2 * k)];
        // SAFETY: see the F32x4 impl; `lanes` is two readable u64.
        unsafe {
            let lanes = vld1q_u64(lanes.as_ptr());
            vceqq_u64(vandq_u64(group, lanes), lanes)
        }
    }
    #[inline(always)]
    unsafe fn select(m: uint64x2_t, a: Self, b: Self) -> Self {
        // SAFETY: see the F32x4 impl.
        unsafe { F64x2(vbslq_f64(m, a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: see the F32x4 impl.
        unsafe { F64x2(vfmaq_f64(c.0, self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: see the F32x4 impl.
        unsafe { F64x2(vmulq_f64(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the F32x4 impl.
        unsafe { F64x2(vaddq_f64(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn sum(self) -> f64 {
        // SAFETY: see the F32x4 impl.
        unsafe { vaddvq_f64(self.0) }
    }
}

simd_tables!("neon", F32x4, F64x2);
