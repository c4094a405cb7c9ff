//! Kernels on checked raw parts, and the choice of instruction set.
//!
//! `unsafe` lives here and only here. The safe entry points at the bottom take the
//! crate's validated views (whose constructors proved bounds and non-aliasing), check
//! in O(1) that the shapes agree, and hand raw parts to the kernel table of the
//! element type and the current [`Level`].
//!
//! Each level is a table of `#[target_feature]` wrappers around the one generic body of
//! each kernel (`generic.rs`), instantiated with the level's vector type. A table is the
//! capability token: [`kernels`] hands out a SIMD table only for a level that
//! [`cpu_has`] confirmed, so calling through it is sound.

/// The wrappers and kernel tables of one SIMD level: `$features` enabled around the
/// generic kernels instantiated with `$f32` and `$f64` vectors.
#[cfg(any(
    all(target_arch = "x86_64", any(not(miri), target_feature = "avx2")),
    all(target_arch = "aarch64", target_feature = "neon", not(miri))
))]
macro_rules! simd_tables {
    ($features:literal, $f32:ty, $f64:ty) => {
        simd_tables!(
            @one $features, F32, f32, $f32, ger_f32, gemv_f32, gemm_f32, expand_f32, compress_f32
        );
        simd_tables!(
            @one $features, F64, f64, $f64, ger_f64, gemv_f64, gemm_f64, expand_f64, compress_f64
        );
    };
    (
        @one $features:literal, $table:ident, $t:ty, $v:ty,
        $ger:ident, $gemv:ident, $gemm:ident, $expand:ident, $compress:ident
    ) => {
        /// # Safety
        ///
        /// The CPU has the level's features; the `Ger`'s contract holds.
        #[target_feature(enable = $features)]
        unsafe fn $ger(g: &$crate::arch::Ger<'_, $t>) {
            // SAFETY: the caller's contract is the generic kernel's.
            unsafe { $crate::arch::generic::ger::<$v>(g) }
        }

        /// # Safety
        ///
        /// The CPU has the level's features; the `Gemv`'s contract holds.
        #[target_feature(enable = $features)]
        unsafe fn $gemv(g: &$crate::arch::Gemv<'_, $t>) {
            // SAFETY: the caller's contract is the generic kernel's.
            unsafe { $crate::arch::generic::gemv::<$v>(g) }
        }

        /// # Safety
        ///
        /// The CPU has the level's features; the `Gemm`'s contract holds.
        #[target_feature(enable = $features)]
        unsafe fn $gemm(g: &$crate::arch::Gemm<'_, $t>) {
            // SAFETY: the caller's contract is the generic kernel's.
            unsafe { $crate::arch::generic::gemm::<$v>(g) }
        }

        /// # Safety
        ///
        /// The CPU has the level's features; the `Expand`'s contract holds.
        #[cfg(feature = "alloc")]
        #[target_feature(enable = $features)]
        unsafe fn $expand(e: &$crate::arch::Expand<'_, $t>) {
            // SAFETY: the caller's contract is the generic kernel's.
            unsafe { $crate::arch::generic::expand::<$v>(e) }
        }

        /// # Safety
        ///
        /// The CPU has the level's features; the `Compress`'s contract holds.
        #[cfg(feature = "alloc")]
        #[target_feature(enable = $features)]
        unsafe fn $compress(c: &$crate::arch::Compress<'_, $t>) {
            // SAFETY: the caller's contract is the generic kernel's.
            unsafe { $crate::arch::generic::compress::<$v>(c) }
        }

        pub(crate) static $table: $crate::arch::Kernels<$t> = $crate::arch::Kernels {
            ger: $ger,
            gemv: $gemv,
            gemm: $gemm,
            #[cfg(feature = "alloc")]
            expand: $expand,
            #[cfg(feature = "alloc")]
            compress: $compress,
        };
    };
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon", not(miri)))]
mod aarch64;
mod generic;
mod lanes;
#[cfg(feature = "alloc")]
pub(crate) mod mm;

/// What a masked product of the batch path leaves in the rows of `C` its row mask drops.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DroppedRows {
    /// Not written (a dropped output unit of `dW` or `Z`).
    Untouched,
    /// Exactly 0 in every kept column (`dX`'s dropped inputs); the matrixmultiply path
    /// writes them in the same pass as the kept rows where the layout allows.
    Zero,
}
mod scalar;
// Miri has no CPU to ask: it reports exactly the target features the build enables. So
// under miri the x86_64 levels are built only when asked for, as CI does to run the
// AVX-512 kernels under miri's checks
// (`RUSTFLAGS=-Ctarget-feature=+avx2,+fma,+popcnt,+avx512f`);
// a plain `cargo miri test` runs the portable path.
#[cfg(all(target_arch = "x86_64", any(not(miri), target_feature = "avx2")))]
mod x86_64;

