//! The one error type of the crate.

use core::fmt;

/// What went wrong in a call: which argument disagreed and the sizes involved.
///
/// Every public function checks its arguments before it reads or writes anything, so an
/// `Err` means nothing was written. The enum is small and `Copy`, it allocates nothing, and
/// its `Display` names the argument and the numbers.
///
/// ```
/// use bitdrop::{Error, KeepProb};
///
/// let err = KeepProb::new(1.5).unwrap_err();
/// assert_eq!(err, Error::KeepProb { value: 1.5 });
/// assert_eq!(err.to_string(), "keep probability must be in (0, 1], got 1.5");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A keep probability outside `(0, 1]`, or NaN.
    KeepProb {
        /// The rejected value.
        value: f64,
    },
    /// A drop rate outside `[0, 1)`, or NaN.
    DropRate {
        /// The rejected value.
        value: f64,
    },
    /// A mask's word slice has the wrong length for its number of units.
    MaskWords {
        /// Number of units the mask was to hold.
        len: usize,
        /// Words needed: [`words_for`](crate::words_for)`(len)`, times the number of masks
        /// for a [`MaskBatch`](crate::MaskBatch).
        expected: usize,
        /// Words given.
        found: usize,
    },
    /// A mask has a set bit at or past its length; those bits must be zero.
    MaskTail {
        /// Number of units of the mask.
        len: usize,
        /// Index of the first set bit at or past `len`.
        bit: usize,
    },
    /// A matrix view reaches past the end of its slice, or its extent overflows `usize`.
    MatrixBounds {
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Distance between consecutive rows, in elements.
        row_stride: usize,
        /// Distance between consecutive columns, in elements.
        col_stride: usize,
        /// Length of the slice.
        data_len: usize,
    },
    /// A mutable matrix view whose strides map two different elements to one place.
    MatrixAliasing {
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Distance between consecutive rows, in elements.
        row_stride: usize,
        /// Distance between consecutive columns, in elements.
        col_stride: usize,
    },
    /// A vector argument has the wrong length.
    Length {
        /// The argument's name in the function's signature.
        arg: &'static str,
        /// Length the other arguments call for.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// A mask covers a different number of units than the layer side it drops.
    MaskLength {
        /// The mask argument's name in the function's signature.
        arg: &'static str,
        /// Units the other arguments call for.
        expected: usize,
        /// Units of the mask given.
        found: usize,
    },
    /// A matrix argument has the wrong shape.
    Shape {
        /// The argument's name in the function's signature.
        arg: &'static str,
        /// `(rows, cols)` the other arguments call for.
        expected: (usize, usize),
        /// `(rows, cols)` given.
        found: (usize, usize),
    },
    /// An index at or past the end.
    Index {
        /// The index given.
        index: usize,
        /// The number of valid indices.
        len: usize,
    },
    /// A [`Level`](crate::Level) this CPU or build cannot run.
    LevelUnavailable {
        /// The level asked for.
        level: crate::Level,
    },
    /// A string that names no [`Level`](crate::Level).
    UnknownLevel,
    /// A caller-provided workspace is too small.
    Workspace {
        /// Elements needed.
        expected: usize,
        /// Elements given.
        found: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::KeepProb { value } => {
                write!(f, "keep probability must be in (0, 1], got {value}")
            }
            Error::DropRate { value } => write!(f, "drop rate must be in [0, 1), got {value}"),
            Error::MaskWords {
                len,
                expected,
                found,
            } => write!(
                f,
                "mask of {len} units needs {expected} u64 words, got {found}"
            ),
            Error::MaskTail { len, bit } => write!(
                f,
                "mask of {len} units has bit {bit} set; bits at or past the length must be zero"
            ),
            Error::MatrixBounds {
                rows,
                cols,
                row_stride,
                col_stride,
                data_len,
            } => write!(
                f,
                "{rows}x{cols} view with strides ({row_stride}, {col_stride}) does not fit in a slice of {data_len} elements"
            ),
            Error::MatrixAliasing {
                rows,
                cols,
                row_stride,
                col_stride,
            } => write!(
                f,
                "mutable {rows}x{cols} view with strides ({row_stride}, {col_stride}) maps two elements to one place"
            ),
            Error::Length {
                arg,
                expected,
                found,
            } => write!(f, "`{arg}` must have length {expected}, got {found}"),
            Error::MaskLength {
                arg,
                expected,
                found,
            } => write!(f, "`{arg}` must cover {expected} units, got {found}"),
            Error::Shape {
                arg,
                expected,
                found,
            } => write!(
                f,
                "`{arg}` must be {}x{}, got {}x{}",
                expected.0, expected.1, found.0, found.1
            ),
            Error::Index { index, len } => {
                write!(f, "index {index} is out of range for length {len}")
            }
            Error::LevelUnavailable { level } => {
                write!(
                    f,
                    "instruction-set level {level} is not available on this CPU"
                )
            }
            Error::UnknownLevel => {
                f.write_str("unknown level: expected scalar, avx2, avx512 or neon")
            }
            Error::Workspace { expected, found } => write!(
                f,
                "workspace must hold at least {expected} elements, got {found}"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Checks a vector argument's length.
pub(crate) fn check_len(arg: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Length {
            arg,
            expected,
            found,
        })
    }
}

/// Checks that a mask covers the units of the layer side it drops.
pub(crate) fn check_mask_len(
    arg: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::MaskLength {
            arg,
            expected,
            found,
        })
    }
}

/// Checks a matrix argument's shape.
pub(crate) fn check_shape(
    arg: &'static str,
    expected: (usize, usize),
    found: (usize, usize),
) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Shape {
            arg,
            expected,
            found,
        })
    }
}
