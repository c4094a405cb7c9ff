//! The shared-mask batch path (`alloc`): gather the kept units into a caller's workspace,
//! one matrixmultiply `sgemm`/`dgemm` on the compact operands, scatter the compact result.
//!
//! [`gemm`] computes `C = alpha · A · B + beta · C` on the kept rows and columns of `C`,
//! summing over the kept inner units, like the portable masked `arch::gemm`. A mask that
//! keeps every unit counts as no mask, and with no mask left the GEMM runs directly on the
//! caller's matrices. Otherwise:
//!
//! - `B` (inner x cols) is gathered once into the workspace if the inner or the column
//!   dimension is masked;
//! - where `A` is gathered and the compact `C` of all kept rows and columns is small
//!   (at most [`BLOCK_BYTES`]: `dX`, whose columns are the batch, and, under an output
//!   mask, the forward pass and small weight updates), the inner dimension is walked in
//!   blocks: per block, the kept rows of `A`'s block of columns are gathered (as wide a
//!   block as [`workspace_len`] leaves beside the compact `C`, at least
//!   [`MIN_INNER_BLOCK`] units) and the GEMM sums their product with `B`'s block of rows
//!   into the compact `C`, scattered once at the end. Every operand is packed once, as
//!   in a single GEMM call;
//! - otherwise the rows of `C` are walked in blocks of kept rows (whole mask words) whose
//!   gathered `A` and compact `C` take about [`BLOCK_BYTES`] (at least [`MIN_BLOCK`]
//!   rows); per block, the kept rows of `A` are gathered if the row or the inner
//!   dimension is masked, and the GEMM writes a compact block of `C` that is then
//!   scattered into the kept entries of `C` (if the row or the column dimension is
//!   masked). A block's gathered `A` and compact `C` are still in cache when the GEMM
//!   packs and the scatter reads them; `B` is packed again for each block.
//!
//! Gathers keep the source's contiguous dimension contiguous (a column-major source gives
//! a column-major compact copy), and the compact block of `C` has the layout of `C`, so
//! every gather and scatter streams along memory. Along a masked contiguous dimension
//! they walk the mask word by word, bit by bit.
//!
//! matrixmultiply allocates its own packing buffer in each call; bitdrop allocates
//! nothing.

use super::DroppedRows;
use crate::error::{check_mask_len, check_shape};
use crate::mat::RawMat;
use crate::{Element, Error, Mask, MatMut, MatRef};

/// Bytes of gathered `A` and compact `C` per block: the size of one core's L2 cache on
/// the machine this was tuned on (measured there: blocks of 512 kept rows made `dX` 25%
/// slower than blocks of 128, whose gathered `A` fits here; `dW`, whose blocks hold only
/// a compact `C`, gains from longer blocks, which repack `B` less often). `dX` now takes
/// blocks of the inner dimension instead (see the module's documentation): on a Zen 1
/// class host they made it 3% faster than blocks of rows at m = 128, 5% at m = 32, and
/// 16-22% with a row-major `W`, whose kept columns each block of rows gathered from every
/// row of `W` again.
const BLOCK_BYTES: usize = 512 * 1024;
/// The fewest kept rows a block of rows aims at, however wide its rows.
const MIN_BLOCK: usize = 64;
/// The fewest kept inner units a block of the inner dimension takes: matrixmultiply's own
/// depth block (`KC`, 256 for `sgemm` and `dgemm`). Narrower blocks would have its kernel
/// load and store the compact `C` more often than one call over the whole depth does.
const MIN_INNER_BLOCK: usize = 256;

/// Kept rows a block aims at when each of its rows holds `per_row` elements of `T` in
/// the workspace: `BLOCK_BYTES` worth, at least [`MIN_BLOCK`]. A block holds whole mask
/// words, the first ones whose kept units reach the target, so it has fewer than
/// `target + 64` rows.
const fn block_target<T>(per_row: usize) -> usize {
    let size = core::mem::size_of::<T>();
    let per_row_bytes = if per_row == 0 {
        1
    } else {
        per_row.saturating_mul(size)
    };
    let target = BLOCK_BYTES / per_row_bytes;
    if target > MIN_BLOCK {
        target
    } else {
        MIN_BLOCK
    }
}

/// Workspace elements [`gemm`] needs for `C (rows x cols) = A (rows x inner) · B (inner x
/// cols)`, whatever the masks: the gathered `B`, and one block of gathered `A` and of
/// compact `C`. A block of rows `p <= inner + cols` elements wide has fewer than
/// `max(BLOCK_BYTES / size / p, MIN_BLOCK) + 64` rows (and at most `rows`), so it holds at
/// most `min(rows · p, max((MIN_BLOCK + 63) · p, BLOCK_BYTES / size + 63 · p))` elements,
/// which grows with `p`. Saturates instead of overflowing (no slice is that long).
pub(crate) const fn workspace_len<T>(rows: usize, inner: usize, cols: usize) -> usize {
    let size = core::mem::size_of::<T>();
    let budget = BLOCK_BYTES / if size == 0 { 1 } else { size };
    let p = inner.saturating_add(cols);
    let narrow = (MIN_BLOCK + 63).saturating_mul(p);
    let wide = budget.saturating_add(63usize.saturating_mul(p));
    let block = if narrow > wide { narrow } else { wide };
    let all = rows.saturating_mul(p);
    let block = if all < block { all } else { block };
    inner.saturating_mul(cols).saturating_add(block)
}

/// matrixmultiply's `sgemm` / `dgemm`: `C ← alpha A B + beta C` on raw parts with element
/// strides `(row, col)` for each of `A` (m x k), `B` (k x n) and `C` (m x n).
pub(crate) type RawGemm<T> = unsafe fn(
    usize,
    usize,
    usize,
    T,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    *mut T,
    isize,
    isize,
);

/// The matrixmultiply entry point for `f32`.
pub(crate) const SGEMM: RawGemm<f32> = matrixmultiply::sgemm;
/// The matrixmultiply entry point for `f64`.
pub(crate) const DGEMM: RawGemm<f64> = matrixmultiply::dgemm;

/// A selection of the units `0..len` of one dimension: all of them (`words = None`) or
/// the set bits of `words` (bit `t` of word `w` is unit `64 w + t`; bits past `len` clear).
#[derive(Clone, Copy)]
struct Sel<'m> {
    words: Option<&'m [u64]>,
    len: usize,
    count: usize,
}

impl<'m> Sel<'m> {
    /// A dimension of `len` units under `mask` (checked to cover `len`); an all-kept mask
    /// is no mask.
    fn new(mask: Option<Mask<'m>>, len: usize) -> Self {
        match mask {
            Some(m) if !m.all_kept() => Sel {
                words: Some(m.words()),
                len,
                count: m.count_kept(),
            },
            _ => Sel {
                words: None,
                len,
                count: len,
            },
        }
    }

    fn masked(&self) -> bool {
        self.words.is_some()
    }
}

