//! The data: procedurally generated 8x8 digit glyphs (no download, all from a seed), or a
//! CSV file of `f1,...,fk,label` rows split by a seeded shuffle.

use std::fmt;
use std::path::Path;

use rand_core::Rng;

/// Examples stored one after the other: example `k` is `x[k * features..][..features]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub features: usize,
    pub classes: usize,
    pub x: Vec<f32>,
    pub y: Vec<u16>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn example(&self, k: usize) -> &[f32] {
        &self.x[k * self.features..(k + 1) * self.features]
    }

    fn subset(&self, indices: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(indices.len() * self.features);
        for &k in indices {
            x.extend_from_slice(self.example(k));
        }
        Dataset {
            features: self.features,
            classes: self.classes,
            x,
            y: indices.iter().map(|&k| self.y[k]).collect(),
        }
    }
}

/// A uniform `f32` in `[0, 1)`.
pub fn uniform(rng: &mut impl Rng) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u32 << 24) as f32
}

/// A uniform `f32` in `[lo, hi)`.
pub fn between(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * uniform(rng)
}

/// A standard normal `f32` (Box-Muller).
pub fn normal(rng: &mut impl Rng) -> f32 {
    let u1 = 1.0 - uniform(rng); // (0, 1]: ln is finite
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// A uniform index below `n` (`n > 0`; the bias of the modulo is below 2^-40 here).
pub fn index(rng: &mut impl Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// Fisher-Yates, in place.
pub fn shuffle<T>(rng: &mut impl Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        v.swap(i, index(rng, i + 1));
    }
}

// ---------------------------------------------------------------------------------------
// Built-in glyphs

type Stroke = &'static [(f32, f32)];

/// Pen strokes of each digit on the unit square (x right, y down), a few variants each.
const GLYPHS: [&[&[Stroke]]; 10] = [
    &[&[&[
        (0.5, 0.1),
        (0.7, 0.2),
        (0.76, 0.5),
        (0.7, 0.8),
        (0.5, 0.9),
        (0.3, 0.8),
        (0.24, 0.5),
        (0.3, 0.2),
        (0.5, 0.1),
    ]]],
    &[
        &[&[(0.33, 0.28), (0.55, 0.1), (0.55, 0.9)]],
        &[
            &[(0.33, 0.28), (0.55, 0.1), (0.55, 0.9)],
            &[(0.35, 0.9), (0.75, 0.9)],
        ],
        &[&[(0.5, 0.1), (0.5, 0.9)]],
    ],
    &[&[&[
        (0.26, 0.28),
        (0.38, 0.13),
        (0.56, 0.1),
        (0.72, 0.2),
        (0.72, 0.38),
        (0.26, 0.9),
        (0.78, 0.9),
    ]]],
    &[&[&[
        (0.26, 0.15),
        (0.55, 0.1),
        (0.72, 0.22),
        (0.66, 0.4),
        (0.45, 0.5),
        (0.68, 0.6),
        (0.74, 0.78),
        (0.58, 0.9),
        (0.26, 0.86),
    ]]],
    &[
        &[&[(0.62, 0.9), (0.62, 0.1), (0.22, 0.64), (0.8, 0.64)]],
        &[
            &[(0.3, 0.1), (0.25, 0.58), (0.8, 0.58)],
            &[(0.62, 0.3), (0.62, 0.9)],
        ],
    ],
    &[&[&[
        (0.74, 0.1),
        (0.32, 0.1),
        (0.28, 0.46),
        (0.54, 0.4),
        (0.72, 0.52),
        (0.74, 0.75),
        (0.58, 0.9),
        (0.26, 0.86),
    ]]],
    &[&[&[
        (0.7, 0.12),
        (0.48, 0.18),
        (0.32, 0.4),
        (0.28, 0.68),
        (0.4, 0.9),
        (0.62, 0.88),
        (0.72, 0.7),
        (0.62, 0.52),
        (0.42, 0.52),
        (0.29, 0.64),
    ]]],
    &[
        &[&[(0.22, 0.12), (0.78, 0.12), (0.46, 0.9)]],
        &[
            &[(0.22, 0.12), (0.78, 0.12), (0.46, 0.9)],
            &[(0.4, 0.5), (0.7, 0.5)],
        ],
    ],
    &[&[&[
        (0.5, 0.5),
        (0.32, 0.38),
        (0.3, 0.2),
        (0.5, 0.1),
        (0.7, 0.2),
        (0.68, 0.38),
        (0.5, 0.5),
        (0.28, 0.64),
        (0.3, 0.84),
        (0.5, 0.92),
        (0.7, 0.84),
        (0.72, 0.64),
        (0.5, 0.5),
    ]]],
    &[&[&[
        (0.71, 0.36),
        (0.58, 0.48),
        (0.38, 0.46),
        (0.28, 0.3),
        (0.38, 0.12),
        (0.58, 0.1),
        (0.71, 0.22),
        (0.71, 0.36),
        (0.66, 0.9),
    ]]],
];

pub const SIDE: usize = 8;

/// `train` and `test` glyphs, classes balanced, every pixel in `[0, 1]`: each is a digit's
/// strokes with its vertices jittered, then rotated, sheared, scaled and shifted (about a
/// pixel), drawn with a random pen width at 4x4 supersampling, plus pixel noise and, now
/// and then, a stray stroke.
pub fn glyphs(rng: &mut impl Rng, train: usize, test: usize) -> (Dataset, Dataset) {
    let mut make = |n: usize| {
        let mut x = Vec::with_capacity(n * SIDE * SIDE);
        let mut y = Vec::with_capacity(n);
        let mut image = [0.0f32; SIDE * SIDE];
        for k in 0..n {
            let class = k % GLYPHS.len();
            draw(rng, class, &mut image);
            x.extend_from_slice(&image);
            y.push(class as u16);
        }
        Dataset {
            features: SIDE * SIDE,
            classes: GLYPHS.len(),
            x,
            y,
        }
    };
    let train = make(train);
    let test = make(test);
    (train, test)
}

/// At most this many points in one stroke (the longest glyph stroke has 13).
const MAX_POINTS: usize = 16;

fn draw(rng: &mut impl Rng, class: usize, image: &mut [f32; SIDE * SIDE]) {
    let variants = GLYPHS[class];
    let strokes = variants[index(rng, variants.len())];
    // One affine map per glyph: rotation, shear, scale, shift.
    let angle = between(rng, -0.25, 0.25);
    let shear = between(rng, -0.25, 0.25);
    let (sx, sy) = (between(rng, 0.75, 1.1), between(rng, 0.8, 1.1));
    let (tx, ty) = (between(rng, -0.12, 0.12), between(rng, -0.1, 0.1));
    let (sin, cos) = angle.sin_cos();
    let map = |(px, py): (f32, f32)| {
        let (x, y) = ((px - 0.5) * sx, (py - 0.5) * sy);
        let x = x + shear * y;
        (0.5 + cos * x - sin * y + tx, 0.5 + sin * x + cos * y + ty)
    };
    let half_width = between(rng, 0.045, 0.085);
    let jitter = 0.04;

    // Jittered, mapped segments of all strokes, plus a stray one now and then.
    let mut segments = [((0.0f32, 0.0f32), (0.0f32, 0.0f32)); 2 * MAX_POINTS];
    let mut count = 0;
    for stroke in strokes {
        let mut prev = None;
        for &(px, py) in stroke.iter().take(MAX_POINTS) {
            let p = map((px + jitter * normal(rng), py + jitter * normal(rng)));
            if let Some(q) = prev
                && count < segments.len()
            {
                segments[count] = (q, p);
                count += 1;
            }
            prev = Some(p);
        }
    }
    if uniform(rng) < 0.3 && count < segments.len() {
        let a = (uniform(rng), uniform(rng));
        let b = (a.0 + between(rng, -0.3, 0.3), a.1 + between(rng, -0.3, 0.3));
        segments[count] = (a, b);
        count += 1;
    }
    let segments = &segments[..count];

    const SUB: usize = 4;
    for (p, pixel) in image.iter_mut().enumerate() {
        let (row, col) = (p / SIDE, p % SIDE);
        let mut covered = 0;
        for s in 0..SUB * SUB {
            let x = (col as f32 + (s % SUB) as f32 / SUB as f32 + 0.125) / SIDE as f32;
            let y = (row as f32 + (s / SUB) as f32 / SUB as f32 + 0.125) / SIDE as f32;
            if segments
                .iter()
                .any(|&(a, b)| distance((x, y), a, b) < half_width)
            {
                covered += 1;
            }
        }
        let ink = covered as f32 / (SUB * SUB) as f32;
        *pixel = (ink + 0.15 * normal(rng)).clamp(0.0, 1.0);
    }
}

/// Distance from `p` to the segment `a`-`b`.
fn distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (ex * ex + ey * ey).sqrt()
}

