//! Instruction-set levels: which kernels run, and how to choose them.

use core::fmt;
use core::str::FromStr;

use crate::Error;

/// An instruction-set level of the kernels.
///
/// Every kernel exists once, generic over a vector type, and is compiled for each level
/// of the target (see [`Level::compiled`]). With the `std` feature the best level the CPU
/// has is detected once, at the first kernel call, and cached; the environment variable
/// `BITDROP_FORCE` (`scalar`, `avx2`, `avx512` or `neon`) read at that moment overrides
/// the choice when the CPU has that level. Without `std` the level is fixed at compile
/// time by the enabled target features: AVX2 needs `avx2`, `fma` and `popcnt`
/// (`-C target-cpu=x86-64-v3` has them), AVX-512 `avx512f` and `popcnt`
/// (`x86-64-v4`).
///
/// ```
/// use bitdrop::Level;
///
/// assert!(Level::Scalar.is_available());
/// assert!(Level::current().is_available());
/// assert_eq!("avx512".parse::<Level>(), Ok(Level::Avx512));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Level {
    /// Portable code, one element at a time: microcontrollers, miri, any target.
    Scalar,
    /// x86_64 AVX2 with FMA (and POPCNT): 8 `f32` or 4 `f64` per vector.
    Avx2,
    /// x86_64 AVX-512F (and POPCNT): 16 `f32` or 8 `f64` per vector; mask bits are
    /// k-masks.
    Avx512,
    /// aarch64 NEON: 4 `f32` or 2 `f64` per vector.
    Neon,
}

impl Level {
    /// Every level, best last.
    const ALL: [Level; 4] = [Level::Scalar, Level::Neon, Level::Avx2, Level::Avx512];

    /// The levels this build has kernels for on its target. Under miri, which has no CPU
    /// to detect, SIMD levels are left out unless the build enables their target
    /// features (`-C target-feature=+avx2,+fma,+popcnt,+avx512f`).
    ///
    /// ```
    /// assert!(bitdrop::Level::compiled().any(|l| l == bitdrop::Level::Scalar));
    /// ```
    pub fn compiled() -> impl Iterator<Item = Level> {
        Self::ALL.into_iter().filter(|l| l.is_compiled())
    }

    /// The levels this CPU can run, worst first.
    ///
    /// ```
    /// for level in bitdrop::Level::available() {
    ///     assert!(level.is_available());
    /// }
    /// ```
    pub fn available() -> impl Iterator<Item = Level> {
        Self::ALL.into_iter().filter(|l| l.is_available())
    }

    /// The lower-case name, as `BITDROP_FORCE` takes it.
    ///
    /// ```
    /// assert_eq!(bitdrop::Level::Avx2.name(), "avx2");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
            Level::Neon => "neon",
        }
    }

    fn is_compiled(self) -> bool {
        match self {
            Level::Scalar => true,
            Level::Avx2 | Level::Avx512 => cfg!(all(
                target_arch = "x86_64",
                any(not(miri), target_feature = "avx2")
            )),
            Level::Neon => cfg!(all(
                target_arch = "aarch64",
                target_feature = "neon",
                not(miri)
            )),
        }
    }

    /// Whether this build has the level's kernels and this CPU can run them.
    ///
    /// ```
    /// use bitdrop::Level;
    /// assert!(Level::Scalar.is_available());
    /// if Level::Avx512.is_available() {
    ///     assert!(Level::Avx2.is_available());
    /// }
    /// ```
    pub fn is_available(self) -> bool {
        self.is_compiled() && crate::arch::cpu_has(self)
    }

    /// The best level this CPU can run: what the kernels use unless told otherwise.
    ///
    /// ```
    /// assert!(bitdrop::Level::best().is_available());
    /// ```
    pub fn best() -> Level {
        Self::available().last().unwrap_or(Level::Scalar)
    }

    /// The level the kernels use on this thread now: [`with_level`]'s (with `std`), or else
    /// the one chosen at the first kernel call (the best, or `BITDROP_FORCE`'s).
    ///
    /// ```
    /// assert!(bitdrop::Level::current().is_available());
    /// ```
    // Without `std`, `with_level` does not exist.
    #[cfg_attr(not(feature = "std"), doc = "\n[`with_level`]: crate::Level")]
    pub fn current() -> Level {
        crate::arch::current_level()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = Error;

    /// Parses a [`Level::name`].
    fn from_str(s: &str) -> Result<Level, Error> {
        Level::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or(Error::UnknownLevel)
    }
}

/// Runs `f` with every kernel call on this thread at `level`, then restores the previous
/// choice (also when `f` panics). Calls nest.
///
/// This is how the tests, benchmarks and fuzz targets run every level on one machine;
/// other threads are not affected.
///
/// # Errors
///
/// [`Error::LevelUnavailable`] if this CPU or build cannot run `level`; `f` is not called
/// then.
///
/// ```
/// use bitdrop::{Level, with_level};
///
/// for level in Level::available() {
///     let inside = with_level(level, Level::current)?;
///     assert_eq!(inside, level);
/// }
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[cfg(feature = "std")]
pub fn with_level<R>(level: Level, f: impl FnOnce() -> R) -> Result<R, Error> {
    if !level.is_available() {
        return Err(Error::LevelUnavailable { level });
    }
    Ok(crate::arch::with_thread_level(level, f))
}