use crate::error::{check_mask_len, check_shape};
use crate::mat::RawMat;
use crate::{Element, Error, Level, Mask, MatMut, MatRef};

/// Whether the CPU can run `level` (the build's kernels for it aside).
pub(crate) fn cpu_has(level: Level) -> bool {
    match level {
        Level::Scalar => true,
        #[cfg(all(target_arch = "x86_64", any(not(miri), target_feature = "avx2")))]
        Level::Avx2 => x86_64::has_avx2(),
        #[cfg(all(target_arch = "x86_64", any(not(miri), target_feature = "avx2")))]
        Level::Avx512 => x86_64::has_avx512(),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon", not(miri)))]
        Level::Neon => true,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

#[cfg(feature = "std")]
mod choice {
    //! The level in force: detected once and cached process-wide, overridable per
    //! thread by `with_level`.

    use core::cell::Cell;
    use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    use std::thread_local;

    use crate::Level;

    /// `0` until the first kernel call, then `1 + ` the chosen level's index.
    static GLOBAL: AtomicU8 = AtomicU8::new(0);
    /// Whether any thread ever used `with_level`: until then the thread-local is not
    /// consulted at all.
    static OVERRIDDEN: AtomicBool = AtomicBool::new(false);

    thread_local! {
        static THREAD: Cell<Option<Level>> = const { Cell::new(None) };
    }

    const LEVELS: [Level; 4] = [Level::Scalar, Level::Avx2, Level::Avx512, Level::Neon];

    fn encode(level: Level) -> u8 {
        1 + LEVELS.iter().position(|&l| l == level).unwrap_or(0) as u8
    }

    fn decode(code: u8) -> Level {
        LEVELS
            .get(usize::from(code).wrapping_sub(1))
            .copied()
            .unwrap_or(Level::Scalar)
    }

    /// The process-wide level: the best one, or `BITDROP_FORCE`'s if available.
    fn global() -> Level {
        match GLOBAL.load(Ordering::Relaxed) {
            0 => {
                let forced = std::env::var("BITDROP_FORCE")
                    .ok()
                    .and_then(|name| name.trim().parse::<Level>().ok())
                    .filter(|level| level.is_available());
                let level = forced.unwrap_or_else(Level::best);
                // Racing first calls all compute the same answer.
                GLOBAL.store(encode(level), Ordering::Relaxed);
                level
            }
            code => decode(code),
        }
    }

    pub(crate) fn current() -> Level {
        if OVERRIDDEN.load(Ordering::Relaxed)
            && let Some(level) = THREAD.with(Cell::get)
        {
            return level;
        }
        global()
    }

    /// Restores the thread's previous level when dropped, also during a panic.
    struct Restore(Option<Level>);

    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD.with(|t| t.set(self.0));
        }
    }

    pub(crate) fn with_thread_level<R>(level: Level, f: impl FnOnce() -> R) -> R {
        OVERRIDDEN.store(true, Ordering::Relaxed);
        let _restore = Restore(THREAD.with(|t| t.replace(Some(level))));
        f()
    }
}

#[cfg(feature = "std")]
pub(crate) use choice::{current as current_level, with_thread_level};

/// Without `std` there is no detection: the best level the target features allow.
#[cfg(not(feature = "std"))]
pub(crate) fn current_level() -> Level {
    Level::best()
}

/// Whether the kernels run on vectors (any level but scalar) on this thread.
pub(crate) fn vectorized() -> bool {
    current_level() != Level::Scalar
}