/// A checked dimension's stride as matrixmultiply takes it. A stride only matters for a
/// dimension longer than one, and then it is below the view's extent, which fits in
/// `isize` (a slice holds at most `isize::MAX` bytes); a dimension of one gets stride 1.
fn stride(len: usize, stride: usize) -> isize {
    if len <= 1 {
        1
    } else {
        isize::try_from(stride).unwrap_or(isize::MAX)
    }
}

/// Calls the GEMM on raw views: `c = alpha a b + beta c`.
///
/// # Safety
///
/// `a` is `m x k`, `b` is `k x n`, `c` is `m x n`, all three non-empty; every element of
/// each lies inside its allocation; `c`'s elements are distinct and disjoint from `a` and
/// `b`.
unsafe fn call<T: Element>(
    alpha: T,
    a: RawMat<*const T>,
    b: RawMat<*const T>,
    beta: T,
    c: RawMat<*mut T>,
) {
    debug_assert!(a.rows == c.rows && a.cols == b.rows && b.cols == c.cols);
    debug_assert!(c.rows > 0 && c.cols > 0 && a.cols > 0);
    if c.row_stride == 1 && c.col_stride != 1 {
        // matrixmultiply is faster writing C along its rows (measured: 1024 x 128 x 1024
        // into a column-major C takes about 15% longer than into a row-major one), so a
        // column-major C is computed as the row-major Cᵀ = Bᵀ Aᵀ.
        // SAFETY: the same elements, transposed.
        return unsafe { call(alpha, b.t(), a.t(), beta, c.t()) };
    }
    let (m, k, n) = (c.rows, a.cols, c.cols);
    // SAFETY: the caller's contract is matrixmultiply's: the pointers address `m x k`,
    // `k x n` and `m x n` elements with these strides, inside their allocations, and `c`
    // does not alias itself or the inputs. The strides are exact (see `stride`).
    unsafe {
        (T::mm_gemm())(
            m,
            k,
            n,
            alpha,
            a.ptr,
            stride(m, a.row_stride),
            stride(k, a.col_stride),
            b.ptr,
            stride(k, b.row_stride),
            stride(n, b.col_stride),
            beta,
            c.ptr,
            stride(m, c.row_stride),
            stride(n, c.col_stride),
        )
    }
}

/// `C[j,k] = alpha · Σ_p A[j,p] · B[p,k] + beta · C[j,k]` over kept inner units `p`, for
/// kept rows `j` and kept columns `k` of `C`; dropped entries of `c` are not written
/// (except that [`DroppedRows::Zero`] sets the dropped rows to 0 in the kept columns),
/// dropped inner columns of `a` and rows of `b` (and rows of `a` and columns of `b` in a
/// dropped row or column of `C`) never read. `beta = 0` overwrites without reading.
///
/// # Errors
///
/// If the shapes disagree, a mask has the wrong length, or `workspace` is shorter than
/// [`workspace_len`]. Nothing is written then.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Element>(
    c: MatMut<'_, T>,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    row_mask: Option<Mask<'_>>,
    inner_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
    dropped_rows: DroppedRows,
    workspace: &mut [T],
) -> Result<(), Error> {
    checked_gemm(
        c,
        alpha,
        a,
        false,
        b,
        beta,
        row_mask,
        inner_mask,
        col_mask,
        dropped_rows,
        workspace,
    )
}

/// [`gemm`] with `a` already compact: only the kept rows and kept inner columns of the
/// full `A`, in order (`count(row_mask) x count(inner_mask)`, as [`gather_kept`] makes
/// it, a mask that keeps every unit counting all of them). Nothing of `A` is gathered.
///
/// # Errors
///
/// As [`gemm`], `a`'s shape checked against the masks' counts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_compact_a<T: Element>(
    c: MatMut<'_, T>,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    row_mask: Option<Mask<'_>>,
    inner_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
    dropped_rows: DroppedRows,
    workspace: &mut [T],
) -> Result<(), Error> {
    checked_gemm(
        c,
        alpha,
        a,
        true,
        b,
        beta,
        row_mask,
        inner_mask,
        col_mask,
        dropped_rows,
        workspace,
    )
}

#[allow(clippy::too_many_arguments)]
fn checked_gemm<T: Element>(
    mut c: MatMut<'_, T>,
    alpha: T,
    a: MatRef<'_, T>,
    a_compact: bool,
    b: MatRef<'_, T>,
    beta: T,
    row_mask: Option<Mask<'_>>,
    inner_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
    dropped_rows: DroppedRows,
    workspace: &mut [T],
) -> Result<(), Error> {
    let (rows, cols) = c.shape();
    let inner = b.rows();
    check_shape("b", (inner, cols), b.shape())?;
    if let Some(m) = row_mask {
        check_mask_len("row_mask", rows, m.len())?;
    }
    if let Some(m) = inner_mask {
        check_mask_len("inner_mask", inner, m.len())?;
    }
    if let Some(m) = col_mask {
        check_mask_len("col_mask", cols, m.len())?;
    }
    let (row_sel, inner_sel) = (Sel::new(row_mask, rows), Sel::new(inner_mask, inner));
    if a_compact {
        check_shape("a", (row_sel.count, inner_sel.count), a.shape())?;
    } else {
        check_shape("a", (rows, inner), a.shape())?;
    }
    let expected = workspace_len::<T>(rows, inner, cols);
    if workspace.len() < expected {
        return Err(Error::Workspace {
            expected,
            found: workspace.len(),
        });
    }
    let g = Masked {
        c: c.raw_mut(),
        alpha,
        a: a.raw(),
        a_compact,
        b: b.raw(),
        beta,
        rows: row_sel,
        inner: inner_sel,
        cols: Sel::new(col_mask, cols),
        dropped_rows,
        ws: workspace.as_mut_ptr(),
    };
    // SAFETY: the views' constructors put every element inside its slice and made `c`'s
    // elements distinct; `c` and `workspace` are borrowed mutably while `a` and `b` are
    // shared borrows, so all are disjoint; shapes (a compact `a`'s against the masks'
    // counts) and mask lengths were checked above (a `Mask` has words_for(len) words with
    // clear tails, its count is its set bits), and the workspace holds
    // `workspace_len(rows, inner, cols)` elements.
    unsafe { g.run() };
    Ok(())
}

/// `C = alpha · A · B + beta · C` on whole matrices: matrixmultiply on the views as they
/// are, no workspace.
///
/// # Errors
///
/// If the shapes disagree. Nothing is written then.
pub(crate) fn gemm_dense<T: Element>(
    mut c: MatMut<'_, T>,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
) -> Result<(), Error> {
    let (rows, inner) = a.shape();
    let cols = c.cols();
    check_shape("b", (inner, cols), b.shape())?;
    check_shape("c", (rows, cols), c.shape())?;
    let g = Masked {
        c: c.raw_mut(),
        alpha,
        a: a.raw(),
        a_compact: false,
        b: b.raw(),
        beta,
        rows: Sel::new(None, rows),
        inner: Sel::new(None, inner),
        cols: Sel::new(None, cols),
        dropped_rows: DroppedRows::Untouched,
        ws: core::ptr::null_mut(),
    };
    // SAFETY: as in `checked_gemm`; with no mask `run` calls the GEMM on the views
    // directly (or scales `c` when `inner` is 0) and never touches the workspace.
    unsafe { g.run() };
    Ok(())
}

