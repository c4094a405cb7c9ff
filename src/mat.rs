//! Strided matrix views, checked once when they are made.
//!
//! Element `(i, j)` of a view lives at `data[i * row_stride + j * col_stride]`.
//! Row-major storage has strides `(cols, 1)`, column-major `(1, rows)`; any other pair of
//! strides (a sub-block, a transposed view, interleaved matrices) works as well. The
//! constructors prove that every element lies inside the slice, without overflow, so the
//! kernels never check again; [`MatMut`] also proves that no two elements share a place.

use crate::{Element, Error};

/// Number of slice elements a view needs: one past its last element, or 0 when empty.
fn extent(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)?
        .checked_add(1)
}

fn check_bounds(
    data_len: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> Result<(), Error> {
    match extent(rows, cols, row_stride, col_stride) {
        Some(needed) if needed <= data_len => Ok(()),
        _ => Err(Error::MatrixBounds {
            rows,
            cols,
            row_stride,
            col_stride,
            data_len,
        }),
    }
}

const fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Whether two different `(i, j)` map to one offset `i * rs + j * cs`.
///
/// `i * rs + j * cs = i' * rs + j' * cs` means `(i - i') * rs = (j' - j) * cs`, whose
/// smallest non-zero solution is `|i - i'| = cs / g`, `|j - j'| = rs / g` with
/// `g = gcd(rs, cs)`; every other solution is a multiple of it. So two elements alias
/// exactly when that step fits inside the shape. This is exact: interleaved layouts that
/// never collide (strides `(3, 2)` on a 2x3 view) are accepted.
fn aliases(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if rows == 0 || cols == 0 {
        return false;
    }
    match (row_stride, col_stride) {
        (0, 0) => rows > 1 || cols > 1,
        (0, _) => rows > 1,
        (_, 0) => cols > 1,
        (rs, cs) => {
            let g = gcd(rs, cs);
            cs / g < rows && rs / g < cols
        }
    }
}

/// A read-only `rows x cols` view of a slice with arbitrary element strides.
///
/// ```
/// use bitdrop::MatRef;
///
/// let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let a = MatRef::row_major(&data, 2, 3)?;
/// assert_eq!(a.get(1, 0), Some(4.0));
/// let at = a.t(); // the transpose: 3x2, no copy
/// assert_eq!(at.get(0, 1), Some(4.0));
/// let b = MatRef::col_major(&data, 2, 3)?;
/// assert_eq!(b.get(1, 0), Some(2.0));
/// // Every other column of `a`: strides (3, 2).
/// let c = MatRef::new(&data, 2, 2, 3, 2)?;
/// assert_eq!(c.get(1, 1), Some(6.0));
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A mutable `rows x cols` view of a slice; no two elements share a place.
///
/// ```
/// use bitdrop::MatMut;
///
/// let mut data = [0.0f64; 6];
/// let mut a = MatMut::col_major(&mut data, 2, 3)?;
/// *a.get_mut(1, 2).unwrap() = 7.0;
/// a.reborrow_mut().t().fill(1.0); // every element, through the transpose
/// assert_eq!(data, [1.0; 6]);
/// // Strides that would map two elements to one place are refused.
/// assert!(MatMut::new(&mut data, 2, 2, 1, 1).is_err());
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Debug, PartialEq)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// Raw parts of a checked view, for the kernels in `arch`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawMat<P> {
    pub(crate) ptr: P,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) row_stride: usize,
    pub(crate) col_stride: usize,
}

