//! The kernels, written once over [`Lanes`]; each level instantiates them inside its
//! `#[target_feature]` wrappers, where everything here inlines.
//!
//! Two loop shapes cover every operation:
//!
//! - **outer loops over kept units**: a dropped row or column of a matrix is skipped
//!   whole, so its memory is never touched (`kept`);
//! - **inner loops along a contiguous, masked dimension** (`walk`): the mask's words are
//!   read 64 units at a time; an all-ones word runs the dense vector code, a zero word
//!   costs one test, a mixed word visits only its non-empty `LANES`-chunks with the
//!   chunk's bits as the lane mask.

use super::lanes::Lanes;
use super::{Gemm, Gemv, Ger};
use crate::Element;
use crate::mask::valid_bits;

/// Where the kept units of an inner dimension come from.
pub(crate) trait Units: Copy {
    /// Mask word `w`.
    ///
    /// # Safety
    ///
    /// `w` is below the number of words of the dimension.
    unsafe fn word(self, w: usize) -> u64;
}

/// No mask: every unit kept. The dense code path, with the mask tests folded away.
#[derive(Clone, Copy)]
pub(crate) struct AllKept;

impl Units for AllKept {
    #[inline(always)]
    unsafe fn word(self, _w: usize) -> u64 {
        u64::MAX
    }
}

/// A mask's words.
#[derive(Clone, Copy)]
pub(crate) struct Bits(*const u64);

impl Units for Bits {
    #[inline(always)]
    unsafe fn word(self, w: usize) -> u64 {
        // SAFETY: the caller keeps `w` below the mask's word count.
        unsafe { *self.0.add(w) }
    }
}

/// What a loop along a masked dimension does with its kept elements.
trait Visit<V: Lanes> {
    /// Elements `i .. i + 64`, all kept.
    ///
    /// # Safety
    ///
    /// As for [`Visit::chunk`], for 64 elements.
    #[inline(always)]
    unsafe fn word(&mut self, i: usize) {
        for c in 0..64 / V::LANES {
            // SAFETY: the 64 elements from `i` are 64 / LANES whole chunks.
            unsafe { self.chunk(i + c * V::LANES) }
        }
    }
    /// Elements `i .. i + LANES`, all kept.
    ///
    /// # Safety
    ///
    /// The visitor's pointers are valid for these elements and the CPU has the
    /// features of `V`.
    unsafe fn chunk(&mut self, i: usize);
    /// Elements `i .. i + LANES`, lane `b` kept when bit `b` of `bits` is set.
    ///
    /// # Safety
    ///
    /// As for [`Visit::chunk`].
    unsafe fn partial(&mut self, i: usize, bits: u64);
    /// Element `i` alone, kept: one past the last whole chunk.
    ///
    /// # Safety
    ///
    /// The visitor's pointers are valid for element `i`.
    unsafe fn single(&mut self, i: usize);
}

/// Visits the kept elements of `0 .. n` in chunks of `V::LANES`.
///
/// # Safety
///
/// `units` has `words_for(n)` words with clear bits past `n`; `visit`'s pointers are
/// valid for elements `0 .. n`; the CPU has the features of `V`.
#[inline(always)]
unsafe fn walk<V: Lanes, U: Units, F: Visit<V>>(n: usize, units: U, visit: &mut F) {
    let whole_words = n / 64;
    for w in 0..whole_words {
        // SAFETY: w < n / 64 <= words_for(n); the elements 64w .. 64w + 64 are below n.
        unsafe {
            let word = units.word(w);
            if word == u64::MAX {
                visit.word(64 * w);
            } else {
                chunks::<V, F>(word, 64 * w, visit);
            }
        }
    }
    let rest = n % 64;
    if rest != 0 {
        let base = 64 * whole_words;
        // SAFETY: the last word exists since rest > 0.
        let word = unsafe { units.word(whole_words) } & valid_bits(rest);
        let in_chunks = rest / V::LANES * V::LANES;
        // SAFETY: whole chunks that end at or before `n`.
        unsafe { chunks::<V, F>(word & valid_bits(in_chunks), base, visit) };
        let mut tail = word >> in_chunks;
        while tail != 0 {
            // SAFETY: base + in_chunks + bit < base + rest = n.
            unsafe { visit.single(base + in_chunks + tail.trailing_zeros() as usize) };
            tail &= tail - 1;
        }
    }
}