/// Copies the kept rows x kept columns of `src` into the front of `dst` as a compact
/// matrix (a mask that keeps every unit counting all of them) in the source's contiguous
/// direction, and returns it.
///
/// # Errors
///
/// If a mask has the wrong length or `dst` is shorter than the compact matrix. Nothing
/// is written then.
pub(crate) fn gather_kept<'d, T: Element>(
    src: MatRef<'_, T>,
    row_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
    dst: &'d mut [T],
) -> Result<MatMut<'d, T>, Error> {
    let (rows, cols) = src.shape();
    if let Some(m) = row_mask {
        check_mask_len("row_mask", rows, m.len())?;
    }
    if let Some(m) = col_mask {
        check_mask_len("col_mask", cols, m.len())?;
    }
    let (rows, cols) = (Sel::new(row_mask, rows), Sel::new(col_mask, cols));
    let expected = rows.count.saturating_mul(cols.count);
    if dst.len() < expected {
        return Err(Error::Workspace {
            expected,
            found: dst.len(),
        });
    }
    let compact = if expected == 0 {
        RawMat {
            ptr: dst.as_ptr(),
            rows: rows.count,
            cols: cols.count,
            row_stride: 1,
            col_stride: 1,
        }
    } else {
        // SAFETY: `src` is a checked view of `rows.len x cols.len` elements inside its
        // slice; `dst` holds at least `rows.count * cols.count` elements and is borrowed
        // mutably, so disjoint from `src`; the selections come from checked masks.
        unsafe { gather(src.raw(), rows, cols, dst.as_mut_ptr()) }
    };
    MatMut::new(
        dst,
        compact.rows,
        compact.cols,
        compact.row_stride,
        compact.col_stride,
    )
}

/// Writes a compact matrix `p` (`count(row_mask) x count(col_mask)`, as
/// [`gather_kept`] makes it) into the kept rows x kept columns of `c`; no other entry of
/// `c` is written.
///
/// # Errors
///
/// If a mask has the wrong length or `p`'s shape is not the masks' counts. Nothing is
/// written then.
pub(crate) fn scatter_kept<T: Element>(
    p: MatRef<'_, T>,
    mut c: MatMut<'_, T>,
    row_mask: Option<Mask<'_>>,
    col_mask: Option<Mask<'_>>,
) -> Result<(), Error> {
    let (rows, cols) = c.shape();
    if let Some(m) = row_mask {
        check_mask_len("row_mask", rows, m.len())?;
    }
    if let Some(m) = col_mask {
        check_mask_len("col_mask", cols, m.len())?;
    }
    let (rows, cols) = (Sel::new(row_mask, rows), Sel::new(col_mask, cols));
    check_shape("p", (rows.count, cols.count), p.shape())?;
    if rows.count == 0 || cols.count == 0 {
        return Ok(());
    }
    // SAFETY: `p` is a checked `rows.count x cols.count` view, `c` a checked view of
    // distinct elements, borrowed mutably while `p` is shared, so disjoint; the
    // selections come from checked masks of `c`'s extents.
    unsafe { scatter(p.raw(), c.raw_mut(), rows, cols, T::ZERO, false) };
    Ok(())
}

/// A checked masked product on raw parts (see [`gemm`]).
struct Masked<'m, T> {
    c: RawMat<*mut T>,
    alpha: T,
    a: RawMat<*const T>,
    /// `a` holds only the kept rows and kept inner columns (`rows.count x inner.count`),
    /// gathered beforehand ([`gemm_compact_a`]).
    a_compact: bool,
    b: RawMat<*const T>,
    beta: T,
    rows: Sel<'m>,
    inner: Sel<'m>,
    cols: Sel<'m>,
    dropped_rows: DroppedRows,
    ws: *mut T,
}

