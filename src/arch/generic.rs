//! The kernels, written once over [`Lanes`]; each level instantiates them inside its
//! `#[target_feature]` wrappers, where everything here inlines.
//!
//! Two loop shapes cover every operation:
//!
//! - **outer loops over kept units**: a dropped row or column of a matrix is skipped
//!   whole, so its memory is never touched (`kept`). The kept rows (or columns) go four
//!   at a time (`Blocks`), so that the shared vector's chunks are loaded, and the mask
//!   decoded, once per four; the next four are prefetched, since the hardware prefetcher
//!   cannot guess where a masked matrix's next line starts;
//! - **inner loops along a contiguous, masked dimension** (`walk`): the mask's words are
//!   read 64 units at a time; an all-ones word runs the dense vector code, a zero word
//!   costs one test, a mixed word visits only its non-empty `LANES`-chunks, each under
//!   its lane mask (`mixed`): dropped lanes read as zero in sums and are written back
//!   with their own bits in updates.

use super::lanes::Lanes;
use super::{Gemm, Gemv, Ger};
use crate::Element;
use crate::mask::valid_bits;
use crate::mat::RawMat;
use core::mem::MaybeUninit;

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
///
/// `SLOT` is a chunk's position in its word modulo 4: visitors with several
/// accumulators pick one by it. It is a constant parameter, not an argument, so that
/// every index into an accumulator array is a constant wherever the loops are or are not
/// unrolled: one index computed at run time (a tail loop's `c % 4`) kept a visitor's
/// accumulators in memory, stored back after every chunk (AVX2, Zen 1 host: the
/// row-major `forward` took 1.85x its dense kernel at 256x256, 1.28x without).
trait Visit<V: Lanes> {
    /// Elements `i .. i + 64`, all kept.
    ///
    /// # Safety
    ///
    /// As for [`Visit::chunk`], for 64 elements.
    #[inline(always)]
    unsafe fn word(&mut self, i: usize) {
        // 64 / LANES is a multiple of 4 (LANES <= 16): whole groups of four chunks.
        for g in 0..64 / V::LANES / 4 {
            let i = i + 4 * g * V::LANES;
            // SAFETY: the 64 elements from `i` are 64 / LANES whole chunks.
            unsafe {
                self.chunk::<0>(i);
                self.chunk::<1>(i + V::LANES);
                self.chunk::<2>(i + 2 * V::LANES);
                self.chunk::<3>(i + 3 * V::LANES);
            }
        }
    }
    /// Elements `i .. i + LANES`, all kept.
    ///
    /// # Safety
    ///
    /// The visitor's pointers are valid for these elements and the CPU has the
    /// features of `V`.
    unsafe fn chunk<const SLOT: usize>(&mut self, i: usize);
    /// Elements `i .. i + LANES`, the lanes `m` keeps; the others are left bit for bit
    /// as they are (and may be read).
    ///
    /// # Safety
    ///
    /// As for [`Visit::chunk`].
    unsafe fn partial<const SLOT: usize>(&mut self, i: usize, m: V::Mask);
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
            } else if word != 0 {
                mixed::<V, F>(word, 64 * w, 64 / V::LANES, visit);
            }
        }
    }
    let rest = n % 64;
    if rest != 0 {
        let base = 64 * whole_words;
        // SAFETY: the last word exists since rest > 0.
        let word = unsafe { units.word(whole_words) } & valid_bits(rest);
        let in_chunks = rest / V::LANES * V::LANES;
        let chunked = word & valid_bits(in_chunks);
        if word == valid_bits(rest) {
            // All kept (always, without a mask): plain chunks, no lane masks. Short
            // lines (a 10-unit output layer) live in this path.
            for c in 0..in_chunks / V::LANES {
                // SAFETY: whole chunks that end at or before `n`.
                unsafe { visit.chunk::<0>(base + c * V::LANES) };
            }
            for i in base + in_chunks..n {
                // SAFETY: i < n.
                unsafe { visit.single(i) };
            }
            return;
        }
        if chunked != 0 {
            // SAFETY: whole chunks that end at or before `n`.
            unsafe { mixed::<V, F>(chunked, base, in_chunks / V::LANES, visit) };
        }
        let mut tail = word >> in_chunks;
        while tail != 0 {
            // SAFETY: base + in_chunks + bit < base + rest = n.
            unsafe { visit.single(base + in_chunks + tail.trailing_zeros() as usize) };
            tail &= tail - 1;
        }
    }
}

/// Visits the first `chunks` chunks of a mask word whose unit 0 is element `base`,
/// skipping the chunks with no kept lane; the word's bits past those chunks are clear.
///
/// The chunks go four at a time (a group: one mask broadcast, say, then four constant
/// lane tests), every non-empty chunk under its lane mask, without asking whether it is
/// full: in a word that is neither full nor empty that answer is a coin flip for the
/// branch predictor, and a masked chunk costs one select more than a full one. (Only the
/// vector levels come here; one lane takes the element loops of `ger_elements` and
/// `gemv_elements`.)
///
/// # Safety
///
/// Every chunk of the first `chunks` with a set bit lies inside the visitor's valid
/// elements; `chunks <= 64 / V::LANES`; the CPU has the features of `V`.
#[inline(always)]
unsafe fn mixed<V: Lanes, F: Visit<V>>(word: u64, base: usize, chunks: usize, visit: &mut F) {
    // 64 / LANES is a multiple of 4 (LANES <= 16), so every group lies in the word.
    for g in 0..chunks.div_ceil(4) {
        // SAFETY: g < 16 / LANES; the CPU has the features of `V`.
        let group = unsafe { V::group(word, g) };
        // SAFETY: the caller's contract, passed on.
        unsafe {
            mixed_chunk::<V, F, 0>(word, base, g, group, visit);
            mixed_chunk::<V, F, 1>(word, base, g, group, visit);
            mixed_chunk::<V, F, 2>(word, base, g, group, visit);
            mixed_chunk::<V, F, 3>(word, base, g, group, visit);
        }
    }
}