impl<'a, T: Element> MatRef<'a, T> {
    /// Views `data` as a `rows x cols` matrix with element `(i, j)` at
    /// `data[i * row_stride + j * col_stride]`. Strides may be zero (a broadcast row or
    /// column); `data` may be longer than the view needs.
    ///
    /// # Errors
    ///
    /// [`Error::MatrixBounds`] if an element would lie past the end of `data` or the
    /// offsets overflow `usize`.
    ///
    /// ```
    /// use bitdrop::MatRef;
    /// let d = [0.0f32; 4];
    /// assert!(MatRef::new(&d, 2, 2, 2, 1).is_ok());
    /// assert!(MatRef::new(&d, 2, 3, 2, 1).is_err());
    /// assert!(MatRef::new(&d, usize::MAX, 2, 1, 1).is_err());
    /// assert!(MatRef::new(&d, 0, 9, 9, 9).is_ok()); // empty
    /// ```
    pub fn new(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, Error> {
        check_bounds(data.len(), rows, cols, row_stride, col_stride)?;
        Ok(MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// Row-major view: strides `(cols, 1)`.
    ///
    /// # Errors
    ///
    /// [`Error::MatrixBounds`] if `data.len() < rows * cols`.
    ///
    /// ```
    /// let a = bitdrop::MatRef::row_major(&[1.0f32, 2.0], 1, 2)?;
    /// assert_eq!(a.get(0, 1), Some(2.0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self, Error> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// Column-major view: strides `(1, rows)`.
    ///
    /// # Errors
    ///
    /// [`Error::MatrixBounds`] if `data.len() < rows * cols`.
    ///
    /// ```
    /// let a = bitdrop::MatRef::col_major(&[1.0f32, 2.0], 1, 2)?;
    /// assert_eq!(a.get(0, 1), Some(2.0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn col_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self, Error> {
        Self::new(data, rows, cols, 1, rows)
    }

    /// Number of rows.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatRef::row_major(&[0.0f32; 6], 2, 3)?.rows(), 2);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatRef::row_major(&[0.0f32; 6], 2, 3)?.cols(), 3);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatRef::row_major(&[0.0f32; 6], 2, 3)?.shape(), (2, 3));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Distance between rows, in elements.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatRef::row_major(&[0.0f32; 6], 2, 3)?.row_stride(), 3);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// Distance between columns, in elements.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatRef::row_major(&[0.0f32; 6], 2, 3)?.col_stride(), 1);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// Element `(i, j)`, or `None` outside the view.
    ///
    /// ```
    /// let a = bitdrop::MatRef::row_major(&[1.0f64, 2.0], 1, 2)?;
    /// assert_eq!(a.get(0, 0), Some(1.0));
    /// assert_eq!(a.get(1, 0), None);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn get(&self, i: usize, j: usize) -> Option<T> {
        (i < self.rows && j < self.cols).then(|| self.at(i, j))
    }

    /// The transpose, sharing the data: `t().get(j, i) == get(i, j)`.
    ///
    /// ```
    /// let a = bitdrop::MatRef::row_major(&[1.0f32, 2.0], 1, 2)?;
    /// assert_eq!(a.t().shape(), (2, 1));
    /// assert_eq!(a.t().get(1, 0), Some(2.0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Column `j` as a `rows x 1` view, or `None` if `j >= cols`.
    ///
    /// ```
    /// let a = bitdrop::MatRef::row_major(&[1.0f32, 2.0, 3.0, 4.0], 2, 2)?;
    /// let c = a.col(1).unwrap();
    /// assert_eq!((c.get(0, 0), c.get(1, 0)), (Some(2.0), Some(4.0)));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn col(self, j: usize) -> Option<Self> {
        (j < self.cols).then(|| MatRef {
            // Empty when rows == 0: the offset may then lie past the end, or overflow.
            data: j
                .checked_mul(self.col_stride)
                .and_then(|offset| self.data.get(offset..))
                .unwrap_or_default(),
            rows: self.rows,
            cols: 1,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        })
    }

    /// Row `i` as a `1 x cols` view, or `None` if `i >= rows`.
    ///
    /// ```
    /// let a = bitdrop::MatRef::row_major(&[1.0f32, 2.0, 3.0, 4.0], 2, 2)?;
    /// assert_eq!(a.row(1).unwrap().get(0, 1), Some(4.0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn row(self, i: usize) -> Option<Self> {
        self.t().col(i).map(MatRef::t)
    }

    /// Element `(i, j)`; the caller keeps `i < rows` and `j < cols`, and the
    /// constructor's bounds check makes the index valid.
    pub(crate) fn at(&self, i: usize, j: usize) -> T {
        self.data[i * self.row_stride + j * self.col_stride]
    }

    pub(crate) fn raw(&self) -> RawMat<*const T> {
        RawMat {
            ptr: self.data.as_ptr(),
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }
}

