//! Masked BLAS-level primitives: the dense operation restricted to kept rows and columns.
//!
//! Each mask is optional (`None` keeps every unit). A dropped row or column of an output
//! is bitwise untouched; a dropped entry of an input vector and a dropped row or column
//! of an input matrix are never used, so NaN or infinity there cannot leak. No
//! dropout scaling happens here: fold `1 / keep` into `alpha` (the [`layer`](crate::layer)
//! functions do).
//!
//! Every layout works: row-major, column-major and general strides (use
//! [`MatRef::t`] for `Aᵀ`). The fast paths want the masked dimension contiguous:
//!
//! | operation | contiguous columns (column-major) | contiguous rows (row-major) |
//! |---|---|---|
//! | [`ger`] | a kept column is one axpy; a dropped column costs nothing | a kept row is one masked axpy |
//! | [`gemv`] | a kept column is one axpy into `y`; a dropped one costs nothing | a kept row is one masked dot product |
//!
//! So the work of dropped *columns* disappears entirely with column-major storage, and
//! the work of dropped *rows* with row-major storage; the other side's mask runs as
//! lane masks inside the vector loops.

use crate::error::check_len;
use crate::mat::{column, column_mut};
use crate::{Element, Error, Mask, MatMut, MatRef, arch};

/// Masked rank-1 update: `A[j,i] += alpha · x_j · y_i` for kept rows `j` and kept
/// columns `i`.
///
/// Entries of `a` in a dropped row or column are not written; `x_j` of a dropped row and
/// `y_i` of a dropped column are not read.
///
/// # Errors
///
/// [`Error::Length`] if `x.len() != a.rows()` or `y.len() != a.cols()`;
/// [`Error::MaskLength`] if `row_mask` does not cover `a.rows()` or `col_mask`
/// `a.cols()`. Nothing is written then.
///
/// ```
/// use bitdrop::{Mask, MatMut, blas};
///
/// let mut a = [0.0f32; 6]; // 2 x 3, column-major
/// let cols = Mask::new(&[0b101], 3)?; // column 1 dropped
/// blas::ger(2.0, &[1.0, 10.0], None, &[1.0, f32::NAN, 3.0], Some(cols),
///     MatMut::col_major(&mut a, 2, 3)?)?;
/// assert_eq!(a, [2.0, 20.0, 0.0, 0.0, 6.0, 60.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn ger<T: Element>(
    alpha: T,
    x: &[T],
    row_mask: Option<Mask<'_>>,
    y: &[T],
    col_mask: Option<Mask<'_>>,
    a: MatMut<'_, T>,
) -> Result<(), Error> {
    check_len("x", a.rows(), x.len())?;
    check_len("y", a.cols(), y.len())?;
    arch::ger(a, alpha, column(x), column(y), row_mask, col_mask)
}

/// Masked matrix-vector product: `y_j = alpha · Σ_i A[j,i] · x_i + beta · y_j` over
/// kept columns `i`, for kept rows `j`.
///
/// A dropped `y_j` is not written; a dropped `x_i` and column `i` of `a` are not read.
/// With `beta = 0`, `y_j` is overwritten without being read (BLAS's convention: a NaN
/// there does not survive). For `y = Aᵀ x` pass `a.t()`.
///
/// # Errors
///
/// [`Error::Length`] if `x.len() != a.cols()` or `y.len() != a.rows()`;
/// [`Error::MaskLength`] if `col_mask` does not cover `a.cols()` or `row_mask`
/// `a.rows()`. Nothing is written then.
///
/// ```
/// use bitdrop::{Mask, MatRef, blas};
///
/// let a = [1.0f64, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]], row-major
/// let a = MatRef::row_major(&a, 2, 2)?;
/// let mut y = [0.0; 2];
/// let cols = Mask::new(&[0b10], 2)?; // x_0 dropped
/// blas::gemv(1.0, a, &[f64::NAN, 1.0], Some(cols), 0.0, &mut y, None)?;
/// assert_eq!(y, [2.0, 4.0]);
/// blas::gemv(1.0, a.t(), &[1.0, 1.0], None, 0.0, &mut y, None)?; // Aᵀ x
/// assert_eq!(y, [4.0, 6.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn gemv<T: Element>(
    alpha: T,
    a: MatRef<'_, T>,
    x: &[T],
    col_mask: Option<Mask<'_>>,
    beta: T,
    y: &mut [T],
    row_mask: Option<Mask<'_>>,
) -> Result<(), Error> {
    check_len("x", a.cols(), x.len())?;
    check_len("y", a.rows(), y.len())?;
    arch::gemv(column_mut(y), alpha, a, column(x), beta, row_mask, col_mask)
}

/// Masked matrix product: `C[j,k] = alpha · Σ_p A[j,p] · B[p,k] + beta · C[j,k]` over
/// kept inner units `p`, for kept rows `j` and kept columns `k` of `C`.
///
/// Entries of `c` in a dropped row or column are not written; column `p` of `a` and row
/// `p` of `b` for a dropped inner unit are not read. `beta = 0` overwrites without
/// reading. This portable kernel runs one masked [`gemv`] per kept column of `C` (per
/// kept row when `C` is row-major), so dropped rows and columns of `C` cost nothing and
/// a dropped inner unit skips its column of `A`.
///
/// # Errors
///
/// [`Error::Shape`] if `b` is not `a.cols() x c.cols()` or `c` not
/// `a.rows() x c.cols()`; [`Error::MaskLength`] if a mask does not cover its
/// dimension. Nothing is written then.
///
/// ```
/// use bitdrop::{Mask, MatMut, MatRef, blas};
///
/// let a = MatRef::row_major(&[1.0f32, 2.0, 3.0, 4.0], 2, 2)?;
/// let b = MatRef::row_major(&[1.0f32, 1.0, 1.0, 1.0], 2, 2)?;
/// let mut c = [f32::NAN; 4];
/// let inner = Mask::new(&[0b01], 2)?; // inner unit 1 dropped
/// blas::gemm(1.0, a, Some(inner), b, 0.0, MatMut::row_major(&mut c, 2, 2)?, None, None)?;
/// assert_eq!(c, [1.0, 1.0, 3.0, 3.0]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Element>(
    alpha: T,
    a: MatRef<'_, T>,
    inner_mask: Option<Mask<'_>>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
    row_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
) -> Result<(), Error> {
    arch::gemm(c, alpha, a, b, beta, row_mask, inner_mask, col_mask)
}