impl<T: Element> Masked<'_, T> {
    /// # Safety
    ///
    /// `c` is `rows.len x cols.len`, `a` is `rows.len x inner.len` (`rows.count x
    /// inner.count` if `a_compact`), `b` is `inner.len x cols.len`, each inside its
    /// allocation, `c` of distinct elements and
    /// disjoint from the others; the selections' words cover their lengths with clear
    /// tails and `count` set bits; `ws` is valid for `workspace_len` writes and disjoint
    /// from all.
    unsafe fn run(&self) {
        let (rows, inner, cols) = (self.rows, self.inner, self.cols);
        let zero_rows = self.dropped_rows == DroppedRows::Zero && rows.masked();
        if zero_rows && (rows.count == 0 || inner.count == 0) {
            // SAFETY: the caller's contract.
            unsafe { zero_dropped_rows(self.c, rows, cols) };
        }
        if rows.count == 0 || cols.count == 0 {
            return;
        }
        if inner.count == 0 {
            // No terms: C = beta C on the kept entries; beta = 1 writes nothing (a sum of
            // nothing added would not leave the entries bitwise untouched).
            if self.beta != T::ONE {
                // SAFETY: the caller's contract.
                unsafe { self.scale_kept() };
            }
            return;
        }
        if !rows.masked() && !inner.masked() && !cols.masked() {
            // Every unit kept: the GEMM on the caller's matrices.
            // SAFETY: the caller's contract, all three views non-empty.
            unsafe { call(self.alpha, self.a, self.b, self.beta, self.c) };
            return;
        }
        let mut ws = self.ws;
        // SAFETY: the workspace is split into the gathered B (at most inner x cols, which
        // `workspace_len` includes, so `room` does not underflow), then either the inner
        // blocks' compact C and block of A, which `inner_block_width` fits in `room` (the
        // workspace past B), or one block of rows of A and one of C:
        // blocks have at most r = min(rows, target + 63) rows (`next_block`), r x (a_row
        // + c_row) elements together, which `workspace_len` bounds (see there). Every
        // view formed below lies inside its matrix by the caller's contract.
        unsafe {
            let mut room = workspace_len::<T>(rows.len, inner.len, cols.len);
            let b = if inner.masked() || cols.masked() {
                let g = gather(self.b, inner, cols, ws);
                ws = ws.add(inner.count * cols.count);
                room -= inner.count * cols.count;
                g
            } else {
                self.b
            };
            let gather_a = !self.a_compact && (rows.masked() || inner.masked());
            let compact_c = rows.masked() || cols.masked();
            let a_row = if gather_a { inner.count } else { 0 };
            let c_row = if compact_c { cols.count } else { 0 };
            if gather_a
                && compact_c
                && let Some(width) = inner_block_width::<T>(rows.count, cols.count, room)
            {
                self.run_inner_blocks(b, ws, width, zero_rows);
                return;
            }
            let target = block_target::<T>(a_row + c_row);
            let a_ws = ws;
            // A block has at most min(rows, target + 63) rows.
            let c_ws = ws.add(rows.len.min(target + 63) * a_row);
            let mut start = 0; // first row of the block
            let mut kept_before = 0; // kept rows before it: its first row in a compact `a`
            while start < rows.len {
                let (end, block) = next_block(rows, start, target);
                let a = if self.a_compact {
                    self.a.rows_from(kept_before, block.count)
                } else {
                    self.a.rows_from(start, end - start)
                };
                let c = self.c.rows_from(start, end - start);
                let mut zeroed = false;
                if block.count > 0 {
                    let a = if gather_a {
                        gather(a, block, inner, a_ws)
                    } else {
                        a
                    };
                    if compact_c {
                        let packed = compact_like(c, block.count, cols.count, c_ws);
                        call(self.alpha, a, b, T::ZERO, packed);
                        zeroed = scatter(packed.as_const(), c, block, cols, self.beta, zero_rows);
                    } else {
                        call(self.alpha, a, b, self.beta, c);
                    }
                }
                if zero_rows && !zeroed {
                    zero_dropped_rows(c, block, cols);
                }
                kept_before += block.count;
                start = end;
            }
        }
    }

    /// The product in blocks of the inner dimension, up to `width` kept inner units each:
    /// per block, the kept rows of `A`'s block of columns are gathered and their product
    /// with `B`'s block of rows is summed into one compact `C` of all the kept rows and
    /// columns, which is scattered once at the end. Each operand is then packed once, as
    /// in one GEMM call, where blocks of rows pack `B` once per block (the whole `dZ` for
    /// each block of `dX`'s kept rows), and the gathered `A` stays a cache-sized block.
    ///
    /// # Safety
    ///
    /// As for [`Masked::run`], and as `run` has reached it: `a` is not compact (it is
    /// `rows.len x inner.len`); `rows.count`, `inner.count` and `cols.count` are not 0
    /// (the GEMM's dimensions, and the first block's product overwrites the whole compact
    /// `C`); `b` is `B` as `run` has it (gathered if the inner or the column dimension is
    /// masked, else the caller's); `ws` is valid for `rows.count x (cols.count + width +
    /// 63)` writes, disjoint from all.
    unsafe fn run_inner_blocks(
        &self,
        b: RawMat<*const T>,
        ws: *mut T,
        width: usize,
        zero_rows: bool,
    ) {
        let (rows, inner, cols) = (self.rows, self.inner, self.cols);
        let b_gathered = inner.masked() || cols.masked();
        // SAFETY: the compact C takes rows.count x cols.count elements at `ws`, and a
        // block of gathered A, rows.count x (fewer than width + 64) kept inner units
        // (`next_block`), the rest of the caller's room. Every view below lies inside
        // its matrix by the caller's contract.
        unsafe {
            let compact = compact_like(self.c, rows.count, cols.count, ws);
            let a_ws = ws.add(rows.count * cols.count);
            let mut start = 0; // first inner unit of the block
            let mut kept_before = 0; // kept inner units before it: its first row in a gathered `b`
            let mut beta = T::ZERO; // the first block's product overwrites the compact C
            while start < inner.len {
                let (end, block) = next_block(inner, start, width);
                if block.count > 0 {
                    let a_cols = self.a.t().rows_from(start, end - start).t();
                    let a = gather(a_cols, rows, block, a_ws);
                    let b = if b_gathered {
                        b.rows_from(kept_before, block.count)
                    } else {
                        b.rows_from(start, end - start)
                    };
                    call(self.alpha, a, b, beta, compact);
                    beta = T::ONE;
                }
                kept_before += block.count;
                start = end;
            }
            let zeroed = scatter(compact.as_const(), self.c, rows, cols, self.beta, zero_rows);
            if zero_rows && !zeroed {
                zero_dropped_rows(self.c, rows, cols);
            }
        }
    }

    /// `C[j,k] = beta · C[j,k]` on the kept entries (`beta = 0`: exactly 0, unread).
    ///
    /// # Safety
    ///
    /// As for [`Masked::run`].
    unsafe fn scale_kept(&self) {
        let c = self.c;
        for j in kept(self.rows) {
            for k in kept(self.cols) {
                // SAFETY: j < c.rows, k < c.cols.
                unsafe {
                    let p = c.ptr.add(j * c.row_stride + k * c.col_stride);
                    *p = if self.beta == T::ZERO {
                        T::ZERO
                    } else {
                        self.beta * *p
                    };
                }
            }
        }
    }
}

/// The block of rows from `start`: whole words of `rows`' mask until the block keeps at
/// least `target` rows (or `target` rows without a mask), cut at `rows.len`. Returns the
/// end row and the block's selection (its words start at `start`, a multiple of 64).
fn next_block(rows: Sel<'_>, start: usize, target: usize) -> (usize, Sel<'_>) {
    match rows.words {
        None => {
            let end = rows.len.min(start + target);
            let len = end - start;
            (
                end,
                Sel {
                    words: None,
                    len,
                    count: len,
                },
            )
        }
        Some(words) => {
            let first = start / 64;
            let mut last = first;
            let mut count = 0;
            while count < target && last < words.len() {
                count += words[last].count_ones() as usize;
                last += 1;
            }
            let end = rows.len.min(64 * last);
            (
                end,
                Sel {
                    words: Some(&words[first..last]),
                    len: end - start,
                    count,
                },
            )
        }
    }
}

/// Kept inner units per block for [`Masked::run_inner_blocks`], if its compact `C`
/// (`rows x cols`, kept counts) takes at most [`BLOCK_BYTES`], so that it stays in cache
/// while each block's product is summed into it, and it and a block of gathered `A` at
/// least [`MIN_INNER_BLOCK`] units wide fit in `room` elements. A block of whole mask
/// words keeps fewer than `width + 64` units: the width leaves room for 63 more.
const fn inner_block_width<T>(rows: usize, cols: usize, room: usize) -> Option<usize> {
    let size = core::mem::size_of::<T>();
    let c = rows.saturating_mul(cols);
    if rows == 0 || c.saturating_mul(size) > BLOCK_BYTES || c > room {
        return None;
    }
    let width = ((room - c) / rows).saturating_sub(63);
    if width >= MIN_INNER_BLOCK {
        Some(width)
    } else {
        None
    }
}

/// The kept units of a selection, in increasing order.
fn kept(sel: Sel<'_>) -> impl Iterator<Item = usize> + '_ {
    let all = sel.words.is_none().then_some(0..sel.len);
    let some = sel.words.map(|words| {
        words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            core::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let t = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    64 * w + t
                })
            })
        })
    });
    all.into_iter().flatten().chain(some.into_iter().flatten())
}

impl<T> RawMat<*const T> {
    /// Rows `start .. start + len` (wrapping: an empty block is never dereferenced).
    fn rows_from(self, start: usize, len: usize) -> Self {
        RawMat {
            ptr: self.ptr.wrapping_add(start * self.row_stride),
            rows: len,
            ..self
        }
    }
}

impl<T> RawMat<*mut T> {
    /// Rows `start .. start + len` (wrapping, as for the read-only view).
    fn rows_from(self, start: usize, len: usize) -> Self {
        RawMat {
            ptr: self.ptr.wrapping_add(start * self.row_stride),
            rows: len,
            ..self
        }
    }