impl<'a, T: Element> MatMut<'a, T> {
    /// Views `data` as a mutable `rows x cols` matrix with element `(i, j)` at
    /// `data[i * row_stride + j * col_stride]`.
    ///
    /// # Errors
    ///
    /// [`Error::MatrixBounds`] as for [`MatRef::new`]; [`Error::MatrixAliasing`] if two
    /// different elements would share a place (a zero stride on a dimension longer than
    /// one, or strides whose multiples meet inside the shape).
    ///
    /// ```
    /// use bitdrop::MatMut;
    /// let mut d = [0.0f32; 60];
    /// assert!(MatMut::new(&mut d, 6, 10, 10, 1).is_ok());
    /// assert!(MatMut::new(&mut d, 6, 10, 1, 1).is_err()); // (1, 0) and (0, 1) meet
    /// assert!(MatMut::new(&mut d, 2, 3, 3, 2).is_ok()); // interleaved, never meets
    /// ```
    pub fn new(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, Error> {
        check_bounds(data.len(), rows, cols, row_stride, col_stride)?;
        if aliases(rows, cols, row_stride, col_stride) {
            return Err(Error::MatrixAliasing {
                rows,
                cols,
                row_stride,
                col_stride,
            });
        }
        Ok(MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// Row-major view: strides `(cols, 1)`.
    ///
    /// # Errors
    ///
    /// [`Error::MatrixBounds`] if `data.len() < rows * cols`.
    ///
    /// ```
    /// let mut d = [0.0f32; 2];
    /// assert!(bitdrop::MatMut::row_major(&mut d, 1, 2).is_ok());
    /// ```
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self, Error> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// Column-major view: strides `(1, rows)`.
    ///
    /// # Errors
    ///
    /// [`Error::MatrixBounds`] if `data.len() < rows * cols`.
    ///
    /// ```
    /// let mut d = [0.0f32; 2];
    /// assert!(bitdrop::MatMut::col_major(&mut d, 2, 1).is_ok());
    /// ```
    pub fn col_major(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self, Error> {
        Self::new(data, rows, cols, 1, rows)
    }

    /// Number of rows.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatMut::row_major(&mut [0.0f32; 6], 2, 3)?.rows(), 2);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatMut::row_major(&mut [0.0f32; 6], 2, 3)?.cols(), 3);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatMut::row_major(&mut [0.0f32; 6], 2, 3)?.shape(), (2, 3));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Distance between rows, in elements.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatMut::col_major(&mut [0.0f32; 6], 2, 3)?.row_stride(), 1);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// Distance between columns, in elements.
    ///
    /// ```
    /// assert_eq!(bitdrop::MatMut::col_major(&mut [0.0f32; 6], 2, 3)?.col_stride(), 2);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// Element `(i, j)`, or `None` outside the view.
    ///
    /// ```
    /// let mut d = [5.0f32];
    /// assert_eq!(bitdrop::MatMut::row_major(&mut d, 1, 1)?.get(0, 0), Some(5.0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn get(&self, i: usize, j: usize) -> Option<T> {
        self.reborrow().get(i, j)
    }

    /// A mutable reference to element `(i, j)`, or `None` outside the view.
    ///
    /// ```
    /// let mut d = [5.0f32];
    /// *bitdrop::MatMut::row_major(&mut d, 1, 1)?.get_mut(0, 0).unwrap() = 6.0;
    /// assert_eq!(d, [6.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn get_mut(&mut self, i: usize, j: usize) -> Option<&mut T> {
        (i < self.rows && j < self.cols).then(|| self.at_mut(i, j))
    }

    /// A read-only view of the same elements, for as long as `self` is borrowed.
    ///
    /// ```
    /// let mut d = [1.0f32, 2.0];
    /// let a = bitdrop::MatMut::row_major(&mut d, 1, 2)?;
    /// assert_eq!(a.reborrow().t().get(1, 0), Some(2.0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn reborrow(&self) -> MatRef<'_, T> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    /// A mutable view of the same elements, for as long as `self` is borrowed: pass a
    /// view to a function and keep using it afterwards.
    ///
    /// ```
    /// let mut d = [0.0f32; 4];
    /// let mut a = bitdrop::MatMut::row_major(&mut d, 2, 2)?;
    /// a.reborrow_mut().fill(1.0);
    /// a.reborrow_mut().t().fill(2.0);
    /// assert_eq!(a.get(1, 1), Some(2.0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn reborrow_mut(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    /// The transpose, sharing the data.
    ///
    /// ```
    /// let mut d = [0.0f32; 6];
    /// let a = bitdrop::MatMut::row_major(&mut d, 2, 3)?;
    /// assert_eq!(a.t().shape(), (3, 2));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn t(self) -> Self {
        MatMut {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Column `j` as a `rows x 1` view, or `None` if `j >= cols`.
    ///
    /// ```
    /// let mut d = [0.0f32; 4];
    /// let mut a = bitdrop::MatMut::row_major(&mut d, 2, 2)?;
    /// a.reborrow_mut().col(1).unwrap().fill(3.0);
    /// assert_eq!(d, [0.0, 3.0, 0.0, 3.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn col(self, j: usize) -> Option<Self> {
        if j >= self.cols {
            return None;
        }
        Some(MatMut {
            // Empty when rows == 0: the offset may then lie past the end, or overflow.
            data: j
                .checked_mul(self.col_stride)
                .and_then(|offset| self.data.get_mut(offset..))
                .unwrap_or_default(),
            rows: self.rows,
            cols: 1,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        })
    }

    /// Row `i` as a `1 x cols` view, or `None` if `i >= rows`.
    ///
    /// ```
    /// let mut d = [0.0f32; 4];
    /// let mut a = bitdrop::MatMut::row_major(&mut d, 2, 2)?;
    /// a.reborrow_mut().row(0).unwrap().fill(3.0);
    /// assert_eq!(d, [3.0, 3.0, 0.0, 0.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn row(self, i: usize) -> Option<Self> {
        self.t().col(i).map(MatMut::t)
    }

    /// Sets every element of the view to `value`; elements of the slice outside the view
    /// are not touched.
    ///
    /// ```
    /// let mut d = [9.0f32; 5];
    /// bitdrop::MatMut::new(&mut d, 2, 1, 4, 1)?.fill(0.0); // elements 0 and 4
    /// assert_eq!(d, [0.0, 9.0, 9.0, 9.0, 0.0]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn fill(&mut self, value: T) {
        if self.cols == 0 {
            // `usize::MAX x 0` is a valid view: do not count through its rows.
            return;
        }
        for i in 0..self.rows {
            for j in 0..self.cols {
                *self.at_mut(i, j) = value;
            }
        }
    }

