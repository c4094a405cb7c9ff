//! x86_64: AVX2 with FMA, and AVX-512F; both levels with POPCNT (every CPU with AVX2 has
//! it): the batch path's gathers and scatters count each chunk's kept units, which
//! without it compiles to a dozen instructions where `popcnt` is one.

pub(super) mod avx2;
pub(super) mod avx512;

/// AVX2, FMA and POPCNT: detected at run time with `std`, else fixed by the target
/// features.
pub(super) fn has_avx2() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(
            target_feature = "avx2",
            target_feature = "fma",
            target_feature = "popcnt"
        ))
    }
}

/// AVX-512F and POPCNT (the vector kernels use nothing beyond the foundation set).
pub(super) fn has_avx512() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx512f", target_feature = "popcnt"))
    }
}
