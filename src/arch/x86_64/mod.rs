//! x86_64: AVX2 with FMA, and AVX-512F.

pub(super) mod avx2;
pub(super) mod avx512;

/// AVX2 and FMA: detected at run time with `std`, else fixed by the target features.
pub(super) fn has_avx2() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx2", target_feature = "fma"))
    }
}

/// AVX-512F (the kernels use nothing beyond the foundation set).
pub(super) fn has_avx512() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx512f")
    }
}