    /// Element `(i, j)`; the caller keeps `i < rows` and `j < cols`, and the
    /// constructor's bounds check makes the index valid.
    pub(crate) fn at_mut(&mut self, i: usize, j: usize) -> &mut T {
        &mut self.data[i * self.row_stride + j * self.col_stride]
    }

    /// Column `j` as one slice, when its elements are contiguous (`row_stride` 1, or at
    /// most one row); `None` otherwise or if `j >= cols`.
    pub(crate) fn col_slice_mut(&mut self, j: usize) -> Option<&mut [T]> {
        if j >= self.cols || (self.row_stride != 1 && self.rows > 1) {
            return None;
        }
        let start = j.checked_mul(self.col_stride)?;
        self.data.get_mut(start..start.checked_add(self.rows)?)
    }

    /// Row `i` as one slice, when its elements are contiguous (`col_stride` 1, or at most
    /// one column); `None` otherwise or if `i >= rows`.
    pub(crate) fn row_slice_mut(&mut self, i: usize) -> Option<&mut [T]> {
        if i >= self.rows || (self.col_stride != 1 && self.cols > 1) {
            return None;
        }
        let start = i.checked_mul(self.row_stride)?;
        self.data.get_mut(start..start.checked_add(self.cols)?)
    }

    pub(crate) fn raw_mut(&mut self) -> RawMat<*mut T> {
        RawMat {
            ptr: self.data.as_mut_ptr(),
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }
}

/// A slice as an `n x 1` view.
pub(crate) fn column<T>(v: &[T]) -> MatRef<'_, T> {
    MatRef {
        data: v,
        rows: v.len(),
        cols: 1,
        row_stride: 1,
        col_stride: 0,
    }
}

/// A mutable slice as an `n x 1` view.
pub(crate) fn column_mut<T>(v: &mut [T]) -> MatMut<'_, T> {
    MatMut {
        rows: v.len(),
        data: v,
        cols: 1,
        row_stride: 1,
        col_stride: 0,
    }
}

impl<'a, T: Element> From<MatMut<'a, T>> for MatRef<'a, T> {
    fn from(m: MatMut<'a, T>) -> MatRef<'a, T> {
        MatRef {
            data: m.data,
            rows: m.rows,
            cols: m.cols,
            row_stride: m.row_stride,
            col_stride: m.col_stride,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Aliasing by brute force: do two elements share an offset?
    fn aliases_naive(rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
        let mut seen = std::vec::Vec::new();
        (0..rows).any(|i| {
            (0..cols).any(|j| {
                let offset = i * rs + j * cs;
                let taken = seen.contains(&offset);
                seen.push(offset);
                taken
            })
        })
    }

    #[test]
    fn aliasing_rule_matches_brute_force() {
        let (dims, strides) = if cfg!(miri) { (4, 5) } else { (7, 9) };
        for rows in 0..dims {
            for cols in 0..dims {
                for rs in 0..strides {
                    for cs in 0..strides {
                        assert_eq!(
                            aliases(rows, cols, rs, cs),
                            aliases_naive(rows, cols, rs, cs),
                            "{rows}x{cols} strides ({rs}, {cs})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn extent_overflow_is_none() {
        assert_eq!(extent(usize::MAX, 2, 1, 1), None);
        assert_eq!(extent(2, 2, usize::MAX, 1), None);
        assert_eq!(extent(1, 1, usize::MAX, usize::MAX), Some(1));
        assert_eq!(extent(3, 4, 4, 1), Some(12));
    }
}
