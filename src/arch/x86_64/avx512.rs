//! AVX-512F lanes: 16 `f32` or 8 `f64`. A chunk's mask bits are the k-mask itself:
//! masked loads and stores do not touch the memory of dropped lanes at all.

use core::arch::x86_64::*;

// Named imports shadow the glob's intrinsics of the same names.
#[cfg(miri)]
use miri_stand_ins::{
    _mm512_mask_compress_pd, _mm512_mask_compress_ps, _mm512_mask_expand_pd, _mm512_mask_expand_ps,
    _mm512_maskz_expandloadu_pd, _mm512_maskz_expandloadu_ps,
};

use crate::arch::lanes::Lanes;

/// Sixteen `f32`.
#[derive(Clone, Copy)]
pub(crate) struct F32x16(__m512);

/// Eight `f64`.
#[derive(Clone, Copy)]
pub(crate) struct F64x8(__m512d);

// SAFETY (for every method below): the trait's contract gives AVX-512F on this CPU and
// pointers valid for the stated elements; the intrinsics need nothing more. Only the
// low 16 (8) bits of a mask are meaningful, as the truncating casts keep.
impl Lanes for F32x16 {
    type Elem = f32;
    const LANES: usize = 16;
    #[cfg(feature = "alloc")]
    const SPREADS: bool = true;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x16(_mm512_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x16(_mm512_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: see the impl.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    type Mask = __mmask16;
    /// Four chunks of 16 lanes: the whole word.
    type Group = u64;

    #[inline(always)]
    unsafe fn group(word: u64, _g: usize) -> u64 {
        word
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: u64, k: usize) -> __mmask16 {
        // The chunk's 16 bits are the k-mask.
        (group >> (16 * k)) as __mmask16
    }
    #[inline(always)]
    unsafe fn select(m: __mmask16, a: Self, b: Self) -> Self {
        // SAFETY: see the impl. `mask_blend` takes its second operand where k is set.
        unsafe { F32x16(_mm512_mask_blend_ps(m, b.0, a.0)) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x16(_mm512_fmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x16(_mm512_mul_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe { F32x16(_mm512_add_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        // SAFETY: see the impl.
        unsafe { _mm512_reduce_add_ps(self.0) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: __mmask16) -> Self {
        // SAFETY: see the impl; dropped lanes read as 0.0 without a memory access.
        unsafe { F32x16(_mm512_maskz_loadu_ps(m, p)) }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        // SAFETY: a prefetch is a hint that never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn expand_load(p: *const f32, bits: u64) -> Self {
        // SAFETY: see the impl; `expandloadu` reads exactly as many consecutive elements
        // as the mask has set bits.
        unsafe { F32x16(_mm512_maskz_expandloadu_ps(bits as __mmask16, p)) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn spread(self, bits: u64) -> Self {
        // SAFETY: see the impl. The clear lanes keep `self`'s values (merge-masking):
        // Zen 4 and 5 run a *zero*-masked expand or compress only after the last write
        // of its destination register, a false dependency that would chain each chunk
        // of a row to the one before (llvm/llvm-project#206849: 5x the time in a loop).
        unsafe { F32x16(_mm512_mask_expand_ps(self.0, bits as __mmask16, self.0)) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn compress(self, bits: u64) -> Self {
        // SAFETY: see the impl. The lanes above the kept ones keep `self`'s values, as
        // in `spread` and for the same reason.
        unsafe { F32x16(_mm512_mask_compress_ps(self.0, bits as __mmask16, self.0)) }
    }
}

impl Lanes for F64x8 {
    type Elem = f64;
    const LANES: usize = 8;
    #[cfg(feature = "alloc")]
    const SPREADS: bool = true;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_set1_pd(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_loadu_pd(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: see the F32x16 impl.
        unsafe { _mm512_storeu_pd(p, self.0) }
    }
    type Mask = __mmask8;
    /// Four chunks of 8 lanes: half the word.
    type Group = u64;

    #[inline(always)]
    unsafe fn group(word: u64, g: usize) -> u64 {
        word >> (32 * g)
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: u64, k: usize) -> __mmask8 {
        // The chunk's 8 bits are the k-mask.
        (group >> (8 * k)) as __mmask8
    }
    #[inline(always)]
    unsafe fn select(m: __mmask8, a: Self, b: Self) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_mask_blend_pd(m, b.0, a.0)) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_fmadd_pd(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_mul_pd(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_add_pd(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn sum(self) -> f64 {
        // SAFETY: see the F32x16 impl.
        unsafe { _mm512_reduce_add_pd(self.0) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f64, m: __mmask8) -> Self {
        // SAFETY: see the F32x16 impl; dropped lanes are not read.
        unsafe { F64x8(_mm512_maskz_loadu_pd(m, p)) }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        // SAFETY: a prefetch is a hint that never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn expand_load(p: *const f64, bits: u64) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_maskz_expandloadu_pd(bits as __mmask8, p)) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn spread(self, bits: u64) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_mask_expand_pd(self.0, bits as __mmask8, self.0)) }
    }
    #[cfg(feature = "alloc")]
    #[inline(always)]
    unsafe fn compress(self, bits: u64) -> Self {
        // SAFETY: see the F32x16 impl.
        unsafe { F64x8(_mm512_mask_compress_pd(self.0, bits as __mmask8, self.0)) }
    }
}

simd_tables!("avx512f,popcnt", F32x16, F64x8);

/// Miri interprets every AVX-512F intrinsic above but the expanding and compressing ones
/// (LLVM intrinsics it has no shim for). Under miri, built with `+avx512f`, these lane by
/// lane versions of Intel's definitions stand in for them, so that the rest of the level
/// (k-masked loads, blends, the kernels' pointer arithmetic) runs under miri's checks.
#[cfg(miri)]
mod miri_stand_ins {
    use core::arch::x86_64::*;

    /// Lane `i` takes the next value of `src` if bit `i` of `k` is set, else keeps
    /// `fill`'s.
    fn expand_lanes<T: Copy, const N: usize>(k: u32, src: &[T], fill: [T; N]) -> [T; N] {
        let mut out = fill;
        let mut next = src.iter();
        for (i, o) in out.iter_mut().enumerate() {
            if k >> i & 1 == 1 {
                *o = *next.next().expect("a value for each set bit");
            }
        }
        out
    }

    /// The lanes whose bit of `k` is set, in order, in the low lanes; the rest `fill`'s.
    fn compress_lanes<T: Copy, const N: usize>(k: u32, lanes: [T; N], fill: [T; N]) -> [T; N] {
        let mut out = fill;
        let kept = lanes.iter().enumerate().filter(|&(i, _)| k >> i & 1 == 1);
        for (o, (_, &x)) in out.iter_mut().zip(kept) {
            *o = x;
        }
        out
    }

    macro_rules! stand_ins {
        (
            $t:ty, $n:literal, $vec:ty, $mask:ty,
            $expandloadu:ident, $mask_expand:ident, $mask_compress:ident
        ) => {
            /// `maskz_expandloadu`: reads exactly `k.count_ones()` consecutive elements.
            ///
            /// # Safety
            ///
            /// `p` is valid for `k.count_ones()` reads.
            pub(super) unsafe fn $expandloadu(k: $mask, p: *const $t) -> $vec {
                // SAFETY: the caller's contract; `p` points into the kernels' slices of
                // elements, so it is aligned.
                let src = unsafe { core::slice::from_raw_parts(p, k.count_ones() as usize) };
                let lanes = expand_lanes(k.into(), src, [0.0; $n]);
                // SAFETY: a vector is its lanes, any bits.
                unsafe { core::mem::transmute::<[$t; $n], $vec>(lanes) }
            }

            /// `mask_expand`: the low lanes of `a`, in order, moved to the set bits; the
            /// other lanes `src`'s.
            ///
            /// # Safety
            ///
            /// None (unsafe as the intrinsic is).
            pub(super) unsafe fn $mask_expand(src: $vec, k: $mask, a: $vec) -> $vec {
                // SAFETY: a vector is its lanes, any bits.
                unsafe {
                    let src = core::mem::transmute::<$vec, [$t; $n]>(src);
                    let a = core::mem::transmute::<$vec, [$t; $n]>(a);
                    core::mem::transmute::<[$t; $n], $vec>(expand_lanes(k.into(), &a, src))
                }
            }

            /// `mask_compress`: the lanes of `a` whose bits are set, packed low; the other
            /// lanes `src`'s.
            ///
            /// # Safety
            ///
            /// None (unsafe as the intrinsic is).
            pub(super) unsafe fn $mask_compress(src: $vec, k: $mask, a: $vec) -> $vec {
                // SAFETY: a vector is its lanes, any bits.
                unsafe {
                    let src = core::mem::transmute::<$vec, [$t; $n]>(src);
                    let a = core::mem::transmute::<$vec, [$t; $n]>(a);
                    core::mem::transmute::<[$t; $n], $vec>(compress_lanes(k.into(), a, src))
                }
            }
        };
    }

    stand_ins!(
        f32,
        16,
        __m512,
        __mmask16,
        _mm512_maskz_expandloadu_ps,
        _mm512_mask_expand_ps,
        _mm512_mask_compress_ps
    );
    stand_ins!(
        f64,
        8,
        __m512d,
        __mmask8,
        _mm512_maskz_expandloadu_pd,
        _mm512_mask_expand_pd,
        _mm512_mask_compress_pd
    );
}
