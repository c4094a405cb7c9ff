//! What the comparison targets share: values with NaN, infinities, subnormals and huge
//! magnitudes; strided layouts in padded buffers; masks; and the judge that compares a
//! kernel's output with the reference's.
//!
//! # What "agrees with the reference" means here
//!
//! Every output position is one of:
//!
//! - **untouched**: a skipped entry, or buffer outside the view. Pre-filled with a
//!   signaling NaN and compared bitwise: any write, even `x + 0`, shows.
//! - **zero**: the input gradient of a dropped unit, exactly `+0.0`.
//! - **computed**: `Σ_t Π_f factor + extras`. Judged by what its *read* (kept) inputs
//!   are: a NaN among them makes both results NaN; an infinity (and no NaN) makes both
//!   non-finite; all finite, both are within
//!   `2 (n + 6) eps Σ|products| + 3 η Σ_t (1 + P_t) + 8 η` (η the smallest subnormal,
//!   `P_t` the largest partial product of term `t`'s factors: an underflow in one partial
//!   product is multiplied by the others), compared only when no
//!   partial product or partial sum, in any association, can reach `MAX / 4` and when
//!   `keep` and `1 / keep` are normal numbers of the element type (the kernels fold
//!   `1 / keep` into alpha, the reference divides by `keep`; outside that range the two
//!   round differently, and only the class rules and the untouched entries are checked).
//!
//! Inputs are poisoned where they must not be read (dropped units' entries, padding):
//! NaN and infinities there would leak into a computed entry and fail the value rule.

use arbitrary::{Arbitrary, Unstructured};
use bitdrop::{Element, KeepProb, Level, Mask, MatMut, MatRef, words_for};

/// The targets' input reader.
pub type U<'a> = Unstructured<'a>;

/// Runs `f` at every instruction-set level this CPU has, each forced on this thread.
pub fn at_every_level(mut f: impl FnMut(Level)) {
    for level in Level::available() {
        bitdrop::with_level(level, || {
            assert_eq!(Level::current(), level, "with_level did not force {level}");
            f(level)
        })
        .expect("an available level can be forced");
    }
}

/// The element types, with what the judge needs to know about them.
pub trait Float: Element {
    const NAME: &'static str;
    const MAX: f64;
    /// Smallest positive normal.
    const MIN_NORMAL: f64;
    /// Smallest positive subnormal.
    const ETA: f64;
    /// A signaling NaN: any arithmetic on it returns it quieted, so a write shows.
    fn sentinel() -> Self;
    /// An arbitrary bit pattern.
    fn from_raw(bits: u64) -> Self;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    const MAX: f64 = f32::MAX as f64;
    const MIN_NORMAL: f64 = f32::MIN_POSITIVE as f64;
    const ETA: f64 = f32::from_bits(1) as f64;
    fn sentinel() -> f32 {
        f32::from_bits(0x7f80_beef)
    }
    fn from_raw(bits: u64) -> f32 {
        f32::from_bits(bits as u32)
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    const MAX: f64 = f64::MAX;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    const ETA: f64 = 5e-324;
    fn sentinel() -> f64 {
        f64::from_bits(0x7ff0_dead_beef_0001)
    }
    fn from_raw(bits: u64) -> f64 {
        f64::from_bits(bits)
    }
}

/// SplitMix64: the value stream of one case, so that a few input bytes describe a few
/// hundred thousand values.
#[derive(Debug, Clone)]
pub struct Gen {
    state: u64,
    /// Out of 256: how often a value is special (NaN, inf, subnormal, huge, raw bits).
    special: u8,
    /// Ordinary values are uniform in `[-2^exp, 2^exp)`.
    exp: i32,
}

/// How a case's values are drawn (fuzzer-chosen).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ValueSpec {
    pub seed: u64,
    pub special: u8,
    pub exp: i8,
}