    fn as_const(self) -> RawMat<*const T> {
        RawMat {
            ptr: self.ptr.cast_const(),
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }
}

/// Whether a view's rows (rather than its columns) are its contiguous direction.
fn rows_contiguous<P>(m: &RawMat<P>) -> bool {
    m.col_stride == 1 || (m.row_stride != 1 && m.col_stride <= m.row_stride)
}

/// A compact `rows x cols` matrix at `ws` in the layout of `like` (row-major if `like`'s
/// rows are contiguous, else column-major).
fn compact_like<T>(like: RawMat<*mut T>, rows: usize, cols: usize, ws: *mut T) -> RawMat<*mut T> {
    let (row_stride, col_stride) = if rows_contiguous(&like) {
        (cols, 1)
    } else {
        (1, rows)
    };
    RawMat {
        ptr: ws,
        rows,
        cols,
        row_stride,
        col_stride,
    }
}

/// Copies the kept rows x kept columns of `src` into `dst` as a compact matrix with the
/// source's contiguous direction, and returns it.
///
/// # Safety
///
/// `src` is `rows.len x cols.len` inside its allocation; `dst` is valid for
/// `rows.count * cols.count` writes and disjoint from `src`; selections as for
/// [`Masked::run`].
unsafe fn gather<T: Element>(
    src: RawMat<*const T>,
    rows: Sel<'_>,
    cols: Sel<'_>,
    dst: *mut T,
) -> RawMat<*const T> {
    if !rows_contiguous(&src) {
        // SAFETY: the same on the transposes.
        return unsafe { gather(src.t(), cols, rows, dst).t() };
    }
    let mut out = dst;
    if let Some(words) = cols.words
        && src.col_stride == 1
    {
        // Contiguous rows along a masked dimension: the level's vector kernel.
        let kernel = super::kernels::<T>().compress;
        let total = rows.count * cols.count;
        for (jp, j) in kept(rows).enumerate() {
            let row = super::Compress {
                // SAFETY: row j of `src` lies inside its view.
                src: unsafe { src.ptr.add(j * src.row_stride) },
                // SAFETY: row jp of the compact matrix lies inside `dst`.
                dst: unsafe { dst.add(jp * cols.count) },
                len: cols.len,
                room: total - jp * cols.count,
                words,
            };
            // SAFETY: row j of `src` is cols.len contiguous elements; `dst` has room for
            // the rest of the compact matrix from row jp, at least cols.count (the set
            // bits of `words`), and is disjoint from `src`. Detected level.
            unsafe { kernel(&row) };
        }
        return RawMat {
            ptr: dst.cast_const(),
            rows: rows.count,
            cols: cols.count,
            row_stride: cols.count,
            col_stride: 1,
        };
    }
    for j in kept_prefetching(
        rows,
        src.ptr,
        src.row_stride,
        cols.len,
        src.col_stride,
        true,
    ) {
        // SAFETY: row j of `src` has cols.len elements at col_stride apart; `out` has
        // room for cols.count more.
        unsafe {
            compress(src.ptr.add(j * src.row_stride), src.col_stride, cols, out);
            out = out.add(cols.count);
        }
    }
    RawMat {
        ptr: dst.cast_const(),
        rows: rows.count,
        cols: cols.count,
        row_stride: cols.count,
        col_stride: 1,
    }
}

/// `dst[k] = src[i_k · stride]` for the `k`-th kept unit `i_k` of `sel`.
///
/// # Safety
///
/// `src` valid for reads at `i · stride`, `i < sel.len`; `dst` for `sel.count` writes.
#[inline(always)]
unsafe fn compress<T: Copy>(src: *const T, stride: usize, sel: Sel<'_>, dst: *mut T) {
    // SAFETY: every index is a unit below sel.len, every output index below sel.count.
    unsafe {
        match sel.words {
            None if stride == 1 => core::ptr::copy_nonoverlapping(src, dst, sel.len),
            None => {
                for i in 0..sel.len {
                    *dst.add(i) = *src.add(i * stride);
                }
            }
            Some(words) => {
                let mut k = 0;
                for (w, &word) in words.iter().enumerate() {
                    let base = src.add(64 * w * stride);
                    if word == u64::MAX && stride == 1 {
                        core::ptr::copy_nonoverlapping(base, dst.add(k), 64);
                        k += 64;
                        continue;
                    }
                    let mut bits = word;
                    while bits != 0 {
                        let t = bits.trailing_zeros() as usize;
                        *dst.add(k) = *base.add(t * stride);
                        k += 1;
                        bits &= bits - 1;
                    }
                }
            }
        }
    }
}

/// `C[j,k] = P[j',k'] + beta · C[j,k]` for the kept rows `j` (the `j'`-th kept) and kept
/// columns `k` (the `k'`-th) of `c`; `beta = 0` writes `P` without reading `C`.
///
/// With `zero_rows` and `beta = 0`, it may also set the dropped rows to 0 in the kept
/// columns, in the same pass, where its vector kernel does the writing (a column-major
/// `c`); it returns whether it did.
///
/// # Safety
///
/// `p` is `rows.count x cols.count` inside its allocation; `c` is `rows.len x cols.len`
/// of distinct elements inside its own, disjoint from `p`; selections as for
/// [`Masked::run`].
unsafe fn scatter<T: Element>(
    p: RawMat<*const T>,
    c: RawMat<*mut T>,
    rows: Sel<'_>,
    cols: Sel<'_>,
    beta: T,
    zero_rows: bool,
) -> bool {
    if rows_contiguous(&c) {
        // SAFETY: the caller's contract.
        unsafe { scatter_rows(p, c, rows, cols, beta, false) }
    } else {
        // The transposes' rows are contiguous (see `rows_contiguous`), and `c`'s rows are
        // their columns: the ones the vector kernel can zero.
        // SAFETY: the same on the transposes.
        unsafe { scatter_rows(p.t(), c.t(), cols, rows, beta, zero_rows) }
    }
}

/// [`scatter`] on a `c` whose rows are contiguous (`rows_contiguous`); with `zero_cols`
/// and `beta = 0`, its vector kernel also sets the dropped columns to 0. Returns whether
/// they were.
///
/// # Safety
///
/// As for [`scatter`], and `rows_contiguous(&c)`.
unsafe fn scatter_rows<T: Element>(
    p: RawMat<*const T>,
    c: RawMat<*mut T>,
    rows: Sel<'_>,
    cols: Sel<'_>,
    beta: T,
    zero_cols: bool,
) -> bool {
    let zero_cols = zero_cols && beta == T::ZERO;
    if let Some(words) = cols.words
        && p.col_stride == 1
        && c.col_stride == 1
    {
        // Contiguous rows along a masked dimension: the level's vector kernel expands each
        // row's compact values into its kept units. The rows are prefetched ahead only
        // where the kept ones lie apart. Consecutive rows, the hardware streams itself,
        // and whole rows prefetched on top of its stream stalled on the line fill
        // buffers (row-major batch dW, 1024 x 1024, keep 0.5, interleaved, on a Zen 1
        // class host, three runs: at m = 128 0.60-0.61x dense with them, 0.58x without;
        // at m = 32 0.75x against 0.70x). A Zen 3 class host had measured them 3-4%
        // faster at m = 128.
        let kernel = super::kernels::<T>().expand;
        let mut rows_ahead = kept_prefetching(
            rows,
            c.ptr.cast_const(),
            c.row_stride,
            cols.len,
            1,
            rows.masked(),
        );
        // The kernel takes up to EXPAND_ROWS rows at a time: consecutive rows of `p`
        // (compact, one per kept row) into kept rows of `c`, wherever those lie.
        let mut jp = 0;
        loop {
            let mut dst = [core::ptr::null_mut(); super::EXPAND_ROWS];
            let mut count = 0;
            for (q, j) in (&mut rows_ahead).take(super::EXPAND_ROWS).enumerate() {
                // SAFETY: row j of `c` lies inside its view.
                dst[q] = unsafe { c.ptr.add(j * c.row_stride) };
                count = q + 1;
            }
            if count == 0 {
                break;
            }
            let block = super::Expand {
                // SAFETY: row jp of `p` lies inside its view.
                src: unsafe { p.ptr.add(jp * p.row_stride) },
                src_stride: p.row_stride,
                dst,
                rows: count,
                len: cols.len,
                words,
                beta,
                zero_dropped: zero_cols,
            };
            // SAFETY: each of the `count` rows of `c` is cols.len contiguous elements, a
            // distinct kept row; rows jp .. jp + count of `p` each hold cols.count (the
            // set bits of `words`) contiguous ones, disjoint from `c`; the selection's
            // words cover cols.len with clear tails. The table's level was detected on
            // this CPU.
            unsafe { kernel(&block) };
            jp += count;
        }
        return zero_cols;
    }
    let rows_ahead = kept_prefetching(
        rows,
        c.ptr.cast_const(),
        c.row_stride,
        cols.len,
        c.col_stride,
        true,
    );
    for (jp, j) in rows_ahead.enumerate() {
        // SAFETY: row jp of `p` has cols.count elements, row j of `c` cols.len.
        unsafe {
            let src = p.ptr.add(jp * p.row_stride);
            let dst = c.ptr.add(j * c.row_stride);
            if beta == T::ZERO {
                expand::<T, Assign>(src, p.col_stride, dst, c.col_stride, cols, beta);
            } else if beta == T::ONE {
                expand::<T, Add>(src, p.col_stride, dst, c.col_stride, cols, beta);
            } else {
                expand::<T, Axpby>(src, p.col_stride, dst, c.col_stride, cols, beta);
            }
        }
    }
    false
}

/// `C[j,k] = 0` for the dropped rows `j` and kept columns `k` of `c`, walking each row
/// along its own direction (a whole row at a time when it is contiguous and unmasked).
///
/// # Safety
///
/// `c` is `rows.len x cols.len` of distinct elements inside its allocation; selections as
/// for [`Masked::run`].
unsafe fn zero_dropped_rows<T: Element>(c: RawMat<*mut T>, rows: Sel<'_>, cols: Sel<'_>) {
    let Some(words) = rows.words else {
        return;
    };
    for (w, &word) in words.iter().enumerate() {
        let mut dropped = !word & crate::mask::valid_bits(rows.len - 64 * w);
        while dropped != 0 {
            let j = 64 * w + dropped.trailing_zeros() as usize;
            dropped &= dropped - 1;
            // SAFETY: j < rows.len, and every kept k < cols.len: row j of `c` is inside it.
            unsafe {
                let row = c.ptr.add(j * c.row_stride);
                if cols.words.is_none() && c.col_stride == 1 {
                    core::slice::from_raw_parts_mut(row, cols.len).fill(T::ZERO);
                } else {
                    for k in kept(cols) {
                        *row.add(k * c.col_stride) = T::ZERO;
                    }
                }
            }
        }
    }
}

/// How many kept rows ahead [`gather`] and [`scatter`] prefetch (measured on a 1024 x
/// 1024 column-major `dW` at m = 128, whose kept rows are 1 KiB apart: one row ahead and
/// four gave the same, both 7% faster than none).
const PREFETCH_ROWS: usize = 4;

/// The kept units `j` of `rows`, in order; handing out each, it prefetches row `j'` of a
/// matrix at `base` (`len` elements `col_stride` apart from `base + j' · row_stride`),
/// [`PREFETCH_ROWS`] kept units ahead, if `prefetch`.
fn kept_prefetching<'m, T: 'm>(
    rows: Sel<'m>,
    base: *const T,
    row_stride: usize,
    len: usize,
    col_stride: usize,
    prefetch: bool,
) -> impl Iterator<Item = usize> + 'm {
    let mut ahead = kept(rows)
        .skip(PREFETCH_ROWS)
        .take(if prefetch { usize::MAX } else { 0 });
    kept(rows).inspect(move |_| {
        if let Some(j) = ahead.next() {
            prefetch_span(base.wrapping_add(j * row_stride), len, col_stride);
        }
    })
}

