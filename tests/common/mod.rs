//! Test harness shared by the kernel tests: padded layouts, adversarial masks, poisoned
//! inputs, and the comparison with the reference.
//!
//! Miri runs these suites, and there the harness, not the kernels, took most of the
//! time. So the per-entry helpers index boxed slices (under miri a `Vec`'s index is a
//! chain of calls, a slice's a plain place), and case names are formatted only for a
//! failure.
#![allow(dead_code)]

use core::fmt::Display;

use bitdrop::{Element, KeepProb, Mask, MaskMut, MatMut, MatRef, sample, words_for};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

/// The element types under test, with a signaling NaN each: an entry that must stay
/// untouched is pre-filled with it and compared bitwise afterwards. Any arithmetic on a
/// signaling NaN (even `x + 0`) returns it quieted, so a write-back shows.
pub trait Float: Element {
    fn sentinel() -> Self;
}

impl Float for f32 {
    fn sentinel() -> f32 {
        f32::from_bits(0x7f80_beef)
    }
}

impl Float for f64 {
    fn sentinel() -> f64 {
        f64::from_bits(0x7ff0_dead_beef_0001)
    }
}

/// Sizes that hit every tail: empty, one, below/at/above a 64-unit word, several words.
pub const SIZES: &[usize] = if cfg!(miri) {
    &[0, 1, 7, 65]
} else {
    &[0, 1, 7, 63, 64, 65, 200]
};

/// Whether to run case number `n` of `elements` matrix entries: all natively; under
/// miri (a thousand times slower than a debug build) every 13th case of at most 512
/// entries. The stride is prime to the loop counts, so the sample still walks across
/// sizes, layouts and masks, and 65 x 7 keeps a multi-word mask in it.
pub fn sampled(n: usize, elements: usize) -> bool {
    !cfg!(miri) || (n.is_multiple_of(13) && elements <= 512)
}

/// Runs `f` at every instruction-set level this CPU has (scalar, then each SIMD level),
/// checking that the forced level is the one in force. Without `std` there is no
/// forcing: `f` runs once, at the compile-time level.
///
/// `BITDROP_TEST_LEVELS=avx512` (comma-separated names) runs only the named levels, each
/// of which must be available: CI's miri run of the SIMD levels spends its time on the
/// ones the native run cannot reach.
pub fn at_every_level(mut f: impl FnMut()) {
    #[cfg(feature = "std")]
    for level in levels_under_test() {
        bitdrop::with_level(level, || {
            assert_eq!(bitdrop::Level::current(), level);
            f()
        })
        .unwrap();
    }
    #[cfg(not(feature = "std"))]
    f();
}

/// Every available level, or those `BITDROP_TEST_LEVELS` names (see [`at_every_level`]).
#[cfg(feature = "std")]
fn levels_under_test() -> Vec<bitdrop::Level> {
    match std::env::var("BITDROP_TEST_LEVELS") {
        Ok(names) => names
            .split(',')
            .map(|name| {
                let level: bitdrop::Level = name.trim().parse().expect("BITDROP_TEST_LEVELS");
                assert!(level.is_available(), "{level} is not available here");
                level
            })
            .collect(),
        Err(_) => bitdrop::Level::available().collect(),
    }
}

pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// A uniform value in [-1, 1).
pub fn uniform(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// How a matrix is laid out in its buffer. Every layout leaves padding around the view
/// that must stay untouched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// Contiguous rows, padded: strides (cols + 3, 1).
    RowMajor,
    /// Contiguous columns, padded: strides (1, rows + 3).
    ColMajor,
    /// Neither dimension contiguous: strides (2, 2 * rows + 1).
    Strided,
}

pub const LAYOUTS: [Layout; 3] = [Layout::RowMajor, Layout::ColMajor, Layout::Strided];

/// A matrix in a padded buffer.
#[derive(Debug, Clone)]
pub struct Mat<T> {
    pub data: Box<[T]>,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<T: Element> Mat<T> {
    /// A `rows x cols` matrix in `layout`, every buffer element `fill`.
    pub fn new(rows: usize, cols: usize, layout: Layout, fill: T) -> Self {
        let (rs, cs) = match layout {
            Layout::RowMajor => (cols + 3, 1),
            Layout::ColMajor => (1, rows + 3),
            Layout::Strided => (2, 2 * rows + 1),
        };
        let len = if rows == 0 || cols == 0 {
            5
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1 + 5
        };
        Mat {
            data: vec![fill; len].into_boxed_slice(),
            rows,
            cols,
            rs,
            cs,
        }
    }

    pub fn idx(&self, i: usize, j: usize) -> usize {
        i * self.rs + j * self.cs
    }

    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[self.idx(i, j)]
    }

    pub fn set(&mut self, i: usize, j: usize, v: T) {
        let k = self.idx(i, j);
        self.data[k] = v;
    }

    pub fn view(&self) -> MatRef<'_, T> {
        MatRef::new(&self.data, self.rows, self.cols, self.rs, self.cs).unwrap()
    }

    pub fn view_mut(&mut self) -> MatMut<'_, T> {
        MatMut::new(&mut self.data, self.rows, self.cols, self.rs, self.cs).unwrap()
    }

    /// For each buffer position: whether it lies inside the view.
    pub fn in_view(&self) -> Box<[bool]> {
        let mut inside = vec![false; self.data.len()].into_boxed_slice();
        for i in 0..self.rows {
            for j in 0..self.cols {
                inside[self.idx(i, j)] = true;
            }
        }
        inside
    }

    /// Fills the view with uniform values.
    pub fn randomize(&mut self, rng: &mut Xoshiro256PlusPlus) {
        for i in 0..self.rows {
            for j in 0..self.cols {
                self.set(i, j, T::from_f64(uniform(rng)));
            }
        }
    }
}

