//! The floating-point types the kernels run on.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

mod sealed {
    use crate::arch::Kernels;

    pub trait Sealed: Sized + 'static {
        /// The kernel table for this type on this CPU.
        fn kernels() -> &'static Kernels<Self>;
        /// matrixmultiply's GEMM for this type.
        #[cfg(feature = "alloc")]
        fn mm_gemm() -> crate::arch::mm::RawGemm<Self>;
    }

    impl Sealed for f32 {
        #[inline]
        fn kernels() -> &'static Kernels<f32> {
            crate::arch::kernels_f32()
        }
        #[cfg(feature = "alloc")]
        #[inline]
        fn mm_gemm() -> crate::arch::mm::RawGemm<f32> {
            crate::arch::mm::SGEMM
        }
    }

    impl Sealed for f64 {
        #[inline]
        fn kernels() -> &'static Kernels<f64> {
            crate::arch::kernels_f64()
        }
        #[cfg(feature = "alloc")]
        #[inline]
        fn mm_gemm() -> crate::arch::mm::RawGemm<f64> {
            crate::arch::mm::DGEMM
        }
    }
}

/// An element type of the kernels: `f32` or `f64`.
///
/// The trait is sealed: the SIMD kernels exist for exactly these two types.
///
/// ```
/// use bitdrop::Element;
///
/// fn half<T: Element>(x: T) -> T {
///     x * T::from_f64(0.5)
/// }
/// assert_eq!(half(3.0f32), 1.5);
/// assert_eq!(half(3.0f64), 1.5);
/// ```
pub trait Element:
    sealed::Sealed
    + Copy
    + Default
    + Debug
    + Display
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// `0.0`.
    const ZERO: Self;
    /// `1.0`.
    const ONE: Self;
    /// The machine epsilon: the gap between 1 and the next larger value.
    const EPSILON: Self;

    /// Rounds an `f64` to this type (`as` conversion).
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// The absolute value.
    fn abs(self) -> Self;
    /// The raw bits, widened to `u64`: for bitwise comparisons of NaN payloads.
    fn to_bits_u64(self) -> u64;
}

macro_rules! impl_element {
    ($t:ty) => {
        impl Element for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = <$t>::EPSILON;

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn to_bits_u64(self) -> u64 {
                self.to_bits() as u64
            }
        }
    };
}

impl_element!(f32);
impl_element!(f64);