impl Gen {
    pub fn new(spec: ValueSpec) -> Gen {
        Gen {
            state: spec.seed,
            // Often no specials at all, so that the value rule gets exercised.
            special: if spec.special >= 128 { 0 } else { spec.special },
            exp: i32::from(spec.exp) % 24,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// One value: usually uniform, sometimes special.
    pub fn value<T: Float>(&mut self) -> T {
        let r = self.next_u64();
        if (r & 0xff) < u64::from(self.special) {
            special(r >> 8)
        } else {
            let u = (r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            T::from_f64(u * 2f64.powi(self.exp))
        }
    }

    /// A value that must never be read: NaN or an infinity.
    pub fn poison<T: Float>(&mut self) -> T {
        match self.next_u64() % 4 {
            0 => T::from_f64(f64::NAN),
            1 => T::from_f64(f64::INFINITY),
            2 => T::from_f64(f64::NEG_INFINITY),
            _ => T::sentinel(),
        }
    }
}

/// NaN, the infinities, zeros, subnormals, the largest values, raw bit patterns.
fn special<T: Float>(r: u64) -> T {
    let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
    let k = r >> 5;
    let x = match (r >> 1) % 16 {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => 0.0,
        3 => T::ETA * (1 + k % 1000) as f64,
        4 => T::MIN_NORMAL * (1.0 + (k % 1000) as f64 / 1000.0),
        5 => T::MAX * (0.5 + (k % 1000) as f64 / 2000.0),
        6 => T::MAX.sqrt() * (1 + k % 100) as f64,
        7 => 1.0,
        8 => 2f64.powi((k % 200) as i32 - 100),
        9 => return T::from_raw(k),
        10 => T::MIN_NORMAL / 2.0,
        11 => 1.0 / T::MAX.sqrt(),
        _ => (k % 1000) as f64 / 256.0,
    };
    T::from_f64(sign * x)
}

/// A fuzzer-chosen keep probability: some ordinary, some extreme (but valid) ones.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum KeepSpec {
    Eighths(u8),
    Bits(u64),
    One,
    Half,
    Tiny(u16),
}

impl KeepSpec {
    pub fn get(self) -> KeepProb {
        let keep = match self {
            KeepSpec::Eighths(k) => f64::from(k % 8 + 1) / 8.0,
            KeepSpec::Bits(b) => f64::from_bits(b),
            KeepSpec::One => 1.0,
            KeepSpec::Half => 0.5,
            KeepSpec::Tiny(e) => 2f64.powi(-i32::from(e % 1100)),
        };
        KeepProb::new(keep).unwrap_or(KeepProb::new(0.75).unwrap())
    }
}

/// Whether the kernels' `1 / keep` (rounded to `T`) and the reference's division by
/// `keep` (rounded to `T`) agree to a few ulps: both are normal numbers of `T`.
pub fn keep_is_ordinary<T: Float>(keep: KeepProb) -> bool {
    let k = T::from_f64(keep.get()).to_f64();
    let s = T::from_f64(keep.scale()).to_f64();
    k >= T::MIN_NORMAL && s.is_finite() && s <= T::MAX / 4.0
}

/// A fuzzer-chosen size in `0 ..= max`, small ones as likely as large ones.
pub fn size(u: &mut U, max: usize) -> arbitrary::Result<usize> {
    let small: bool = u.arbitrary()?;
    if small {
        u.int_in_range(0..=max.min(9))
    } else {
        u.int_in_range(0..=max)
    }
}

/// How a matrix lies in its buffer.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct LayoutSpec {
    kind: u8,
    a: u8,
    b: u8,
    /// Elements before the view: changes alignment.
    offset: u8,
}

impl LayoutSpec {
    pub const ROW_MAJOR: LayoutSpec = LayoutSpec {
        kind: 0,
        a: 0,
        b: 0,
        offset: 0,
    };