/// The kernel table of `level` for one element type.
macro_rules! table_for {
    ($level:expr, $table:ident) => {
        match $level {
            #[cfg(all(target_arch = "x86_64", any(not(miri), target_feature = "avx2")))]
            Level::Avx512 => &x86_64::avx512::$table,
            #[cfg(all(target_arch = "x86_64", any(not(miri), target_feature = "avx2")))]
            Level::Avx2 => &x86_64::avx2::$table,
            #[cfg(all(target_arch = "aarch64", target_feature = "neon", not(miri)))]
            Level::Neon => &aarch64::neon::$table,
            _ => &scalar::$table,
        }
    };
}

/// A masked rank-1 update `A[j,i] += alpha · x_j · y_i` on raw parts.
///
/// Contract for the kernels: `a` is a view whose elements all lie inside one allocation
/// and are pairwise distinct; `x` is `a.rows x 1` and `y` is `a.cols x 1`, both inside
/// their allocations and disjoint from `a`; a mask, when present, has
/// `words_for(len)` words and clear bits past `len` (`len` = `a.rows` for `row_mask`,
/// `a.cols` for `col_mask`).
pub(crate) struct Ger<'m, T> {
    pub(crate) a: RawMat<*mut T>,
    pub(crate) alpha: T,
    pub(crate) x: RawMat<*const T>,
    pub(crate) y: RawMat<*const T>,
    pub(crate) row_mask: Option<&'m [u64]>,
    pub(crate) col_mask: Option<&'m [u64]>,
}

/// A masked matrix-vector product `y_j = alpha · Σ_i A[j,i] x_i + beta · y_j` on raw
/// parts.
///
/// Contract for the kernels: `y` is an `a.rows x 1` view of distinct elements inside its
/// allocation, disjoint from `a` and `x`; `a` and `x` (`a.cols x 1`) lie inside theirs;
/// masks as for [`Ger`] (`row_mask` over `y`, `col_mask` over `x`).
pub(crate) struct Gemv<'m, T> {
    pub(crate) a: RawMat<*const T>,
    pub(crate) alpha: T,
    pub(crate) x: RawMat<*const T>,
    pub(crate) beta: T,
    pub(crate) y: RawMat<*mut T>,
    pub(crate) row_mask: Option<&'m [u64]>,
    pub(crate) col_mask: Option<&'m [u64]>,
}

/// A masked product `C = alpha · A · diag(inner) · B + beta · C` on kept rows and
/// columns of `C`, on raw parts.
///
/// Contract for the kernels: `c` is `a.rows x b.cols` of distinct elements inside its
/// allocation, disjoint from `a` and `b`; `a.cols == b.rows`; masks as for [`Ger`]
/// (`row_mask` over `c.rows`, `inner_mask` over `a.cols`, `col_mask` over `c.cols`).
pub(crate) struct Gemm<'m, T> {
    pub(crate) c: RawMat<*mut T>,
    pub(crate) alpha: T,
    pub(crate) a: RawMat<*const T>,
    pub(crate) b: RawMat<*const T>,
    pub(crate) beta: T,
    pub(crate) row_mask: Option<&'m [u64]>,
    pub(crate) inner_mask: Option<&'m [u64]>,
    pub(crate) col_mask: Option<&'m [u64]>,
}

