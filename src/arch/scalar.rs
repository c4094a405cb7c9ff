//! The portable level: one element per "vector", plain arithmetic. This is the
//! microcontroller path and the one miri runs.

use super::Kernels;
use super::generic;
use super::lanes::Lanes;
use crate::Element;

/// One element.
#[derive(Clone, Copy)]
pub(crate) struct Scalar<T>(T);

impl<T: Element> Lanes for Scalar<T> {
    type Elem = T;
    const LANES: usize = 1;

    #[inline(always)]
    unsafe fn splat(x: T) -> Self {
        Scalar(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: the caller makes `p` valid for one read.
        Scalar(unsafe { *p })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        // SAFETY: the caller makes `p` valid for one write.
        unsafe { *p = self.0 }
    }
    type Mask = bool;
    type Group = u64;

    #[inline(always)]
    unsafe fn group(word: u64, g: usize) -> u64 {
        word >> (4 * g)
    }
    #[inline(always)]
    unsafe fn chunk_mask(group: u64, k: usize) -> bool {
        (group >> k) & 1 != 0
    }
    #[inline(always)]
    unsafe fn select(m: bool, a: Self, b: Self) -> Self {
        if m { a } else { b }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // `mul_add` is std-only; two roundings are within the documented bound.
        Scalar(self.0 * b.0 + c.0)
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        Scalar(self.0 * b.0)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        Scalar(self.0 + b.0)
    }
    #[inline(always)]
    unsafe fn sum(self) -> T {
        self.0
    }
}

macro_rules! scalar_table {
    ($name:ident, $t:ty) => {
        pub(crate) static $name: Kernels<$t> = Kernels {
            ger: generic::ger::<Scalar<$t>>,
            gemv: generic::gemv::<Scalar<$t>>,
            gemm: generic::gemm::<Scalar<$t>>,
            #[cfg(feature = "alloc")]
            expand: generic::expand::<Scalar<$t>>,
            #[cfg(feature = "alloc")]
            compress: generic::compress::<Scalar<$t>>,
        };
    };
}

scalar_table!(F32, f32);
scalar_table!(F64, f64);