/// Visits the non-empty chunks of one mask word whose unit 0 is element `base`.
///
/// # Safety
///
/// Every chunk with a set bit lies inside the visitor's valid elements.
#[inline(always)]
unsafe fn chunks<V: Lanes, F: Visit<V>>(mut word: u64, base: usize, visit: &mut F) {
    let mut i = base;
    while word != 0 {
        // Jump to the chunk holding the lowest set bit.
        let skip = word.trailing_zeros() as usize / V::LANES * V::LANES;
        word >>= skip;
        i += skip;
        let bits = word & V::ALL;
        // SAFETY: the chunk has a set bit, so the caller vouches for it.
        unsafe {
            if bits == V::ALL {
                visit.chunk(i);
            } else {
                visit.partial(i, bits);
            }
        }
        word = word.checked_shr(V::LANES as u32).unwrap_or(0);
        i += V::LANES;
    }
}

/// `y[k] += a · x[k]` over the kept `k`.
struct Axpy<V: Lanes> {
    a: V,
    a_scalar: V::Elem,
    x: *const V::Elem,
    y: *mut V::Elem,
}

impl<V: Lanes> Visit<V> for Axpy<V> {
    #[inline(always)]
    unsafe fn chunk(&mut self, i: usize) {
        // SAFETY: `Visit::chunk`'s contract.
        unsafe {
            let y = V::load(self.y.add(i));
            V::load(self.x.add(i))
                .mul_add(self.a, y)
                .store(self.y.add(i));
        }
    }
    #[inline(always)]
    unsafe fn partial(&mut self, i: usize, bits: u64) {
        // SAFETY: `Visit::partial`'s contract.
        unsafe {
            let y = V::load_masked(self.y.add(i), bits);
            let r = V::load_masked(self.x.add(i), bits).mul_add(self.a, y);
            r.store_masked(self.y.add(i), bits);
        }
    }
    #[inline(always)]
    unsafe fn single(&mut self, i: usize) {
        // SAFETY: `Visit::single`'s contract.
        unsafe { *self.y.add(i) += self.a_scalar * *self.x.add(i) }
    }
}

/// `Σ x[k] · y[k]` over the kept `k`, in four rotating accumulators so that consecutive
/// fused multiply-adds do not wait on each other.
struct Dot<V: Lanes> {
    x: *const V::Elem,
    y: *const V::Elem,
    acc: [V; 4],
    tail: V::Elem,
}

impl<V: Lanes> Dot<V> {
    #[inline(always)]
    unsafe fn new(x: *const V::Elem, y: *const V::Elem) -> Self {
        // SAFETY: the caller has the CPU features.
        let zero = unsafe { V::splat(V::Elem::ZERO) };
        Dot {
            x,
            y,
            acc: [zero; 4],
            tail: V::Elem::ZERO,
        }
    }

    #[inline(always)]
    fn push(&mut self, v: V) {
        let [_, a1, a2, a3] = self.acc;
        self.acc = [a1, a2, a3, v];
    }

    #[inline(always)]
    unsafe fn finish(self) -> V::Elem {
        let [a0, a1, a2, a3] = self.acc;
        // SAFETY: the caller has the CPU features.
        unsafe { a0.add(a1).add(a2.add(a3)).sum() + self.tail }
    }
}

impl<V: Lanes> Visit<V> for Dot<V> {
    #[inline(always)]
    unsafe fn chunk(&mut self, i: usize) {
        // SAFETY: `Visit::chunk`'s contract.
        let v = unsafe { V::load(self.x.add(i)).mul_add(V::load(self.y.add(i)), self.acc[0]) };
        self.push(v);
    }
    #[inline(always)]
    unsafe fn partial(&mut self, i: usize, bits: u64) {
        // SAFETY: `Visit::partial`'s contract. Dropped lanes load as 0.0 on both sides,
        // so they add exactly nothing, whatever memory holds.
        let v = unsafe {
            V::load_masked(self.x.add(i), bits)
                .mul_add(V::load_masked(self.y.add(i), bits), self.acc[0])
        };
        self.push(v);
    }
    #[inline(always)]
    unsafe fn single(&mut self, i: usize) {
        // SAFETY: `Visit::single`'s contract.
        unsafe { self.tail += *self.x.add(i) * *self.y.add(i) }
    }
}

/// `y[k] = beta · y[k]` over the kept `k`; `beta = 0` writes 0 without reading `y`.
struct Scale<V: Lanes> {
    beta: V,
    beta_scalar: V::Elem,
    y: *mut V::Elem,
}