    /// `(row_stride, col_stride)` for a `rows x cols` view; `any` admits strides that
    /// make elements share places (fine for read-only views).
    fn strides(self, rows: usize, cols: usize, any: bool) -> (usize, usize) {
        let (a, b) = (usize::from(self.a), usize::from(self.b));
        match self.kind % if any { 7 } else { 6 } {
            0 => (cols, 1),
            1 => (1, rows),
            2 => (cols + a % 5, 1),
            3 => (1, rows + a % 5),
            // Neither dimension contiguous, never aliasing.
            4 => {
                let s = 2 + a % 3;
                (s, rows * s + 1 + b % 3)
            }
            5 => {
                let s = 2 + a % 3;
                (cols * s + 1 + b % 3, s)
            }
            // Small arbitrary strides, zero (broadcast) and interleaved included.
            _ => (a % 6, b % 6),
        }
    }
}

/// A `rows x cols` matrix in a padded buffer.
#[derive(Debug, Clone)]
pub struct Mat<T> {
    pub data: Vec<T>,
    pub off: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<T: Float> Mat<T> {
    /// A matrix in `layout` (row-major if `mutable` and the layout would alias), every
    /// buffer element `T::sentinel()`.
    pub fn new(rows: usize, cols: usize, layout: LayoutSpec, mutable: bool) -> Mat<T> {
        let (mut rs, mut cs) = layout.strides(rows, cols, !mutable);
        let off = usize::from(layout.offset % 4);
        let pad = usize::from(layout.b % 3);
        let extent = |rs: usize, cs: usize| {
            if rows == 0 || cols == 0 {
                0
            } else {
                (rows - 1) * rs + (cols - 1) * cs + 1
            }
        };
        if mutable {
            let mut scratch = vec![T::ZERO; off + extent(rs, cs) + pad];
            if MatMut::new(&mut scratch[off..], rows, cols, rs, cs).is_err() {
                (rs, cs) = (cols, 1);
            }
        }
        Mat {
            data: vec![T::sentinel(); off + extent(rs, cs) + pad],
            off,
            rows,
            cols,
            rs,
            cs,
        }
    }

    pub fn idx(&self, i: usize, j: usize) -> usize {
        self.off + i * self.rs + j * self.cs
    }

    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[self.idx(i, j)]
    }

    pub fn set(&mut self, i: usize, j: usize, v: T) {
        let k = self.idx(i, j);
        self.data[k] = v;
    }

    pub fn view(&self) -> MatRef<'_, T> {
        MatRef::new(
            &self.data[self.off..],
            self.rows,
            self.cols,
            self.rs,
            self.cs,
        )
        .expect("a fuzz matrix fits its buffer")
    }

    pub fn view_mut(&mut self) -> MatMut<'_, T> {
        MatMut::new(
            &mut self.data[self.off..],
            self.rows,
            self.cols,
            self.rs,
            self.cs,
        )
        .expect("a mutable fuzz matrix neither overflows nor aliases")
    }

    /// Fills the view: `read(i, j)` entries get values, the others poison, except at
    /// places shared with a read entry (zero strides), which keep a value.
    pub fn fill(&mut self, g: &mut Gen, read: impl Fn(usize, usize) -> bool) {
        let mut needed = vec![false; self.data.len()];
        for i in 0..self.rows {
            for j in 0..self.cols {
                if read(i, j) {
                    needed[self.idx(i, j)] = true;
                }
            }
        }
        for i in 0..self.rows {
            for j in 0..self.cols {
                let k = self.idx(i, j);
                self.data[k] = if needed[k] { g.value() } else { g.poison() };
            }
        }
    }
}

/// A vector (`n x 1`, contiguous: the slice arguments).
pub fn vector<T: Float>(n: usize, g: &mut Gen, read: impl Fn(usize) -> bool) -> Vec<T> {
    (0..n)
        .map(|i| if read(i) { g.value() } else { g.poison() })
        .collect()
}

/// How a mask is made (fuzzer-chosen).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MaskSpec {
    All,
    None,
    /// Each unit kept with probability `d / 256` (from the case's value stream).
    Density(u8),
    /// Only the last unit kept (it sits in the tail word).
    Last,
    /// Runs of `a + 1` kept, `b + 1` dropped.
    Runs(u8, u8),
    /// Words from the input.
    Words,
}