/// Chunk `K` of group `g` of [`mixed`], visited under its lane mask if it keeps a lane.
///
/// # Safety
///
/// As for [`mixed`].
#[inline(always)]
unsafe fn mixed_chunk<V: Lanes, F: Visit<V>, const K: usize>(
    word: u64,
    base: usize,
    g: usize,
    group: V::Group,
    visit: &mut F,
) {
    let c = 4 * g + K;
    // A chunk past `chunks` in the last group has clear bits and is skipped.
    if (word >> (c * V::LANES)) & V::ALL != 0 {
        // SAFETY: chunk c has a set bit, so the caller vouches for it.
        unsafe { visit.partial::<K>(base + c * V::LANES, V::chunk_mask(group, K)) };
    }
}

/// `t_r[k] += c_r · s[k]` over the kept `k`, for `R` targets `t_r` and one shared source
/// `s`: `R` rows (or columns) of a rank-1 update at once, so that each chunk of `s` is
/// loaded, and each chunk's mask decoded, once for all of them.
struct Update<V: Lanes, const R: usize> {
    s: *const V::Elem,
    t: [*mut V::Elem; R],
    c: [V; R],
    c_scalar: [V::Elem; R],
}

impl<V: Lanes, const R: usize> Visit<V> for Update<V, R> {
    #[inline(always)]
    unsafe fn chunk<const SLOT: usize>(&mut self, i: usize) {
        // SAFETY: `Visit::chunk`'s contract.
        unsafe {
            let s = V::load(self.s.add(i));
            for r in 0..R {
                let p = self.t[r].add(i);
                s.mul_add(self.c[r], V::load(p)).store(p);
            }
        }
    }
    #[inline(always)]
    unsafe fn partial<const SLOT: usize>(&mut self, i: usize, m: V::Mask) {
        // SAFETY: `Visit::partial`'s contract. A dropped lane's result (perhaps NaN from
        // a NaN in `s`) is selected away: the lane is stored back with the bits it had.
        unsafe {
            let s = V::load(self.s.add(i));
            for r in 0..R {
                let p = self.t[r].add(i);
                let old = V::load(p);
                s.mul_add(self.c[r], old).store_select(m, old, p);
            }
        }
    }
    #[inline(always)]
    unsafe fn single(&mut self, i: usize) {
        // SAFETY: `Visit::single`'s contract.
        unsafe {
            for r in 0..R {
                *self.t[r].add(i) += self.c_scalar[r] * *self.s.add(i);
            }
        }
    }
}

/// `y[k] += Σ_r c_r · a_r[k]` over the kept `k`, for `R` sources `a_r`: `R` columns of a
/// matrix-vector product at once, so that `y` is loaded and stored, and each chunk's mask
/// decoded, once for all of them.
struct Combine<V: Lanes, const R: usize> {
    a: [*const V::Elem; R],
    c: [V; R],
    c_scalar: [V::Elem; R],
    y: *mut V::Elem,
}

impl<V: Lanes, const R: usize> Combine<V, R> {
    /// `y + Σ_r c_r · a_r` of the chunk at `i`.
    #[inline(always)]
    unsafe fn sum(&self, i: usize, y: V) -> V {
        let mut acc = y;
        for r in 0..R {
            // SAFETY: the caller's `Visit` contract covers the chunk at `i`.
            acc = unsafe { V::load(self.a[r].add(i)).mul_add(self.c[r], acc) };
        }
        acc
    }
}

impl<V: Lanes, const R: usize> Visit<V> for Combine<V, R> {
    #[inline(always)]
    unsafe fn chunk<const SLOT: usize>(&mut self, i: usize) {
        // SAFETY: `Visit::chunk`'s contract.
        unsafe {
            let p = self.y.add(i);
            self.sum(i, V::load(p)).store(p);
        }
    }
    #[inline(always)]
    unsafe fn partial<const SLOT: usize>(&mut self, i: usize, m: V::Mask) {
        // SAFETY: `Visit::partial`'s contract; dropped lanes are stored back unchanged.
        unsafe {
            let p = self.y.add(i);
            let old = V::load(p);
            self.sum(i, old).store_select(m, old, p);
        }
    }
    #[inline(always)]
    unsafe fn single(&mut self, i: usize) {
        // SAFETY: `Visit::single`'s contract.
        unsafe {
            let p = self.y.add(i);
            let mut y = *p;
            for r in 0..R {
                y += self.c_scalar[r] * *self.a[r].add(i);
            }
            *p = y;
        }
    }
}

/// `Σ a_r[k] · x[k]` over the kept `k`, for `R` rows `a_r` and one shared `x`: each chunk
/// of `x` loaded, and its mask decoded, once for all rows. Independent accumulators
/// (four for one row, two per row for more) keep consecutive fused multiply-adds from
/// waiting on each other.
///
/// In a chunk with dropped lanes, `x`'s dropped lanes load as +0.0. With `GUARD` the
/// rows' dropped lanes do too, so they add exactly nothing whatever memory holds.
/// Without it the rows' lanes load as they are, one operation fewer per row and chunk:
/// a dropped lane then adds `a · 0`, a zero, which leaves the sum bit for bit as the
/// guarded one (the sum starts at +0.0, so it is never -0.0, and adding a zero to
/// anything else changes nothing), unless `a` is infinite or NaN there; then the sum is
/// NaN, and the caller computes that row again with `GUARD` (see [`gemv_dots`]).
/// With `STAGED`, `x`'s dropped lanes already hold +0.0 (see [`gemv_dots_masked`]) and
/// it loads as it is.
struct Dots<V: Lanes, const R: usize, const GUARD: bool, const STAGED: bool> {
    a: [*const V::Elem; R],
    x: *const V::Elem,
    acc: [[V; 4]; R],
    tail: [V::Elem; R],
}