impl<V: Lanes> Scale<V> {
    #[inline(always)]
    unsafe fn scaled(&self, p: *const V::Elem, bits: u64) -> V {
        // SAFETY: the caller's `Visit` contract covers `p`.
        unsafe {
            if self.beta_scalar == V::Elem::ZERO {
                self.beta
            } else {
                V::load_masked(p, bits).mul(self.beta)
            }
        }
    }
}

impl<V: Lanes> Visit<V> for Scale<V> {
    #[inline(always)]
    unsafe fn chunk(&mut self, i: usize) {
        // SAFETY: `Visit::chunk`'s contract.
        unsafe { self.scaled(self.y.add(i), V::ALL).store(self.y.add(i)) }
    }
    #[inline(always)]
    unsafe fn partial(&mut self, i: usize, bits: u64) {
        // SAFETY: `Visit::partial`'s contract.
        unsafe {
            self.scaled(self.y.add(i), bits)
                .store_masked(self.y.add(i), bits)
        }
    }
    #[inline(always)]
    unsafe fn single(&mut self, i: usize) {
        // SAFETY: `Visit::single`'s contract.
        unsafe { *self.y.add(i) = beta_times(self.beta_scalar, *self.y.add(i)) }
    }
}

/// `beta · y`, or exactly 0 for `beta = 0` whatever `y` holds (BLAS's convention).
#[inline(always)]
fn beta_times<T: Element>(beta: T, y: T) -> T {
    if beta == T::ZERO { T::ZERO } else { beta * y }
}

/// The kept indices below `n`, in increasing order (all of them without a mask).
///
/// An iterator rather than a closure-taking helper on purpose: a closure is compiled as
/// a function of its own, without the `#[target_feature]`s of the wrapper it is written
/// in, and the vector intrinsics inside it would then not inline. A `for` loop keeps
/// the body in the wrapper.
#[derive(Clone)]
struct Kept<'m> {
    words: Option<&'m [u64]>,
    /// The next index (no mask) or the unit index of bit 0 of `bits` (mask).
    base: usize,
    n: usize,
    /// Bits of the current word not yet yielded.
    bits: u64,
    /// Index of the next word to load.
    word: usize,
}

#[inline(always)]
fn kept(mask: Option<&[u64]>, n: usize) -> Kept<'_> {
    Kept {
        words: mask,
        base: 0,
        n,
        bits: 0,
        word: 0,
    }
}

impl Iterator for Kept<'_> {
    type Item = usize;

    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        match self.words {
            None => {
                let i = self.base;
                (i < self.n).then(|| {
                    self.base += 1;
                    i
                })
            }
            Some(words) => {
                while self.bits == 0 {
                    self.bits = *words.get(self.word)?;
                    self.base = 64 * self.word;
                    self.word += 1;
                }
                let i = self.base + self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                Some(i)
            }
        }
    }
}

/// `y[k] += a · x[k]` over `0 .. n` under `units`.
///
/// # Safety
///
/// `x` and `y` are valid for `n` elements; `units` as for [`walk`]; CPU features of `V`.
#[inline(always)]
unsafe fn axpy<V: Lanes, U: Units>(
    n: usize,
    a: V::Elem,
    x: *const V::Elem,
    y: *mut V::Elem,
    units: U,
) {
    // SAFETY: the caller's contract is `walk`'s.
    unsafe {
        let mut visit = Axpy {
            a: V::splat(a),
            a_scalar: a,
            x,
            y,
        };
        walk::<V, U, _>(n, units, &mut visit);
    }
}

/// `Σ x[k] · y[k]` over `0 .. n` under `units`.
///
/// # Safety
///
/// As for [`axpy`].
#[inline(always)]
unsafe fn dot<V: Lanes, U: Units>(
    n: usize,
    x: *const V::Elem,
    y: *const V::Elem,
    units: U,
) -> V::Elem {
    // SAFETY: the caller's contract is `walk`'s.
    unsafe {
        let mut visit = Dot::<V>::new(x, y);
        walk::<V, U, _>(n, units, &mut visit);
        visit.finish()
    }
}

/// `y[k] = beta · y[k]` over `0 .. n` under `units`; nothing for `beta = 1`.
///
/// # Safety
///
/// As for [`axpy`].
#[inline(always)]
unsafe fn scale<V: Lanes, U: Units>(n: usize, beta: V::Elem, y: *mut V::Elem, units: U) {
    if beta == V::Elem::ONE {
        return;
    }
    // SAFETY: the caller's contract is `walk`'s.
    unsafe {
        let mut visit = Scale {
            beta: V::splat(beta),
            beta_scalar: beta,
            y,
        };
        walk::<V, U, _>(n, units, &mut visit);
    }
}