/// An owned mask.
#[derive(Debug, Clone)]
pub struct Bits {
    pub words: Vec<u64>,
    pub len: usize,
    flags: Vec<bool>,
}

impl Bits {
    pub fn new(spec: MaskSpec, len: usize, g: &mut Gen, u: &mut U) -> Bits {
        let flags: Vec<bool> = match spec {
            MaskSpec::All => vec![true; len],
            MaskSpec::None => vec![false; len],
            MaskSpec::Density(d) => (0..len)
                .map(|_| (g.next_u64() & 0xff) < u64::from(d))
                .collect(),
            MaskSpec::Last => (0..len).map(|i| i + 1 == len).collect(),
            MaskSpec::Runs(a, b) => {
                let (a, b) = (usize::from(a % 70) + 1, usize::from(b % 70) + 1);
                (0..len).map(|i| i % (a + b) < a).collect()
            }
            MaskSpec::Words => {
                let mut flags = Vec::with_capacity(len);
                while flags.len() < len {
                    let w: u64 = u.arbitrary().unwrap_or(0);
                    let take = (len - flags.len()).min(64);
                    flags.extend((0..take).map(|b| w >> b & 1 == 1));
                }
                flags
            }
        };
        let mut words = vec![0u64; words_for(len)];
        for (i, &kept) in flags.iter().enumerate() {
            words[i / 64] |= u64::from(kept) << (i % 64);
        }
        Bits { words, len, flags }
    }

    pub fn all(len: usize) -> Bits {
        let mut g = Gen::new(ValueSpec {
            seed: 0,
            special: 0,
            exp: 0,
        });
        Bits::new(MaskSpec::All, len, &mut g, &mut Unstructured::new(&[]))
    }

    pub fn mask(&self) -> Mask<'_> {
        Mask::new(&self.words, self.len).expect("fuzz masks are valid")
    }

    pub fn kept(&self, i: usize) -> bool {
        self.flags[i]
    }
}

/// `Some(bits)` kept units, or every unit kept for `None`.
pub fn kept(bits: &Option<Bits>, i: usize) -> bool {
    bits.as_ref().is_none_or(|b| b.kept(i))
}

pub fn opt_mask(bits: &Option<Bits>) -> Option<Mask<'_>> {
    bits.as_ref().map(Bits::mask)
}

/// The terms of one computed entry, accumulated for the judge.
#[derive(Debug, Clone, Default)]
pub struct Terms {
    n: usize,
    nan: bool,
    inf: bool,
    /// Σ |Π factors|.
    abs_sum: f64,
    /// Σ of each term's largest partial product: bounds every partial sum of any
    /// association.
    big: f64,
    /// Σ (1 + largest partial product): scales the absolute error of underflow.
    under: f64,
    /// The result is not specified: nothing is checked.
    unspecified: bool,
}

impl Terms {
    pub fn new() -> Terms {
        Terms::default()
    }

    fn class(&mut self, x: f64) {
        self.nan |= x.is_nan();
        self.inf |= x.is_infinite();
    }

    /// A product term, as the values the kernel and the reference read.
    pub fn term(&mut self, factors: &[f64]) {
        self.n += 1;
        factors.iter().for_each(|&f| self.class(f));
        let abs = factors.iter().map(|f| f.abs());
        self.abs_sum += abs.clone().product::<f64>();
        let large: f64 = abs.clone().filter(|&f| f >= 1.0).product();
        let max = abs.fold(0.0, f64::max);
        // The largest partial product; also the largest product of the factors left
        // after any partial product, which multiplies that partial product's underflow.
        let big = if max >= 1.0 { large } else { max };
        self.big += big;
        self.under += 1.0 + big;
    }

    /// A factor applied to the whole sum (alpha), even when there are no terms: only
    /// its class matters (its magnitude is already in the terms).
    pub fn global(&mut self, x: f64) {
        self.class(x);
    }