impl<V: Lanes, const R: usize, const GUARD: bool, const STAGED: bool> Dots<V, R, GUARD, STAGED> {
    #[inline(always)]
    unsafe fn new(a: [*const V::Elem; R], x: *const V::Elem) -> Self {
        // SAFETY: the caller has the CPU features.
        let zero = unsafe { V::splat(V::Elem::ZERO) };
        Dots {
            a,
            x,
            acc: [[zero; 4]; R],
            tail: [V::Elem::ZERO; R],
        }
    }

    /// The accumulator for a chunk's `slot`: four for one row, two per row for more.
    #[inline(always)]
    const fn acc_index(slot: usize) -> usize {
        if R == 1 { slot } else { slot % 2 }
    }

    #[inline(always)]
    unsafe fn finish(self) -> [V::Elem; R] {
        let mut sums = self.tail;
        for (sum, [a0, a1, a2, a3]) in sums.iter_mut().zip(self.acc) {
            // SAFETY: the caller has the CPU features.
            *sum += unsafe { a0.add(a1).add(a2.add(a3)).sum() };
        }
        sums
    }
}

impl<V: Lanes, const R: usize, const GUARD: bool, const STAGED: bool> Visit<V>
    for Dots<V, R, GUARD, STAGED>
{
    #[inline(always)]
    unsafe fn chunk<const SLOT: usize>(&mut self, i: usize) {
        let slot = Self::acc_index(SLOT);
        // SAFETY: `Visit::chunk`'s contract.
        unsafe {
            let x = V::load(self.x.add(i));
            for r in 0..R {
                let acc = &mut self.acc[r][slot];
                *acc = V::load(self.a[r].add(i)).mul_add(x, *acc);
            }
        }
    }
    #[inline(always)]
    unsafe fn partial<const SLOT: usize>(&mut self, i: usize, m: V::Mask) {
        let slot = Self::acc_index(SLOT);
        // SAFETY: `Visit::partial`'s contract (the whole chunk may be read).
        unsafe {
            let x = if STAGED {
                V::load(self.x.add(i))
            } else {
                V::load_masked(self.x.add(i), m)
            };
            for r in 0..R {
                let a = if GUARD {
                    V::load_masked(self.a[r].add(i), m)
                } else {
                    V::load(self.a[r].add(i))
                };
                let acc = &mut self.acc[r][slot];
                *acc = a.mul_add(x, *acc);
            }
        }
    }
    #[inline(always)]
    unsafe fn single(&mut self, i: usize) {
        // SAFETY: `Visit::single`'s contract.
        unsafe {
            for r in 0..R {
                self.tail[r] += *self.a[r].add(i) * *self.x.add(i);
            }
        }
    }
}

/// `y[k] = beta · y[k]` over the kept `k`; `beta = 0` writes 0 without reading `y`.
struct Scale<V: Lanes> {
    beta: V,
    beta_scalar: V::Elem,
    y: *mut V::Elem,
}

impl<V: Lanes> Scale<V> {
    /// `beta · y` of the chunk at `p`, or 0 for `beta = 0` without reading it.
    #[inline(always)]
    unsafe fn scaled(&self, p: *const V::Elem) -> V {
        // SAFETY: the caller's `Visit` contract covers `p`.
        unsafe {
            if self.beta_scalar == V::Elem::ZERO {
                self.beta
            } else {
                V::load(p).mul(self.beta)
            }
        }
    }
}

impl<V: Lanes> Visit<V> for Scale<V> {
    #[inline(always)]
    unsafe fn chunk<const SLOT: usize>(&mut self, i: usize) {
        // SAFETY: `Visit::chunk`'s contract.
        unsafe { self.scaled(self.y.add(i)).store(self.y.add(i)) }
    }
    #[inline(always)]
    unsafe fn partial<const SLOT: usize>(&mut self, i: usize, m: V::Mask) {
        // SAFETY: `Visit::partial`'s contract; dropped lanes are stored back unchanged.
        unsafe {
            let y = V::load(self.y.add(i));
            self.scaled(self.y.add(i)).store_select(m, y, self.y.add(i))
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

/// How many rows (or columns) the blocked loops serve in one pass along the masked
/// dimension. Four: the mask and shared-vector work is shared four ways, and the
/// accumulators still fit the 16 vector registers of AVX2.
const BLOCK: usize = 4;

/// The kept indices in blocks of [`BLOCK`]: `(indices, count)`, with `count < BLOCK`
/// only for the last block. One block ahead is read, so the loops can prefetch it.
struct Blocks<'m> {
    kept: Kept<'m>,
    ahead: Option<([usize; BLOCK], usize)>,
}

impl<'m> Blocks<'m> {
    #[inline(always)]
    fn new(kept: Kept<'m>) -> Self {
        let mut blocks = Blocks { kept, ahead: None };
        blocks.ahead = blocks.read();
        blocks
    }

    #[inline(always)]
    fn read(&mut self) -> Option<([usize; BLOCK], usize)> {
        let mut block = [0; BLOCK];
        let mut count = 0;
        while count < BLOCK {
            match self.kept.next() {
                Some(i) => block[count] = i,
                None => break,
            }
            count += 1;
        }
        (count > 0).then_some((block, count))
    }

    /// The block after the one `next` returned last.
    #[inline(always)]
    fn peek(&self) -> Option<&[usize]> {
        self.ahead.as_ref().map(|(block, count)| &block[..*count])
    }
}

impl Iterator for Blocks<'_> {
    type Item = ([usize; BLOCK], usize);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let current = self.ahead.take()?;
        self.ahead = self.read();
        Some(current)
    }
}