/// Masked rank-1 update `A[j,i] += alpha · x_j · y_i` over kept rows `j` and columns `i`.
///
/// # Safety
///
/// The `Ger`'s contract (see [`super::Ger`]) and the CPU features of `V`.
#[inline(always)]
pub(crate) unsafe fn ger<V: Lanes>(g: &Ger<'_, V::Elem>) {
    let a = g.a;
    // An empty view may have row or column offsets past its allocation: compute none.
    if a.rows == 0 || a.cols == 0 {
        return;
    }
    // SAFETY: in all three branches, the `Ger`'s contract puts every element of `a`, of
    // `x` (a.rows elements) and of `y` (a.cols elements) inside their allocations and
    // gives each mask words_for(len) words with clear tails.
    unsafe {
        if a.col_stride == 1 && g.y.row_stride == 1 {
            // Rows are contiguous: each kept row gets a masked axpy along it.
            match g.col_mask {
                Some(m) => ger_rows::<V, _>(g, Bits(m.as_ptr())),
                None => ger_rows::<V, _>(g, AllKept),
            }
        } else if a.row_stride == 1 && g.x.row_stride == 1 {
            // Columns are contiguous: each kept column gets a masked axpy down it, and a
            // dropped column is never touched.
            match g.row_mask {
                Some(m) => ger_cols::<V, _>(g, Bits(m.as_ptr())),
                None => ger_cols::<V, _>(g, AllKept),
            }
        } else {
            // General strides: element by element.
            let (x, y) = (g.x, g.y);
            for j in kept(g.row_mask, a.rows) {
                let xj = g.alpha * *x.ptr.add(j * x.row_stride);
                for i in kept(g.col_mask, a.cols) {
                    *a.ptr.add(j * a.row_stride + i * a.col_stride) +=
                        xj * *y.ptr.add(i * y.row_stride);
                }
            }
        }
    }
}

/// # Safety
///
/// As for [`ger`], with `a.col_stride == 1` and `y` contiguous.
#[inline(always)]
unsafe fn ger_rows<V: Lanes, U: Units>(g: &Ger<'_, V::Elem>, cols: U) {
    let a = g.a;
    for j in kept(g.row_mask, a.rows) {
        // SAFETY: row j is a.cols contiguous elements; x has a.rows elements.
        unsafe {
            let xj = g.alpha * *g.x.ptr.add(j * g.x.row_stride);
            axpy::<V, U>(a.cols, xj, g.y.ptr, a.ptr.add(j * a.row_stride), cols);
        }
    }
}

/// # Safety
///
/// As for [`ger`], with `a.row_stride == 1` and `x` contiguous.
#[inline(always)]
unsafe fn ger_cols<V: Lanes, U: Units>(g: &Ger<'_, V::Elem>, rows: U) {
    let a = g.a;
    for i in kept(g.col_mask, a.cols) {
        // SAFETY: column i is a.rows contiguous elements; y has a.cols elements.
        unsafe {
            let yi = g.alpha * *g.y.ptr.add(i * g.y.row_stride);
            axpy::<V, U>(a.rows, yi, g.x.ptr, a.ptr.add(i * a.col_stride), rows);
        }
    }
}