impl<P: Copy> RawMat<P> {
    /// The transpose: rows and columns swapped, no data moved.
    pub(crate) fn t(self) -> Self {
        RawMat {
            ptr: self.ptr,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

impl<T> RawMat<*const T> {
    /// Column `k` as a `rows x 1` view.
    fn col(self, k: usize) -> Self {
        RawMat {
            // Wrapping: for an empty column the offset may point past the allocation
            // (or overflow); it is then never dereferenced.
            ptr: self.ptr.wrapping_add(k.wrapping_mul(self.col_stride)),
            cols: 1,
            ..self
        }
    }
}

impl<T> RawMat<*mut T> {
    /// Column `k` as a `rows x 1` view.
    fn col(self, k: usize) -> Self {
        RawMat {
            // Wrapping: as for the read-only view.
            ptr: self.ptr.wrapping_add(k.wrapping_mul(self.col_stride)),
            cols: 1,
            ..self
        }
    }
}

/// Rows of a masked scatter (the batch path's `dW`, row-major), `rows` of them (1 to
/// [`EXPAND_ROWS`]), row `q` from `src + q · src_stride` into `dst[q]`:
/// `dst[i] = src[k] + beta · dst[i]` for the `k`-th kept unit `i` of `words`, dropped
/// `dst[i]` bitwise unchanged; `beta = 0` writes `src[k]` without reading `dst[i]`.
/// With `zero_dropped` (only with `beta = 0`: `dX`), dropped `dst[i]` are set to exactly
/// 0 instead, and `dst` is not read at all. The rows share the mask, so a kernel that
/// takes several at once decodes each chunk's bits once for all of them.
///
/// Contract for the kernels: `1 <= rows <= EXPAND_ROWS`; each `dst[q]`, `q < rows`, is
/// valid for reads and writes of `len` contiguous elements, disjoint from the others;
/// each source row for reads of as many contiguous elements as `words` has set bits,
/// disjoint from every `dst[q]`; `words` has words_for(len) words with clear bits past
/// `len`. The entries of `dst` from `rows` on are not used.
#[cfg(feature = "alloc")]
pub(crate) struct Expand<'m, T> {
    pub(crate) src: *const T,
    pub(crate) src_stride: usize,
    pub(crate) dst: [*mut T; EXPAND_ROWS],
    pub(crate) rows: usize,
    pub(crate) len: usize,
    pub(crate) words: &'m [u64],
    pub(crate) beta: T,
    pub(crate) zero_dropped: bool,
}

/// The most rows one [`Expand`] carries: four rows share each chunk's decoded mask (the
/// lane mask and the permutation), as the rank-1 updates share theirs.
#[cfg(feature = "alloc")]
pub(crate) const EXPAND_ROWS: usize = 4;

/// One row of a masked gather (the batch path's gathers along a contiguous masked
/// dimension): `dst[k] = src[i]` for the `k`-th kept unit `i` of `words`.
///
/// Contract for the kernels: `src` is valid for reads of `len` contiguous elements;
/// `dst` for writes of `room` contiguous elements, `room` at least the number of set bits
/// of `words` (the kernel may write past that number, never past `room`), disjoint from
/// `src`; `words` as for [`Expand`].
#[cfg(feature = "alloc")]
pub(crate) struct Compress<'m, T> {
    pub(crate) src: *const T,
    pub(crate) dst: *mut T,
    pub(crate) len: usize,
    pub(crate) room: usize,
    pub(crate) words: &'m [u64],
}

/// One instruction set's kernels for one element type.
pub struct Kernels<T: 'static> {
    pub(crate) ger: unsafe fn(&Ger<'_, T>),
    pub(crate) gemv: unsafe fn(&Gemv<'_, T>),
    pub(crate) gemm: unsafe fn(&Gemm<'_, T>),
    #[cfg(feature = "alloc")]
    pub(crate) expand: unsafe fn(&Expand<'_, T>),
    #[cfg(feature = "alloc")]
    pub(crate) compress: unsafe fn(&Compress<'_, T>),
}

/// The kernel table for `T` on this CPU.
fn kernels<T: Element>() -> &'static Kernels<T> {
    T::kernels()
}

/// The `f32` kernels of the level in force. [`current_level`] only returns levels that
/// [`cpu_has`] confirmed.
pub(crate) fn kernels_f32() -> &'static Kernels<f32> {
    table_for!(current_level(), F32)
}

/// The `f64` kernels of the level in force.
pub(crate) fn kernels_f64() -> &'static Kernels<f64> {
    table_for!(current_level(), F64)
}

fn check_vector<T>(arg: &'static str, v: &MatRef<'_, T>, len: usize) -> Result<(), Error>
where
    T: Element,
{
    check_shape(arg, (len, 1), v.shape())
}

fn check_mask(arg: &'static str, mask: Option<Mask<'_>>, len: usize) -> Result<(), Error> {
    mask.map_or(Ok(()), |m| check_mask_len(arg, len, m.len()))
}

/// `A[j,i] += alpha · x_j · y_i` for kept rows `j` and kept columns `i`; dropped rows and
/// columns of `a` are not touched, dropped `x_j` and `y_i` not read.
///
/// # Errors
///
/// If `x` is not `a.rows x 1`, `y` not `a.cols x 1`, or a mask has the wrong length.
pub(crate) fn ger<T: Element>(
    mut a: MatMut<'_, T>,
    alpha: T,
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    row_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
) -> Result<(), Error> {
    let (rows, cols) = a.shape();
    check_vector("x", &x, rows)?;
    check_vector("y", &y, cols)?;
    check_mask("row_mask", row_mask, rows)?;
    check_mask("col_mask", col_mask, cols)?;
    let args = Ger {
        a: a.raw_mut(),
        alpha,
        x: x.raw(),
        y: y.raw(),
        row_mask: row_mask.map(Mask::words),
        col_mask: col_mask.map(Mask::words),
    };
    // SAFETY: the views' constructors put every element inside its slice and made `a`'s
    // elements distinct; `a` is borrowed mutably while `x` and `y` are shared borrows,
    // so they are disjoint; the shapes and mask lengths were checked just above, and a
    // `Mask` has words_for(len) words with clear tails. The table's instruction set
    // was detected on this CPU.
    unsafe { (kernels::<T>().ger)(&args) };
    Ok(())
}

/// `y_j = alpha · Σ_i A[j,i] · x_i + beta · y_j` over kept columns `i`, for kept rows
/// `j`; dropped `y_j` untouched, dropped `x_i` and columns of `a` never read.
/// `beta = 0` overwrites `y_j` without reading it.
///
/// # Errors
///
/// If `x` is not `a.cols x 1`, `y` not `a.rows x 1`, or a mask has the wrong length.
pub(crate) fn gemv<T: Element>(
    mut y: MatMut<'_, T>,
    alpha: T,
    a: MatRef<'_, T>,
    x: MatRef<'_, T>,
    beta: T,
    row_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
) -> Result<(), Error> {
    let (rows, cols) = a.shape();
    check_vector("x", &x, cols)?;
    check_shape("y", (rows, 1), y.shape())?;
    check_mask("row_mask", row_mask, rows)?;
    check_mask("col_mask", col_mask, cols)?;
    let args = Gemv {
        a: a.raw(),
        alpha,
        x: x.raw(),
        beta,
        y: y.raw_mut(),
        row_mask: row_mask.map(Mask::words),
        col_mask: col_mask.map(Mask::words),
    };
    // SAFETY: as in `ger`: checked views, `y` mutably borrowed against shared `a` and
    // `x`, shapes and masks checked above, detected instruction set.
    unsafe { (kernels::<T>().gemv)(&args) };
    Ok(())
}

/// `C[j,k] = alpha · Σ_p A[j,p] · B[p,k] + beta · C[j,k]` over kept inner units `p`, for
/// kept rows `j` and kept columns `k` of `C`; dropped entries of `c` untouched, dropped
/// inner columns of `a` and rows of `b` never read.
///
/// # Errors
///
/// If the shapes disagree or a mask has the wrong length.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Element>(
    mut c: MatMut<'_, T>,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    row_mask: Option<Mask<'_>>,
    inner_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
) -> Result<(), Error> {
    let (rows, inner) = a.shape();
    let cols = c.cols();
    check_shape("b", (inner, cols), b.shape())?;
    check_shape("c", (rows, cols), c.shape())?;
    check_mask("row_mask", row_mask, rows)?;
    check_mask("inner_mask", inner_mask, inner)?;
    check_mask("col_mask", col_mask, cols)?;
    if rows == 0 || cols == 0 {
        // Nothing to write. (A `0 x usize::MAX` view is valid; looping over its
        // columns would not end.)
        return Ok(());
    }
    let args = Gemm {
        c: c.raw_mut(),
        alpha,
        a: a.raw(),
        b: b.raw(),
        beta,
        row_mask: row_mask.map(Mask::words),
        inner_mask: inner_mask.map(Mask::words),
        col_mask: col_mask.map(Mask::words),
    };
    // SAFETY: as in `ger`: checked views, `c` mutably borrowed against shared `a` and
    // `b`, shapes and masks checked above, detected instruction set.
    unsafe { (kernels::<T>().gemm)(&args) };
    Ok(())
}