/// A vector of uniform values.
pub fn random_vec<T: Element>(n: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<T> {
    (0..n).map(|_| T::from_f64(uniform(rng))).collect()
}

/// The adversarial masks: all kept, none kept, random at 0.1, 0.5 and 0.9, a single
/// kept unit (the last one: it sits in the tail).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaskKind {
    All,
    None,
    Random(f64),
    Single,
}

pub const MASK_KINDS: [MaskKind; 6] = [
    MaskKind::All,
    MaskKind::None,
    MaskKind::Random(0.1),
    MaskKind::Random(0.5),
    MaskKind::Random(0.9),
    MaskKind::Single,
];

/// Owned mask words.
#[derive(Debug, Clone)]
pub struct Bits {
    pub words: Vec<u64>,
    pub len: usize,
    /// `kept(i)` for each unit, decoded once (the checks ask per entry).
    flags: Box<[bool]>,
}

/// Each unit's bit, read straight from the words (the checks' own decoding, independent
/// of the crate's `Mask::is_kept`).
fn flags(words: &[u64], len: usize) -> Box<[bool]> {
    (0..len)
        .map(|i| words[i / 64] >> (i % 64) & 1 == 1)
        .collect()
}

impl Bits {
    pub fn new(kind: MaskKind, len: usize, rng: &mut Xoshiro256PlusPlus) -> Self {
        let mut words = vec![0u64; words_for(len)];
        let mut mask = MaskMut::new(&mut words, len).unwrap();
        match kind {
            MaskKind::All => mask.fill(true),
            MaskKind::None => mask.fill(false),
            MaskKind::Random(keep) => {
                sample::bernoulli(rng, KeepProb::new(keep).unwrap(), &mut mask)
            }
            MaskKind::Single => mask.fill_with(|i| i + 1 == len),
        }
        let flags = flags(&words, len);
        Bits { words, len, flags }
    }

    /// A mask from its words (checked).
    pub fn new_from_words(words: Vec<u64>, len: usize) -> Self {
        Mask::new(&words, len).expect("the words are a mask of len units");
        let flags = flags(&words, len);
        Bits { words, len, flags }
    }

    pub fn mask(&self) -> Mask<'_> {
        Mask::new(&self.words, self.len).unwrap()
    }

    pub fn kept(&self, i: usize) -> bool {
        self.flags[i]
    }
}

/// Writes NaN, +inf or -inf (in turn) into every dropped entry of `v`.
pub fn poison_vec<T: Element>(v: &mut [T], mask: &Bits) {
    for (i, x) in v.iter_mut().enumerate() {
        if !mask.kept(i) {
            *x = poison(i);
        }
    }
}

pub fn poison<T: Element>(i: usize) -> T {
    T::from_f64([f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i % 3])
}

/// The tolerance for a computed entry: a sum of `terms` products whose absolute values
/// add up to `abs_sum`, computed in two different orders (kernel and reference), each
/// with at most `terms + 2` roundings.
pub fn tolerance<T: Element>(terms: usize, abs_sum: f64) -> f64 {
    2.0 * (terms as f64 + 2.0) * T::EPSILON.to_f64() * abs_sum + f64::MIN_POSITIVE
}

/// Compares a computed matrix with the reference result entry by entry.
///
/// `state(i, j)` says what the entry must be: `Untouched` (bitwise as before), `Zero`
/// (exactly +0.0), or `Close(terms, abs_sum)` (within [`tolerance`] of the reference).
/// Every buffer element outside the view must be untouched too. `what` names the case in
/// a failure's message (pass `format_args!`: it is formatted only then).
pub fn compare<T: Element>(
    what: impl Display,
    before: &Mat<T>,
    actual: &Mat<T>,
    expected: &Mat<T>,
    state: impl Fn(usize, usize) -> Entry,
) {
    for i in 0..actual.rows {
        for j in 0..actual.cols {
            let (a, e, b) = (actual.get(i, j), expected.get(i, j), before.get(i, j));
            match state(i, j) {
                Entry::Untouched => assert_eq!(
                    a.to_bits_u64(),
                    b.to_bits_u64(),
                    "{what}: ({i}, {j}) must be untouched: was {b}, now {a}"
                ),
                Entry::Zero => assert_eq!(
                    a.to_bits_u64(),
                    T::ZERO.to_bits_u64(),
                    "{what}: ({i}, {j}) must be exactly 0, is {a}"
                ),
                Entry::Close(terms, abs_sum) => {
                    let tol = tolerance::<T>(terms, abs_sum);
                    let diff = (a.to_f64() - e.to_f64()).abs();
                    assert!(
                        diff <= tol,
                        "{what}: ({i}, {j}) is {a}, reference {e}, |diff| {diff:e} > {tol:e}"
                    );
                }
            }
        }
    }
    for (k, inside) in actual.in_view().into_iter().enumerate() {
        if !inside {
            assert_eq!(
                actual.data[k].to_bits_u64(),
                before.data[k].to_bits_u64(),
                "{what}: buffer element {k} outside the view was written"
            );
        }
    }
}

/// What an output entry must be after a kernel.
#[derive(Debug, Clone, Copy)]
pub enum Entry {
    Untouched,
    Zero,
    Close(usize, f64),
}

/// A vector as an `n x 1` matrix (for [`compare`]).
pub fn column<T: Element>(v: &[T]) -> Mat<T> {
    Mat {
        data: v.into(),
        rows: v.len(),
        cols: 1,
        rs: 1,
        cs: 1,
    }
}