/// Masked matrix-vector product `y_j = alpha · Σ_i A[j,i] · x_i + beta · y_j` over kept
/// rows `j` and kept columns `i`; dropped `y_j` untouched, dropped `x_i` and columns of
/// `A` never read.
///
/// # Safety
///
/// The `Gemv`'s contract (see [`super::Gemv`]) and the CPU features of `V`.
#[inline(always)]
pub(crate) unsafe fn gemv<V: Lanes>(g: &Gemv<'_, V::Elem>) {
    let a = g.a;
    if a.rows == 0 {
        // Nothing to write; the columns of an empty `a` may start past its allocation.
        return;
    }
    if a.cols == 0 {
        // No terms: y_j = beta · y_j, and for beta = 1 nothing is written at all (BLAS's
        // quick return; `y_j + 0` would not be bitwise untouched). The rows of an empty
        // `a` may start past its allocation, so they are not formed.
        if g.beta == V::Elem::ONE {
            return;
        }
        let y = g.y;
        for j in kept(g.row_mask, a.rows) {
            // SAFETY: j < a.rows, the length of `y`.
            unsafe {
                let yj = y.ptr.add(j * y.row_stride);
                *yj = beta_times(g.beta, *yj);
            }
        }
        return;
    }
    // SAFETY: in all three branches, the `Gemv`'s contract puts every element of `a`, `x`
    // (a.cols elements) and `y` (a.rows elements) inside their allocations and gives
    // each mask words_for(len) words with clear tails.
    unsafe {
        if a.col_stride == 1 && g.x.row_stride == 1 {
            // Rows are contiguous: a masked dot product per kept row.
            match g.col_mask {
                Some(m) => gemv_dots::<V, _>(g, Bits(m.as_ptr())),
                None => gemv_dots::<V, _>(g, AllKept),
            }
        } else if a.row_stride == 1 && g.y.row_stride == 1 {
            // Columns are contiguous: scale y, then a masked axpy per kept column.
            match g.row_mask {
                Some(m) => gemv_axpys::<V, _>(g, Bits(m.as_ptr())),
                None => gemv_axpys::<V, _>(g, AllKept),
            }
        } else {
            // General strides: element by element.
            let (x, y) = (g.x, g.y);
            for j in kept(g.row_mask, a.rows) {
                let mut sum = V::Elem::ZERO;
                for i in kept(g.col_mask, a.cols) {
                    sum += *a.ptr.add(j * a.row_stride + i * a.col_stride)
                        * *x.ptr.add(i * x.row_stride);
                }
                let yj = y.ptr.add(j * y.row_stride);
                *yj = g.alpha * sum + beta_times(g.beta, *yj);
            }
        }
    }
}

/// # Safety
///
/// As for [`gemv`], with `a.col_stride == 1` and `x` contiguous.
#[inline(always)]
unsafe fn gemv_dots<V: Lanes, U: Units>(g: &Gemv<'_, V::Elem>, cols: U) {
    let a = g.a;
    for j in kept(g.row_mask, a.rows) {
        // SAFETY: row j is a.cols contiguous elements, as is x; y has a.rows elements.
        unsafe {
            let sum = dot::<V, U>(a.cols, a.ptr.add(j * a.row_stride), g.x.ptr, cols);
            let yj = g.y.ptr.add(j * g.y.row_stride);
            *yj = g.alpha * sum + beta_times(g.beta, *yj);
        }
    }
}

/// # Safety
///
/// As for [`gemv`], with `a.row_stride == 1` and `y` contiguous.
#[inline(always)]
unsafe fn gemv_axpys<V: Lanes, U: Units>(g: &Gemv<'_, V::Elem>, rows: U) {
    let a = g.a;
    // SAFETY: y is a.rows contiguous elements, as is each column of a; x has a.cols.
    unsafe {
        scale::<V, U>(a.rows, g.beta, g.y.ptr, rows);
        for i in kept(g.col_mask, a.cols) {
            let xi = g.alpha * *g.x.ptr.add(i * g.x.row_stride);
            axpy::<V, U>(a.rows, xi, a.ptr.add(i * a.col_stride), g.y.ptr, rows);
        }
    }
}

/// Masked product `C[j,k] = alpha · Σ_p A[j,p] · B[p,k] + beta · C[j,k]` over kept rows
/// `j`, kept columns `k` and kept inner units `p`: one masked [`gemv`] per kept column
/// of `C` (or per kept row, on the transposes, when `C`'s rows are contiguous), so a
/// dropped column or row of `C` costs nothing.
///
/// # Safety
///
/// The `Gemm`'s contract (see [`super::Gemm`]) and the CPU features of `V`.
#[inline(always)]
pub(crate) unsafe fn gemm<V: Lanes>(g: &Gemm<'_, V::Elem>) {
    let (c, a, b) = (g.c, g.a, g.b);
    let by_rows = c.col_stride == 1 && c.row_stride != 1;
    let (c, a, b, rows_mask, cols_mask) = if by_rows {
        // Cᵀ = Bᵀ Aᵀ: the rows of C become columns.
        (c.t(), b.t(), a.t(), g.col_mask, g.row_mask)
    } else {
        (c, a, b, g.row_mask, g.col_mask)
    };
    for k in kept(cols_mask, c.cols) {
        let column = Gemv {
            a,
            alpha: g.alpha,
            x: b.col(k),
            beta: g.beta,
            y: c.col(k),
            row_mask: rows_mask,
            col_mask: g.inner_mask,
        };
        // SAFETY: k < c.cols = b.cols, so column k of `b` (a.cols x 1) and of `c`
        // (a.rows x 1) lie inside their views; the `Gemm`'s contract gives the rest of
        // the `Gemv`'s.
        unsafe { gemv::<V>(&column) }
    }
}