/// A glyph as text, for the run's header: ' ', '.', '+', '#' by intensity.
pub fn ascii(image: &[f32]) -> Vec<String> {
    image
        .chunks(SIDE)
        .map(|row| {
            row.iter()
                .map(|&v| match v {
                    v if v < 0.3 => ' ',
                    v if v < 0.5 => '.',
                    v if v < 0.75 => '+',
                    _ => '#',
                })
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// CSV

/// Why a CSV file was refused: the 1-based line (0: the file as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// Labels must be below this: it bounds the output layer.
pub const MAX_CLASSES: usize = 1000;

/// Parses rows `f1,...,fk,label`: `k >= 1` finite numbers, then a class number
/// `0 <= label < MAX_CLASSES`. Blank lines and lines starting with `#` are skipped, and so
/// is a first row with no number in it (a header). Every row must have the first row's
/// number of fields.
///
/// # Errors
///
/// The first malformed line, with its number and what is wrong with it; or, on line 0,
/// a file with fewer than two rows or a single class.
pub fn parse_csv(text: &str) -> Result<Dataset, CsvError> {
    let mut fields_per_row = 0;
    let mut first_row = 0;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let number = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: String| CsvError {
            line: number,
            message,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields_per_row == 0 {
            if y.is_empty() && first_row == 0 && fields.iter().all(|f| f.parse::<f64>().is_err()) {
                first_row = number; // a header
                continue;
            }
            if fields.len() < 2 {
                return Err(fail(format!(
                    "{} field, need at least 2 (features, then the label)",
                    fields.len()
                )));
            }
            fields_per_row = fields.len();
        } else if fields.len() != fields_per_row {
            return Err(fail(format!(
                "{} fields, expected {fields_per_row} like the first row",
                fields.len()
            )));
        }
        let (label, features) = fields.split_last().unwrap_or((&"", &[]));
        for (c, field) in features.iter().enumerate() {
            let column = c + 1;
            let v: f32 = match field.parse() {
                Ok(v) => v,
                Err(_) if field.is_empty() => {
                    return Err(fail(format!("column {column} is empty")));
                }
                Err(_) => return Err(fail(format!("column {column}: '{field}' is not a number"))),
            };
            if !v.is_finite() {
                return Err(fail(format!(
                    "column {column}: '{field}' is not a finite number"
                )));
            }
            x.push(v);
        }
        let class = match label.parse::<usize>() {
            Ok(c) if c < MAX_CLASSES => c,
            Ok(c) => {
                return Err(fail(format!(
                    "label {c} is too large (classes are 0 to {})",
                    MAX_CLASSES - 1
                )));
            }
            Err(_) => {
                return Err(fail(format!(
                    "label '{label}' (the last column) is not a class number 0, 1, 2, ..."
                )));
            }
        };
        y.push(class as u16);
    }
    if y.len() < 2 {
        return Err(CsvError {
            line: 0,
            message: format!("{} data rows; need at least 2", y.len()),
        });
    }
    let classes = y.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    if y.iter().all(|&c| c == y[0]) {
        return Err(CsvError {
            line: 0,
            message: format!("every row has label {}; need at least 2 classes", y[0]),
        });
    }
    Ok(Dataset {
        features: fields_per_row - 1,
        classes,
        x,
        y,
    })
}

/// Reads and parses a CSV file.
///
/// # Errors
///
/// A message naming the file: it cannot be read, or [`parse_csv`] refused it.
pub fn load_csv(path: &Path) -> Result<Dataset, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_csv(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Splits by a seeded shuffle: `round(test_fraction · n)` examples (at least one, and
/// at least one left for training) go to the test set.
pub fn split(rng: &mut impl Rng, data: &Dataset, test_fraction: f64) -> (Dataset, Dataset) {
    let n = data.len();
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(rng, &mut order);
    let test = ((n as f64 * test_fraction).round() as usize).clamp(1, n.saturating_sub(1));
    let (test_idx, train_idx) = order.split_at(test);
    (data.subset(train_idx), data.subset(test_idx))
}

/// Scales every feature to `[0, 1]` over the training set (min-max), and the test set
/// with the same map. A constant feature becomes 0.
pub fn normalise(train: &mut Dataset, test: &mut Dataset) {
    let f = train.features;
    let mut lo = vec![f32::INFINITY; f];
    let mut hi = vec![f32::NEG_INFINITY; f];
    for row in train.x.chunks(f) {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
            *l = l.min(v);
            *h = h.max(v);
        }
    }
    for data in [train, test] {
        for row in data.x.chunks_mut(f) {
            for ((v, &l), &h) in row.iter_mut().zip(&lo).zip(&hi) {
                *v = if h > l { (*v - l) / (h - l) } else { 0.0 };
            }
        }
    }
}
