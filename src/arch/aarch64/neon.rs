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

const LANE_BITS_32: [u32; 4] = [1, 2, 4, 8];
const LANE_BITS_64: [u64; 2] = [1, 2];

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
    #[inline(always)]
    unsafe fn select(bits: u64, a: Self, b: Self) -> Self {
        // SAFETY: see the impl; LANE_BITS_32 is four readable u32.
        unsafe {
            let lanes = vld1q_u32(LANE_BITS_32.as_ptr());
            let mask = vceqq_u32(vandq_u32(vdupq_n_u32(bits as u32), lanes), lanes);
            F32x4(vbslq_f32(mask, a.0, b.0))
        }
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
    #[inline(always)]
    unsafe fn select(bits: u64, a: Self, b: Self) -> Self {
        // SAFETY: see the F32x4 impl; LANE_BITS_64 is two readable u64.
        unsafe {
            let lanes = vld1q_u64(LANE_BITS_64.as_ptr());
            let mask = vceqq_u64(vandq_u64(vdupq_n_u64(bits), lanes), lanes);
            F64x2(vbslq_f64(mask, a.0, b.0))
        }
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