/// Asks for the first bytes (up to 256) of the lines `next`, each `n` elements from
/// `start + j · stride`, while the current block runs. The lines of a masked matrix start
/// at irregular places, where the hardware prefetcher would take a while to catch on; past
/// their first cache lines it has caught on. (Up to 1 KiB per line was measured as fast
/// at 1024² and 4-6% slower on the whole step of `examples/train`, whose matrices sit in
/// L2 where the extra prefetches only take load slots.)
///
/// # Safety
///
/// The CPU has the features of `V` (the addresses need not be valid: a prefetch never
/// faults).
#[inline(always)]
unsafe fn prefetch_lines<V: Lanes>(
    start: *const V::Elem,
    stride: usize,
    n: usize,
    next: Option<&[usize]>,
) {
    const LINE: usize = 64;
    let lines = (n * size_of::<V::Elem>()).div_ceil(LINE).min(4);
    for &j in next.unwrap_or_default() {
        let line = start.wrapping_add(j * stride).cast::<u8>();
        for l in 0..lines {
            // SAFETY: the caller has the CPU features.
            unsafe { V::prefetch(line.wrapping_add(l * LINE)) };
        }
    }
}

/// Each of `c` in every lane. A loop, not `map`: a closure would not inherit the
/// wrapper's CPU features, and the intrinsic inside it would not inline.
#[inline(always)]
unsafe fn splat_each<V: Lanes, const R: usize>(c: [V::Elem; R]) -> [V; R] {
    // SAFETY: the caller has the CPU features.
    let mut v = [unsafe { V::splat(V::Elem::ZERO) }; R];
    for r in 0..R {
        // SAFETY: as above.
        v[r] = unsafe { V::splat(c[r]) };
    }
    v
}

/// Whether a block of `count` indices runs as one [`BLOCK`]-wide pass.
#[inline(always)]
fn blocked<V: Lanes>(count: usize) -> bool {
    count == BLOCK
}

/// `y[k] = beta · y[k]` over `0 .. n` under `units`; nothing for `beta = 1`.
///
/// # Safety
///
/// As for [`walk`], with `y` valid for reads and writes of elements `0 .. n`.
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
        if V::LANES > 1 && a.col_stride == 1 && g.y.row_stride == 1 {
            // Rows are contiguous: kept rows get masked vector updates along them.
            match g.col_mask {
                Some(m) => ger_rows::<V, _>(g, Bits(m.as_ptr())),
                None => ger_rows::<V, _>(g, AllKept),
            }
        } else if V::LANES > 1 && a.row_stride == 1 && g.x.row_stride == 1 {
            // Columns are contiguous: kept columns get masked vector updates down them,
            // and a dropped column is never touched.
            match g.row_mask {
                Some(m) => ger_cols::<V, _>(g, Bits(m.as_ptr())),
                None => ger_cols::<V, _>(g, AllKept),
            }
        } else {
            ger_elements(g);
        }
    }
}