/// Hints that the `len` elements `stride` apart from `p` will be read or written soon:
/// the kept rows of a scatter lie apart in memory, where the hardware prefetcher loses
/// the stream at every jump. Only contiguous spans are worth it; others are left alone.
#[inline(always)]
fn prefetch_span<T>(p: *const T, len: usize, stride: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if stride == 1 {
        let bytes = len * core::mem::size_of::<T>();
        let p = p.cast::<i8>();
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch is a hint that never faults, whatever the address (SSE,
            // baseline on x86_64).
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    p.wrapping_add(off),
                )
            };
            off += 64;
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = (p, len, stride);
}

/// How a computed value `v` lands on an output entry `d`.
trait Land<T: Element> {
    fn land(v: T, d: &mut T, beta: T);
}

struct Assign;
struct Add;
struct Axpby;

impl<T: Element> Land<T> for Assign {
    #[inline(always)]
    fn land(v: T, d: &mut T, _: T) {
        *d = v;
    }
}

impl<T: Element> Land<T> for Add {
    #[inline(always)]
    fn land(v: T, d: &mut T, _: T) {
        *d += v;
    }
}

impl<T: Element> Land<T> for Axpby {
    #[inline(always)]
    fn land(v: T, d: &mut T, beta: T) {
        *d = v + beta * *d;
    }
}