    /// A non-finite alpha over an empty sum: the kernels give `alpha · 0` (NaN) on the
    /// dot-product path and leave `beta · y` on the axpy path (column-major), so the
    /// result depends on the layout; neither is checked.
    pub fn unspecified(&mut self) {
        self.unspecified = true;
    }
}

/// What an output position must hold after a kernel.
#[derive(Debug, Clone)]
pub enum Entry {
    Untouched,
    Zero,
    Computed(Terms),
}

/// Checks one computed entry of the kernel against the reference (see the module docs).
pub fn judge<T: Float>(what: &dyn Fn() -> String, actual: T, expected: T, t: &Terms, values: bool) {
    let (a, e) = (actual.to_f64(), expected.to_f64());
    if t.unspecified {
        return;
    }
    if t.nan {
        assert!(
            a.is_nan() && e.is_nan(),
            "{}: a NaN was read, so both must be NaN: kernel {a}, reference {e}",
            what()
        );
    } else if t.inf {
        assert!(
            !a.is_finite() && !e.is_finite(),
            "{}: an infinity was read, so both must be non-finite: kernel {a}, reference {e}",
            what()
        );
    } else if values && t.big <= T::MAX / 4.0 && t.abs_sum <= T::MAX / 4.0 {
        let eps = T::EPSILON.to_f64();
        let tol =
            2.0 * (t.n as f64 + 6.0) * eps * t.abs_sum + 3.0 * T::ETA * t.under + 8.0 * T::ETA;
        let diff = (a - e).abs();
        assert!(
            diff <= tol,
            "{}: kernel {a:e}, reference {e:e}, |diff| {diff:e} > tolerance {tol:e} ({} terms, Σ|p| {:e})",
            what(),
            t.n,
            t.abs_sum
        );
    }
}

/// Compares a kernel's output buffer with the reference's, position by position.
pub fn compare<T: Float>(
    what: &dyn Fn() -> String,
    before: &Mat<T>,
    actual: &Mat<T>,
    expected: &Mat<T>,
    values: bool,
    state: impl Fn(usize, usize) -> Entry,
) {
    let mut inside = vec![false; actual.data.len()];
    for i in 0..actual.rows {
        for j in 0..actual.cols {
            let k = actual.idx(i, j);
            inside[k] = true;
            let (a, e, b) = (actual.data[k], expected.data[k], before.data[k]);
            let here = || format!("{} at ({i}, {j})", what());
            match state(i, j) {
                Entry::Untouched => assert_eq!(
                    a.to_bits_u64(),
                    b.to_bits_u64(),
                    "{}: a skipped entry must be bitwise untouched: was {b}, now {a}",
                    here()
                ),
                Entry::Zero => assert_eq!(
                    a.to_bits_u64(),
                    T::ZERO.to_bits_u64(),
                    "{}: must be exactly +0, is {a}",
                    here()
                ),
                Entry::Computed(t) => judge(&here, a, e, &t, values),
            }
        }
    }
    for (k, inside) in inside.into_iter().enumerate() {
        if !inside {
            assert_eq!(
                actual.data[k].to_bits_u64(),
                before.data[k].to_bits_u64(),
                "{}: buffer element {k} outside the view was written",
                what()
            );
        }
    }
}

/// Asserts that a read-only input is bitwise what it was.
pub fn unchanged<T: Float>(what: &dyn Fn() -> String, before: &[T], after: &[T]) {
    let same = before.len() == after.len()
        && before
            .iter()
            .zip(after)
            .all(|(b, a)| b.to_bits_u64() == a.to_bits_u64());
    assert!(same, "{}: a read-only input changed", what());
}

/// A vector as an `n x 1` matrix (for [`compare`]).
pub fn column<T: Float>(v: &[T]) -> Mat<T> {
    Mat {
        data: v.to_vec(),
        off: 0,
        rows: v.len(),
        cols: 1,
        rs: 1,
        cs: 1,
    }
}