/// [`ger`] element by element, for any strides. One lane always comes here: there is
/// nothing to vectorise, and one loop nest for every layout keeps a microcontroller's
/// flash small.
///
/// # Safety
///
/// As for [`ger`].
#[inline(always)]
unsafe fn ger_elements<T: Element>(g: &Ger<'_, T>) {
    // The masked dimension goes outside, where its mask is read once per line:
    // `Aᵀ[i,j] += alpha · y_i · x_j` when only the columns are masked.
    let (a, x, y, outer, inner) = match (g.row_mask, g.col_mask) {
        (None, Some(cols)) => (g.a.t(), g.y, g.x, Some(cols), None),
        (rows, cols) => (g.a, g.x, g.y, rows, cols),
    };
    for j in kept(outer, a.rows) {
        // SAFETY: j < a.rows and i < a.cols: elements of `a`, `x` and `y` (the caller).
        unsafe {
            let xj = g.alpha * *x.ptr.add(j * x.row_stride);
            let row = a.ptr.add(j * a.row_stride);
            match inner {
                None => {
                    // Pointers stepped by the strides: no multiplication per element.
                    let (mut pa, mut py) = (row, y.ptr);
                    for _ in 0..a.cols {
                        *pa += xj * *py;
                        pa = pa.wrapping_add(a.col_stride);
                        py = py.wrapping_add(y.row_stride);
                    }
                }
                Some(_) => {
                    for i in kept(inner, a.cols) {
                        *row.add(i * a.col_stride) += xj * *y.ptr.add(i * y.row_stride);
                    }
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
    let lines = Lines {
        kept: kept(g.row_mask, a.rows),
        n: a.cols,
        start: a.ptr,
        stride: a.row_stride,
        coef: g.x,
    };
    // SAFETY: row j < a.rows of `a` is a.cols contiguous elements, as is `y`; `x` has
    // a.rows elements.
    unsafe { update_lines::<V, U>(lines, g.alpha, g.y.ptr, cols) }
}

/// # Safety
///
/// As for [`ger`], with `a.row_stride == 1` and `x` contiguous.
#[inline(always)]
unsafe fn ger_cols<V: Lanes, U: Units>(g: &Ger<'_, V::Elem>, rows: U) {
    let a = g.a;
    let lines = Lines {
        kept: kept(g.col_mask, a.cols),
        n: a.rows,
        start: a.ptr,
        stride: a.col_stride,
        coef: g.y,
    };
    // SAFETY: column i < a.cols of `a` is a.rows contiguous elements, as is `x`; `y` has
    // a.cols elements.
    unsafe { update_lines::<V, U>(lines, g.alpha, g.x.ptr, rows) }
}

/// The kept lines (rows or columns) of a matrix, each `n` contiguous elements, with one
/// coefficient per line.
struct Lines<'m, T> {
    kept: Kept<'m>,
    /// Elements per line.
    n: usize,
    /// Element 0 of line 0.
    start: *mut T,
    /// From one line to the next.
    stride: usize,
    /// The coefficients, one per line.
    coef: RawMat<*const T>,
}

/// `line_j[k] += alpha · coef_j · s[k]` over the kept lines `j` and the kept `k`.
///
/// # Safety
///
/// Every kept line is `lines.n` elements inside `a`'s allocation, distinct from all
/// others; `s` is `lines.n` elements; `coef` has an element per line; `units` as for
/// [`walk`]; the CPU has the features of `V`.
#[inline(always)]
unsafe fn update_lines<V: Lanes, U: Units>(
    lines: Lines<'_, V::Elem>,
    alpha: V::Elem,
    s: *const V::Elem,
    units: U,
) {
    /// One pass for the `R` lines in `block`.
    ///
    /// # Safety
    ///
    /// As for [`update_lines`], for these lines.
    #[inline(always)]
    unsafe fn pass<V: Lanes, U: Units, const R: usize>(
        lines: &Lines<'_, V::Elem>,
        block: [usize; R],
        alpha: V::Elem,
        s: *const V::Elem,
        units: U,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            let c_scalar = block.map(|j| alpha * *lines.coef.ptr.add(j * lines.coef.row_stride));
            let mut visit = Update {
                s,
                t: block.map(|j| lines.start.add(j * lines.stride)),
                c: splat_each::<V, R>(c_scalar),
                c_scalar,
            };
            walk::<V, U, _>(lines.n, units, &mut visit);
        }
    }
    let mut blocks = Blocks::new(lines.kept.clone());
    while let Some((block, count)) = blocks.next() {
        // SAFETY: the indices are kept lines; the caller's contract covers them.
        unsafe {
            prefetch_lines::<V>(lines.start, lines.stride, lines.n, blocks.peek());
            if blocked::<V>(count) {
                pass::<V, U, BLOCK>(&lines, block, alpha, s, units);
            } else {
                for &j in &block[..count] {
                    pass::<V, U, 1>(&lines, [j], alpha, s, units);
                }
            }
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
        if V::LANES > 1 && a.col_stride == 1 && g.x.row_stride == 1 {
            // Rows are contiguous: masked dot products, four kept rows at a time.
            match g.col_mask {
                Some(m) => gemv_dots_masked::<V>(g, m.as_ptr()),
                None => gemv_dots::<V, _, false>(g, AllKept),
            }
        } else if V::LANES > 1 && a.row_stride == 1 && g.y.row_stride == 1 {
            // Columns are contiguous: scale y, then masked updates by four kept columns.
            match g.row_mask {
                Some(m) => gemv_axpys::<V, _>(g, Bits(m.as_ptr())),
                None => gemv_axpys::<V, _>(g, AllKept),
            }
        } else {
            gemv_elements(g);
        }
    }
}

/// [`gemv`] element by element, for any strides; one lane always comes here (see
/// [`ger_elements`]).
///
/// # Safety
///
/// As for [`gemv`], with `a` not empty.
#[inline(always)]
unsafe fn gemv_elements<T: Element>(g: &Gemv<'_, T>) {
    let (a, x, y) = (g.a, g.x, g.y);
    if let (None, Some(cols)) = (g.row_mask, g.col_mask) {
        // Only the columns are masked: column by kept column, so the mask is read once
        // per column rather than once per row.
        if g.beta != T::ONE {
            let mut py = y.ptr;
            for _ in 0..a.rows {
                // SAFETY: one of the a.rows elements of `y` (the caller).
                unsafe { *py = beta_times(g.beta, *py) };
                py = py.wrapping_add(y.row_stride);
            }
        }
        for i in kept(Some(cols), a.cols) {
            // SAFETY: i < a.cols, and the a.rows elements of column i of `a` and of `y`
            // (the caller).
            unsafe {
                let xi = g.alpha * *x.ptr.add(i * x.row_stride);
                let (mut pa, mut py) = (a.ptr.add(i * a.col_stride), y.ptr);
                for _ in 0..a.rows {
                    *py += *pa * xi;
                    pa = pa.wrapping_add(a.row_stride);
                    py = py.wrapping_add(y.row_stride);
                }
            }
        }
        return;
    }
    for j in kept(g.row_mask, a.rows) {
        // SAFETY: j < a.rows and i < a.cols: elements of `a`, `x` and `y` (the caller).
        unsafe {
            let row = a.ptr.add(j * a.row_stride);
            let mut sum = T::ZERO;
            match g.col_mask {
                None => {
                    let (mut pa, mut px) = (row, x.ptr);
                    for _ in 0..a.cols {
                        sum += *pa * *px;
                        pa = pa.wrapping_add(a.col_stride);
                        px = px.wrapping_add(x.row_stride);
                    }
                }
                Some(_) => {
                    for i in kept(g.col_mask, a.cols) {
                        sum += *row.add(i * a.col_stride) * *x.ptr.add(i * x.row_stride);
                    }
                }
            }
            let yj = y.ptr.add(j * y.row_stride);
            *yj = g.alpha * sum + beta_times(g.beta, *yj);
        }
    }
}

/// # Safety
///
/// As for [`gemv`], with `a.col_stride == 1` and `x` contiguous.
#[inline(always)]
unsafe fn gemv_dots<V: Lanes, U: Units, const STAGED: bool>(g: &Gemv<'_, V::Elem>, cols: U) {
    /// One pass for the `R` rows in `block`.
    ///
    /// # Safety
    ///
    /// As for [`gemv_dots`], for kept rows `block`.
    #[inline(always)]
    unsafe fn pass<V: Lanes, U: Units, const STAGED: bool, const R: usize>(
        g: &Gemv<'_, V::Elem>,
        block: [usize; R],
        cols: U,
    ) {
        let a = g.a;
        // SAFETY: row j < a.rows is a.cols contiguous elements, as is x; y has a.rows
        // elements.
        unsafe {
            let row = |j: usize| a.ptr.add(j * a.row_stride);
            let mut visit = Dots::<V, R, false, STAGED>::new(block.map(row), g.x.ptr);
            walk::<V, U, _>(a.cols, cols, &mut visit);
            for (j, sum) in block.into_iter().zip(visit.finish()) {
                let sum = if sum.to_f64().is_nan() {
                    // Perhaps an infinite or NaN entry in a dropped column (see `Dots`):
                    // the row again, its dropped entries masked out.
                    let mut guarded = Dots::<V, 1, true, STAGED>::new([row(j)], g.x.ptr);
                    walk::<V, U, _>(a.cols, cols, &mut guarded);
                    guarded.finish()[0]
                } else {
                    sum
                };
                let yj = g.y.ptr.add(j * g.y.row_stride);
                *yj = g.alpha * sum + beta_times(g.beta, *yj);
            }
        }
    }
    let mut blocks = Blocks::new(kept(g.row_mask, g.a.rows));
    while let Some((block, count)) = blocks.next() {
        // SAFETY: kept rows below a.rows; the caller's contract.
        unsafe {
            prefetch_lines::<V>(g.a.ptr, g.a.row_stride, g.a.cols, blocks.peek());
            if blocked::<V>(count) {
                pass::<V, U, STAGED, BLOCK>(g, block, cols);
            } else {
                for &j in &block[..count] {
                    pass::<V, U, STAGED, 1>(g, [j], cols);
                }
            }
        }
    }
}

/// Bytes of the stack buffer into which [`gemv_dots_masked`] copies `x`: 1024 `f32` or
/// 512 `f64`.
const STAGE_BYTES: usize = 4096;

/// The stack buffer of [`gemv_dots_masked`], aligned for any vector.
#[repr(C, align(64))]
struct StageBuf(MaybeUninit<[u8; STAGE_BYTES]>);

/// `x`'s kept elements, copied into `to`, with the dropped lanes of a chunk that keeps
/// some as +0.0.
struct Stage<V: Lanes> {
    x: *const V::Elem,
    to: *mut V::Elem,
}

impl<V: Lanes> Visit<V> for Stage<V> {
    #[inline(always)]
    unsafe fn chunk<const SLOT: usize>(&mut self, i: usize) {
        // SAFETY: `Visit::chunk`'s contract.
        unsafe { V::load(self.x.add(i)).store(self.to.add(i)) }
    }
    #[inline(always)]
    unsafe fn partial<const SLOT: usize>(&mut self, i: usize, m: V::Mask) {
        // SAFETY: `Visit::partial`'s contract.
        unsafe { V::load_masked(self.x.add(i), m).store(self.to.add(i)) }
    }
    #[inline(always)]
    unsafe fn single(&mut self, i: usize) {
        // SAFETY: `Visit::single`'s contract.
        unsafe { *self.to.add(i) = *self.x.add(i) }
    }
}

/// [`gemv_dots`] under a column mask, with `x` staged: its kept elements are copied
/// once, the dropped ones as +0.0, into a buffer on the stack, and the dot products load
/// that copy as it is, so a row block's chunk takes the dense kernel's loads and fused
/// multiply-adds, with no lane mask looked up and applied to `x` (a load and an AND per
/// chunk, which took load slots from the rows: AVX2, Zen 1 host, row-major `forward`,
/// keep 0.5, against the dense kernel: 1.15x at 1024x1024 and 1.16x at 256x256 before,
/// 1.01x and 1.03-1.04x staged). Only for an `x` that fits the buffer (a wider one would
/// be staged in pieces, and walking the rows piece by piece was slower: 1.44x against
/// 1.05x at 4096x4096) and for four rows or more, which pay for the copy; the others
/// take [`gemv_dots`] with the mask, and a mask that keeps every unit takes it with none.
///
/// # Safety
///
/// As for [`gemv`], with `a.col_stride == 1`, `x` contiguous, and `mask` the column
/// mask's words.
#[inline(always)]
unsafe fn gemv_dots_masked<V: Lanes>(g: &Gemv<'_, V::Elem>, mask: *const u64) {
    let cols = Bits(mask);
    let n = g.a.cols;
    // SAFETY: the mask has words_for(n) words, clear past n.
    let all_kept = unsafe {
        (0..n / 64).all(|w| cols.word(w) == u64::MAX)
            && (n % 64 == 0 || cols.word(n / 64) == valid_bits(n % 64))
    };
    if all_kept {
        // Nothing to stage: the dense kernel itself.
        // SAFETY: the caller's contract is `gemv_dots`'.
        return unsafe { gemv_dots::<V, _, false>(g, AllKept) };
    }
    if n > STAGE_BYTES / size_of::<V::Elem>() || g.a.rows < BLOCK {
        // SAFETY: the caller's contract is `gemv_dots`'.
        return unsafe { gemv_dots::<V, _, false>(g, cols) };
    }
    let mut buf = StageBuf(MaybeUninit::uninit());
    let stage = buf.0.as_mut_ptr().cast::<V::Elem>();
    // SAFETY: the buffer holds n elements, aligned; all-zero bits are +0.0. Then the
    // mask has words_for(n) words with clear bits past n, and x has n elements.
    unsafe {
        core::ptr::write_bytes(stage, 0, n);
        walk::<V, Bits, _>(
            n,
            cols,
            &mut Stage {
                x: g.x.ptr,
                to: stage,
            },
        );
    }
    let staged = Gemv {
        x: RawMat {
            ptr: stage.cast_const(),
            ..g.x
        },
        ..*g
    };
    // SAFETY: as the caller's, with x the n initialised elements of the stage.
    unsafe { gemv_dots::<V, _, true>(&staged, cols) }
}

/// # Safety
///
/// As for [`gemv`], with `a.row_stride == 1` and `y` contiguous.
#[inline(always)]
unsafe fn gemv_axpys<V: Lanes, U: Units>(g: &Gemv<'_, V::Elem>, rows: U) {
    /// One pass for the `R` columns in `block`.
    ///
    /// # Safety
    ///
    /// As for [`gemv_axpys`], for kept columns `block`.
    #[inline(always)]
    unsafe fn pass<V: Lanes, U: Units, const R: usize>(
        g: &Gemv<'_, V::Elem>,
        block: [usize; R],
        rows: U,
    ) {
        let a = g.a;
        // SAFETY: column i < a.cols is a.rows contiguous elements, as is y; x has a.cols
        // elements.
        unsafe {
            let c_scalar = block.map(|i| g.alpha * *g.x.ptr.add(i * g.x.row_stride));
            let mut visit = Combine {
                a: block.map(|i| a.ptr.add(i * a.col_stride)),
                c: splat_each::<V, R>(c_scalar),
                c_scalar,
                y: g.y.ptr,
            };
            walk::<V, U, _>(a.rows, rows, &mut visit);
        }
    }
    // SAFETY: y is a.rows contiguous elements.
    unsafe { scale::<V, U>(g.a.rows, g.beta, g.y.ptr, rows) };
    let mut blocks = Blocks::new(kept(g.col_mask, g.a.cols));
    while let Some((block, count)) = blocks.next() {
        // SAFETY: kept columns below a.cols; the caller's contract.
        unsafe {
            prefetch_lines::<V>(g.a.ptr, g.a.col_stride, g.a.rows, blocks.peek());
            if blocked::<V>(count) {
                pass::<V, U, BLOCK>(g, block, rows);
            } else {
                for &i in &block[..count] {
                    pass::<V, U, 1>(g, [i], rows);
                }
            }
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

/// Rows of a masked scatter: `dst[i] = src[k] + beta · dst[i]` for the `k`-th kept unit
/// `i`, a chunk of `LANES` units at a time: the chunk's kept values are expanded from
/// `src` into their lanes, combined with `dst`, and the dropped lanes keep `dst`'s bits
/// (a chunk with no kept unit is skipped; the tail of a row goes unit by unit). A full
/// set of [`super::EXPAND_ROWS`] rows goes chunk by chunk through all of them, each
/// chunk's lane mask and permutation decoded once (the row-major batch `dW` at m = 32
/// spent a quarter of its time here when each row decoded its own).
///
/// # Safety
///
/// The `Expand`'s contract (see [`super::Expand`]) and the CPU features of `V`.
#[cfg(feature = "alloc")]
#[inline(always)]
pub(crate) unsafe fn expand<V: Lanes>(e: &super::Expand<'_, V::Elem>) {
    // SAFETY: the caller's contract; rows `first .. first + R` are below `e.rows`.
    unsafe {
        if e.rows == super::EXPAND_ROWS {
            expand_rows::<V, { super::EXPAND_ROWS }>(e, 0)
        } else {
            for q in 0..e.rows {
                expand_rows::<V, 1>(e, q)
            }
        }
    }
}

/// Rows `first .. first + R` of an [`expand`].
///
/// # Safety
///
/// As for [`expand`], with `first + R <= e.rows`.
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn expand_rows<V: Lanes, const R: usize>(e: &super::Expand<'_, V::Elem>, first: usize) {
    // Pointer arithmetic only: the rows exist by the caller's contract.
    let src = core::array::from_fn(|q| e.src.wrapping_add((first + q) * e.src_stride));
    let dst = core::array::from_fn(|q| e.dst[first + q]);
    let rows = Rows { src, dst };
    // SAFETY: the caller's contract.
    unsafe {
        if e.zero_dropped {
            debug_assert!(e.beta == V::Elem::ZERO);
            expand_zeroing::<V, R>(e, rows)
        } else if e.beta == V::Elem::ZERO {
            expand_with::<V, 0, R>(e, rows)
        } else if e.beta == V::Elem::ONE {
            expand_with::<V, 1, R>(e, rows)
        } else {
            expand_with::<V, 2, R>(e, rows)
        }
    }
}

/// `R` rows of an [`expand`]: where each one's compact values start, and its output.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy)]
struct Rows<T, const R: usize> {
    src: [*const T; R],
    dst: [*mut T; R],
}

/// [`expand`] for `beta = 0` (`MODE` 0), `beta = 1` (1) or any other (2), on `R` rows
/// that share the mask: each chunk's bits are decoded once for all of them.
///
/// # Safety
///
/// As for [`expand`], for the rows of `rows`.
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn expand_with<V: Lanes, const MODE: u8, const R: usize>(
    e: &super::Expand<'_, V::Elem>,
    rows: Rows<V::Elem, R>,
) {
    let land = |v: V::Elem, d: V::Elem| match MODE {
        0 => v,
        1 => d + v,
        _ => v + e.beta * d,
    };
    // The kept units, so that a word whose values lie well inside `src` can load them
    // whole, without a masked load.
    let count: usize = e.words.iter().map(|w| w.count_ones() as usize).sum();
    let mut k = 0;
    // SAFETY: every chunk below lies inside each `dst` row's `len` elements (whole chunks
    // only where `i + LANES <= len`); `k` counts the kept units before `i`, so the chunk's
    // `count_ones(bits)` values lie inside each source row; a whole-vector load at
    // `src + k` is taken only when `k + 64 <= count`, and a word's chunks load from at
    // most `k + 64 - LANES`, so they read inside the source rows too.
    unsafe {
        let beta = V::splat(e.beta);
        for (w, &word) in e.words.iter().enumerate() {
            if word == 0 {
                continue;
            }
            let i0 = 64 * w;
            if V::SPREADS && i0 + 64 <= e.len && k + 64 <= count {
                // A whole word: its chunks without branches, each from a plain load
                // spread over the chunk's kept lanes.
                for c in 0..64 / V::LANES {
                    let bits = (word >> (c * V::LANES)) & V::ALL;
                    let m = V::lane_mask(bits);
                    for q in 0..R {
                        let v = V::load(rows.src[q].add(k)).spread(bits);
                        land_chunk::<V, MODE>(v, m, beta, rows.dst[q].add(i0 + c * V::LANES));
                    }
                    k += bits.count_ones() as usize;
                }
                continue;
            }
            for q in 0..R {
                let (src, dst) = (rows.src[q], rows.dst[q]);
                let mut kk = k;
                let mut c = 0;
                while c < 64 && word >> c != 0 {
                    let i = i0 + c;
                    let bits = (word >> c) & V::ALL;
                    if bits != 0 {
                        if i + V::LANES <= e.len {
                            // Only the values the chunk takes are read.
                            let v = V::expand_load(src.add(kk), bits);
                            land_chunk::<V, MODE>(v, V::lane_mask(bits), beta, dst.add(i));
                        } else {
                            let (mut b, mut kb) = (bits, kk);
                            while b != 0 {
                                let p = dst.add(i + b.trailing_zeros() as usize);
                                *p = land(*src.add(kb), *p);
                                kb += 1;
                                b &= b - 1;
                            }
                        }
                        kk += bits.count_ones() as usize;
                    }
                    c += V::LANES;
                }
            }
            k += word.count_ones() as usize;
        }
    }
}

/// [`expand`] with `zero_dropped`, on `R` rows: every unit of each row is written, the
/// kept ones from the source, the dropped ones 0, whole chunks at a time (no read of
/// `dst`, no skipped chunk, and no second pass to zero the dropped units).
///
/// # Safety
///
/// As for [`expand`], for the rows of `rows`.
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn expand_zeroing<V: Lanes, const R: usize>(
    e: &super::Expand<'_, V::Elem>,
    rows: Rows<V::Elem, R>,
) {
    let count: usize = e.words.iter().map(|w| w.count_ones() as usize).sum();
    let mut k = 0;
    // SAFETY: as in `expand_with`: chunks are stored whole only where `i + LANES <= len`,
    // `k` counts the kept units before `i` (so a chunk's values lie inside each source
    // row), and a whole-vector load at `src + k` is taken only when `k + 64 <= count`.
    unsafe {
        let zero = V::splat(V::Elem::ZERO);
        for (w, &word) in e.words.iter().enumerate() {
            let i0 = 64 * w;
            if i0 + 64 > e.len {
                // The rows' last, partial word: unit by unit.
                for q in 0..R {
                    let mut kk = k;
                    for i in i0..e.len {
                        *rows.dst[q].add(i) = if word >> (i - i0) & 1 != 0 {
                            kk += 1;
                            *rows.src[q].add(kk - 1)
                        } else {
                            V::Elem::ZERO
                        };
                    }
                }
                k += word.count_ones() as usize;
                continue;
            }
            for c in 0..64 / V::LANES {
                let bits = (word >> (c * V::LANES)) & V::ALL;
                let i = i0 + c * V::LANES;
                if bits == 0 {
                    for q in 0..R {
                        zero.store(rows.dst[q].add(i));
                    }
                } else if V::SPREADS && k + 64 <= count {
                    // A plain load spread over the kept lanes; the others set to 0.
                    let m = V::lane_mask(bits);
                    for q in 0..R {
                        let v = V::load(rows.src[q].add(k)).spread(bits);
                        V::select(m, v, zero).store(rows.dst[q].add(i));
                    }
                } else {
                    // Reads only the chunk's values; the other lanes are 0.
                    for q in 0..R {
                        V::expand_load(rows.src[q].add(k), bits).store(rows.dst[q].add(i));
                    }
                }
                k += bits.count_ones() as usize;
            }
        }
    }
}

/// Lands the values `v` of an expanded chunk on the kept lanes (`m`, the chunk's lane
/// mask) of `p`, as [`expand_with`]'s `MODE` says (`v`, `d + v` or `v + beta · d`); the
/// other lanes keep their bits.
///
/// # Safety
///
/// `p` is valid for reads and writes of `LANES` elements; the CPU has the features of `V`.
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn land_chunk<V: Lanes, const MODE: u8>(v: V, m: V::Mask, beta: V, p: *mut V::Elem) {
    // SAFETY: the caller's contract.
    unsafe {
        let d = V::load(p);
        let r = match MODE {
            0 => v,
            1 => d.add(v),
            _ => d.mul_add(beta, v),
        };
        r.store_select(m, d, p);
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