/// One row of a masked scatter: `dst[i] = src[k] + beta · dst[i]` for the `k`-th kept
/// unit `i`, a chunk of `LANES` units at a time: the chunk's kept values are expanded
/// from `src` into their lanes, combined with `dst`, and the dropped lanes keep `dst`'s
/// bits (a chunk with no kept unit is skipped; the tail of the row goes unit by unit).
///
/// # Safety
///
/// The `Expand`'s contract (see [`super::Expand`]) and the CPU features of `V`.
#[cfg(feature = "alloc")]
#[inline(always)]
pub(crate) unsafe fn expand<V: Lanes>(e: &super::Expand<'_, V::Elem>) {
    // SAFETY: the caller's contract.
    unsafe {
        if e.beta == V::Elem::ZERO {
            expand_with::<V, 0>(e)
        } else if e.beta == V::Elem::ONE {
            expand_with::<V, 1>(e)
        } else {
            expand_with::<V, 2>(e)
        }
    }
}

/// [`expand`] for `beta = 0` (`MODE` 0), `beta = 1` (1) or any other (2).
///
/// # Safety
///
/// As for [`expand`].
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn expand_with<V: Lanes, const MODE: u8>(e: &super::Expand<'_, V::Elem>) {
    let land = |v: V::Elem, d: V::Elem| match MODE {
        0 => v,
        1 => d + v,
        _ => v + e.beta * d,
    };
    let mut k = 0;
    // SAFETY: every chunk below lies inside `dst`'s `len` elements (whole chunks only
    // where `i + LANES <= len`); `k` counts the kept units before `i`, so the chunk's
    // `count_ones(bits)` values lie inside `src`.
    unsafe {
        let beta = V::splat(e.beta);
        for (w, &word) in e.words.iter().enumerate() {
            let mut c = 0;
            while c < 64 && word >> c != 0 {
                let i = 64 * w + c;
                let bits = (word >> c) & V::ALL;
                if bits != 0 {
                    if i + V::LANES <= e.len {
                        // Only the values the chunk takes are read (measured faster
                        // with AVX2 than a whole-vector load and an in-register expand).
                        let v = V::expand_load(e.src.add(k), bits);
                        let d = V::load(e.dst.add(i));
                        let r = match MODE {
                            0 => v,
                            1 => d.add(v),
                            _ => d.mul_add(beta, v),
                        };
                        V::select(bits, r, d).store(e.dst.add(i));
                    } else {
                        let (mut b, mut kk) = (bits, k);
                        while b != 0 {
                            let p = e.dst.add(i + b.trailing_zeros() as usize);
                            *p = land(*e.src.add(kk), *p);
                            kk += 1;
                            b &= b - 1;
                        }
                    }
                    k += bits.count_ones() as usize;
                }
                c += V::LANES;
            }
        }
    }
}

/// One row of a masked gather: `dst[k] = src[i]` for the `k`-th kept unit `i`, a chunk of
/// `LANES` units at a time: the chunk is loaded whole, its kept lanes compressed to the
/// low lanes and stored whole at `dst + k` while `room` allows (the lanes above are
/// overwritten by the next chunk); near the end of `room` and in the row's tail, unit by
/// unit.
///
/// # Safety
///
/// The `Compress`'s contract (see [`super::Compress`]) and the CPU features of `V`.
#[cfg(feature = "alloc")]
#[inline(always)]
pub(crate) unsafe fn compress<V: Lanes>(g: &super::Compress<'_, V::Elem>) {
    let mut k = 0;
    // SAFETY: whole chunks are read only where `i + LANES <= len` and stored whole only
    // where `k + LANES <= room`; `k` counts the kept units before `i`, below `room`.
    unsafe {
        for (w, &word) in g.words.iter().enumerate() {
            let mut c = 0;
            while c < 64 && word >> c != 0 {
                let i = 64 * w + c;
                let bits = (word >> c) & V::ALL;
                if bits != 0 {
                    if i + V::LANES <= g.len && k + V::LANES <= g.room {
                        V::load(g.src.add(i)).compress(bits).store(g.dst.add(k));
                    } else {
                        let (mut b, mut kk) = (bits, k);
                        while b != 0 {
                            *g.dst.add(kk) = *g.src.add(i + b.trailing_zeros() as usize);
                            kk += 1;
                            b &= b - 1;
                        }
                    }
                    k += bits.count_ones() as usize;
                }
                c += V::LANES;
            }
        }
    }
}