/// `dst[i_k · dst_stride] ← src[k · src_stride]` for the `k`-th kept unit `i_k` of `sel`.
///
/// # Safety
///
/// `src` valid for reads at `k · src_stride`, `k < sel.count`; `dst` valid for reads and
/// writes at `i · dst_stride`, `i < sel.len`, disjoint from `src`.
#[inline(always)]
unsafe fn expand<T: Element, L: Land<T>>(
    src: *const T,
    src_stride: usize,
    dst: *mut T,
    dst_stride: usize,
    sel: Sel<'_>,
    beta: T,
) {
    // SAFETY: every output index is a unit below sel.len, every input index below
    // sel.count.
    unsafe {
        match sel.words {
            None if src_stride == 1 && dst_stride == 1 => {
                let src = core::slice::from_raw_parts(src, sel.len);
                let dst = core::slice::from_raw_parts_mut(dst, sel.len);
                for (d, &v) in dst.iter_mut().zip(src) {
                    L::land(v, d, beta);
                }
            }
            None => {
                for i in 0..sel.len {
                    L::land(
                        *src.add(i * src_stride),
                        &mut *dst.add(i * dst_stride),
                        beta,
                    );
                }
            }
            Some(words) => {
                let mut k = 0;
                for (w, &word) in words.iter().enumerate() {
                    let base = dst.add(64 * w * dst_stride);
                    let mut bits = word;
                    while bits != 0 {
                        let t = bits.trailing_zeros() as usize;
                        L::land(
                            *src.add(k * src_stride),
                            &mut *base.add(t * dst_stride),
                            beta,
                        );
                        k += 1;
                        bits &= bits - 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Timings of the pieces (gather, GEMM, scatter) on the benches' shapes, for tuning:
    //! `cargo test --release --lib mm::tests::pieces -- --ignored --nocapture`.

    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Mask words of `n` units, each bit set with probability 1/2 (splitmix64, so even
    /// the first word of a small seed is well mixed), clear past `n`.
    fn words(n: usize, seed: u64) -> Vec<u64> {
        let mut s = seed;
        let mut w: Vec<u64> = (0..n.div_ceil(64))
            .map(|_| {
                s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let z = (s ^ (s >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect();
        if !n.is_multiple_of(64) {
            *w.last_mut().unwrap() &= (1 << (n % 64)) - 1;
        }
        w
    }

    /// This thread's CPU time in ms (the machine is shared).
    fn cpu_ms() -> f64 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 * 1e-6
    }

    fn median(mut f: impl FnMut()) -> f64 {
        let mut t: Vec<f64> = (0..15)
            .map(|_| {
                let s = cpu_ms();
                f();
                cpu_ms() - s
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[7]
    }

    /// The level's row kernels against their definitions, on rows long enough for the
    /// vector paths' whole words (AVX2's and AVX-512's spread of a plain load), at every
    /// level this CPU has. Cheap enough for miri, where CI runs the AVX-512 level: the
    /// kernel suites' shapes there are too small to reach these paths often.
    #[cfg(feature = "std")]
    #[test]
    fn row_kernels_match_their_definitions_at_every_level() {
        fn check<T: Element + core::fmt::Debug>(sentinel: T, value: impl Fn(usize) -> T) {
            // Miri interprets every lane: one row length (two whole words and a tail).
            let (lens, seeds): (&[usize], u64) = if cfg!(miri) {
                (&[130], 2)
            } else {
                (&[64, 130, 200], 4)
            };
            for &len in lens {
                for seed in 1..seeds {
                    // Kept units at about 7/8, 1/2 and 1/8 of the row.
                    let (a, b, c) = (words(len, seed), words(len, seed + 7), words(len, !seed));
                    let mut dense: Vec<u64> = a
                        .iter()
                        .zip(&b)
                        .zip(&c)
                        .map(|((a, b), c)| a | b | c)
                        .collect();
                    // A mixed first word with at least 64 kept units from it on (its
                    // second word all kept) takes the whole-word path.
                    if let Some(second) = dense.get_mut(1) {
                        *second = u64::MAX;
                    }
                    let half = a.clone();
                    let sparse: Vec<u64> = a
                        .iter()
                        .zip(&b)
                        .zip(&c)
                        .map(|((a, b), c)| a & b & c)
                        .collect();
                    for mut w in [dense, half, sparse] {
                        if len % 64 != 0 {
                            *w.last_mut().unwrap() &= (1 << (len % 64)) - 1;
                        }
                        let kept: Vec<usize> = (0..len)
                            .filter(|&i| w[i / 64] >> (i % 64) & 1 == 1)
                            .collect();
                        check_row(&w, len, &kept, sentinel, &value);
                    }
                }
            }
        }
        fn check_row<T: Element + core::fmt::Debug>(
            w: &[u64],
            len: usize,
            kept: &[usize],
            sentinel: T,
            value: &impl Fn(usize) -> T,
        ) {
            let kernels = super::super::kernels::<T>();
            let row: Vec<T> = (0..len).map(value).collect();
            // Compress, into exactly the room it needs and into a whole row's.
            for room in [kept.len(), len] {
                let mut out = vec![sentinel; room];
                let g = super::super::Compress {
                    src: row.as_ptr(),
                    dst: out.as_mut_ptr(),
                    len,
                    room,
                    words: w,
                };
                // SAFETY: `row` holds `len` elements, `out` `room` >= the kept count.
                unsafe { (kernels.compress)(&g) };
                for (k, &i) in kept.iter().enumerate() {
                    assert_eq!(
                        out[k].to_bits_u64(),
                        row[i].to_bits_u64(),
                        "compress, len {len}, unit {i}"
                    );
                }
            }
            // Each unit's place in a compact row, or None if dropped: a table rather
            // than a binary search of `kept` per entry, which under miri took two thirds
            // of this test's time.
            let mut place = vec![None; len];
            for (k, &i) in kept.iter().enumerate() {
                place[i] = Some(k);
            }
            // Expand: written, added, added with beta, and with the dropped units zeroed. The
            // dropped units hold sentinels (NaN), the kept ones numbers: arithmetic on a NaN
            // gives a payload miri chooses at random. One row at a time and several: the
            // source rows one after another, the output rows in reverse order with a gap
            // between them, which must keep its sentinels.
            let half = T::from_f64(0.5);
            let rows_cases: &[usize] = if cfg!(miri) {
                &[1, super::super::EXPAND_ROWS]
            } else {
                &[1, 2, 3, super::super::EXPAND_ROWS]
            };
            for &rows in rows_cases {
                let stride = len + 3;
                let compact: Vec<T> = (0..rows * kept.len()).map(|k| value(1000 + k)).collect();
                for (beta, zero_dropped) in [
                    (T::ZERO, false),
                    (T::ONE, false),
                    (half, false),
                    (T::ZERO, true),
                ] {
                    let mut out: Vec<T> = (0..rows * stride)
                        .map(|at| {
                            let i = at % stride;
                            if i < len && w[i / 64] >> (i % 64) & 1 == 1 {
                                value(2000 + at)
                            } else {
                                sentinel
                            }
                        })
                        .collect();
                    let before = out.clone();
                    // Source row q lands in output row rows - 1 - q.
                    // One pointer for the whole buffer, so that every row's keeps its
                    // right to it.
                    let base = out.as_mut_ptr();
                    let mut dst = [core::ptr::null_mut(); super::super::EXPAND_ROWS];
                    for (q, d) in dst.iter_mut().take(rows).enumerate() {
                        *d = base.wrapping_add((rows - 1 - q) * stride);
                    }
                    let e = super::super::Expand {
                        src: compact.as_ptr(),
                        src_stride: kept.len(),
                        dst,
                        rows,
                        len,
                        words: w,
                        beta,
                        zero_dropped,
                    };
                    // SAFETY: each output row holds `len` elements, disjoint from the
                    // others; `compact` holds `kept.len()` per source row.
                    unsafe { (kernels.expand)(&e) };
                    // Indexing slices, not vectors: under miri a vector's index is a
                    // chain of calls.
                    let (out, before, compact) = (&out[..], &before[..], &compact[..]);
                    for at in 0..rows * stride {
                        let (r, i) = (at / stride, at % stride);
                        let q = rows - 1 - r;
                        let want = match place.get(i).copied().flatten() {
                            Some(k) => {
                                let v = compact[q * kept.len() + k];
                                if beta == T::ZERO {
                                    v
                                } else {
                                    v + beta * before[at]
                                }
                            }
                            None if zero_dropped && i < len => T::ZERO,
                            None => before[at],
                        };
                        assert_eq!(
                            out[at].to_bits_u64(),
                            want.to_bits_u64(),
                            "expand, {rows} rows, beta {beta:?}, len {len}, row {r}, unit {i}"
                        );
                    }
                }
            }
        }
        for level in crate::Level::available() {
            super::super::with_thread_level(level, || {
                check::<f32>(f32::from_bits(0x7f80_beef), |i| (i as f32) * 0.25 - 7.0);
                check::<f64>(f64::from_bits(0x7ff0_dead_beef_0001), |i| {
                    (i as f64) * 0.125 - 3.0
                });
            });
        }
    }

    #[test]
    #[ignore]
    fn pieces() {
        let n = 1024;
        let m = 128;
        let w = words(n, 0x9e37_79b9_7f4a_7c15);
        let sel = Sel::new(Some(Mask::new(&w, n).unwrap()), n);
        let k = sel.count;
        let all = Sel::new(None, n);
        let src = vec![1.0f32; n * n];
        let mut dst = vec![0.0f32; n * n];
        let mut compact = vec![1.0f32; n * k];
        let full = |ptr: *const f32, col_major: bool| RawMat {
            ptr,
            rows: n,
            cols: n,
            row_stride: if col_major { 1 } else { n },
            col_stride: if col_major { n } else { 1 },
        };
        for col_major in [true, false] {
            let name = if col_major { "col-major" } else { "row-major" };
            // Gather of W's kept columns (forward, dX), all rows.
            // SAFETY: the buffers hold the n x n, n x m and compact matrices these raw views
            // and strides describe; outputs are distinct from inputs.
            let g = median(|| unsafe {
                gather(
                    full(src.as_ptr(), col_major),
                    all,
                    sel,
                    compact.as_mut_ptr(),
                );
            });
            // Scatter of dW's kept columns, beta = 1.
            // SAFETY: the buffers hold the n x n, n x m and compact matrices these raw views
            // and strides describe; outputs are distinct from inputs.
            let s = median(|| unsafe {
                let f = full(dst.as_ptr(), col_major);
                let c = RawMat {
                    ptr: dst.as_mut_ptr(),
                    rows: f.rows,
                    cols: f.cols,
                    row_stride: f.row_stride,
                    col_stride: f.col_stride,
                };
                let p = compact_like(c, n, k, compact.as_mut_ptr()).as_const();
                scatter(p, c, all, sel, 1.0, false);
            });
            std::println!("{name}: gather W[:, kept] {g:.3} ms, scatter-add dW[:, kept] {s:.3} ms");
        }
        // Dense dW = dZ Xᵀ (1024 x 128 x 1024), dZ and X column-major, into a column- or
        // row-major C, called as is or transposed.
        let dz = vec![0.5f32; n * m];
        let x = vec![0.25f32; n * m];
        for (name, rsc, csc, transposed) in [
            ("col-major C", 1, n, false),
            ("col-major C, transposed call", 1, n, true),
            ("row-major C", n, 1, false),
            ("row-major C, transposed call", n, 1, true),
        ] {
            // SAFETY: the buffers hold the n x n, n x m and compact matrices these raw views
            // and strides describe; outputs are distinct from inputs.
            let t = median(|| unsafe {
                let (a, rsa, csa) = (dz.as_ptr(), 1isize, n as isize);
                let (b, rsb, csb) = (x.as_ptr(), n as isize, 1isize);
                if transposed {
                    matrixmultiply::sgemm(
                        n,
                        m,
                        n,
                        1.0,
                        b,
                        csb,
                        rsb,
                        a,
                        csa,
                        rsa,
                        1.0,
                        dst.as_mut_ptr(),
                        csc as isize,
                        rsc as isize,
                    );
                } else {
                    matrixmultiply::sgemm(
                        n,
                        m,
                        n,
                        1.0,
                        a,
                        rsa,
                        csa,
                        b,
                        rsb,
                        csb,
                        1.0,
                        dst.as_mut_ptr(),
                        rsc as isize,
                        csc as isize,
                    );
                }
            });
            std::println!("dense sgemm, {name}: {t:.3} ms");
        }
        // The whole masked dW (col-major and row-major dW) against its parts.
        let mask = Mask::new(&w, n).unwrap();
        let mut ws = vec![0.0f32; workspace_len::<f32>(n, m, n)];
        for col_major in [true, false] {
            let t = median(|| {
                let (rs, cs) = if col_major { (1, n) } else { (n, 1) };
                let c = MatMut::new(&mut dst, n, n, rs, cs).unwrap();
                let a = MatRef::col_major(&dz, n, m).unwrap();
                let b = MatRef::col_major(&x, n, m).unwrap().t();
                let untouched = DroppedRows::Untouched;
                gemm(
                    c,
                    1.0,
                    a,
                    b,
                    1.0,
                    None,
                    None,
                    Some(mask),
                    untouched,
                    &mut ws,
                )
                .unwrap();
            });
            // SAFETY: the buffers hold the n x n, n x m and compact matrices these raw views
            // and strides describe; outputs are distinct from inputs.
            let g = median(|| unsafe {
                let xt = RawMat {
                    ptr: x.as_ptr(),
                    rows: m,
                    cols: n,
                    row_stride: n,
                    col_stride: 1,
                };
                gather(xt, Sel::new(None, m), sel, ws.as_mut_ptr());
            });
            std::println!(
                "masked dW (col-major {col_major}): {t:.3} ms, of which gather X {g:.3} ms"
            );
        }
        // The compact dW GEMM (1024 x 128 x k), row-major C, in one call or in blocks.
        let xk = vec![0.25f32; m * k];
        for rows in [1024, 512, 256, 128, 64] {
            // SAFETY: the buffers hold the n x n, n x m and compact matrices these raw views
            // and strides describe; outputs are distinct from inputs.
            let t = median(|| unsafe {
                for b in 0..n / rows {
                    matrixmultiply::sgemm(
                        rows,
                        m,
                        k,
                        1.0,
                        dz.as_ptr().add(b * rows),
                        1,
                        n as isize,
                        xk.as_ptr(),
                        k as isize,
                        1,
                        0.0,
                        compact.as_mut_ptr().add(b * rows * k),
                        k as isize,
                        1,
                    );
                }
            });
            std::println!("compact sgemm 1024 x 128 x {k} in blocks of {rows} rows: {t:.3} ms");
        }
    }
}
