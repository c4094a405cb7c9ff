//! A two-layer MLP trained with dropout on the device: 4x4 glyphs, 8 classes.
//!
//! `16 inputs -> 32 hidden (ReLU) -> 8 classes (softmax)`, trained one example at a time
//! with plain SGD. Dropout keeps each input pixel with probability 0.8 and each hidden
//! unit with 0.5; every step draws fresh masks with `sample::bernoulli` and runs only
//! bitdrop's masked kernels:
//!
//! - layer 1: `forward_both` (input mask, and the hidden mask as its output mask: a
//!   dropped hidden unit's row of `W1` is not computed) and `sgd_step_both` (only the
//!   kept x kept block of `W1` is updated);
//! - layer 2: `forward`, `input_grad` (the gradient reaching the hidden units, exactly
//!   0 for dropped ones) and `sgd_step` (dropped hidden units' columns of `W2` untouched).
//!
//! The examples are the 8 glyphs with each pixel flipped with probability 1/16. The
//! network is then evaluated without dropout on 512 fresh noisy examples (the glyphs
//! differ in at least 5 pixels, so this noise leaves a few percent ambiguous) and on
//! the 8 clean glyphs.

use bitdrop::{Error, KeepProb, Mask, MaskMut, MatMut, MatRef, layer, sample, words_for};
use rand_xoshiro::rand_core::Rng;

use crate::{Report, TestRng, rng, say, uniform};

const PIX: usize = 16;
const HID: usize = 32;
const CLS: usize = 8;
const STEPS: u32 = 6000;
const LR: f32 = 0.05;
const TEST: u32 = 512;
/// The accuracy on noisy test glyphs the run must reach.
pub const TARGET_ACCURACY: f32 = 0.90;

/// The glyphs, row by row from the top, bit 15 = top-left pixel:
/// `O | - / \ + L T`.
const GLYPHS: [u16; CLS] = [
    0b1111_1001_1001_1111,
    0b0110_0110_0110_0110,
    0b0000_1111_1111_0000,
    0b0001_0010_0100_1000,
    0b1000_0100_0010_0001,
    0b0100_1111_0100_0100,
    0b1000_1000_1000_1111,
    0b1111_0100_0100_0100,
];
const NAMES: [char; CLS] = ['O', '|', '-', '/', '\\', '+', 'L', 'T'];

/// The network's parameters and scratch vectors (a `static`, 3.5 KiB).
pub struct Net {
    /// `HID x PIX`, column-major: a dropped pixel skips its contiguous column.
    w1: [f32; HID * PIX],
    b1: [f32; HID],
    /// `CLS x HID`, column-major: a dropped hidden unit skips its column.
    w2: [f32; CLS * HID],
    b2: [f32; CLS],
    x: [f32; PIX],
    z1: [f32; HID],
    h: [f32; HID],
    dh: [f32; HID],
    z2: [f32; CLS],
    dz2: [f32; CLS],
}

impl Net {
    /// Zero parameters (a `static` initializer; [`run`] initializes them).
    pub const fn new() -> Net {
        Net {
            w1: [0.0; HID * PIX],
            b1: [0.0; HID],
            w2: [0.0; CLS * HID],
            b2: [0.0; CLS],
            x: [0.0; PIX],
            z1: [0.0; HID],
            h: [0.0; HID],
            dh: [0.0; HID],
            z2: [0.0; CLS],
            dz2: [0.0; CLS],
        }
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

/// A noisy example of class `c` into `x`: each pixel flipped with probability 1/16.
fn example(rng: &mut TestRng, c: usize, x: &mut [f32; PIX]) {
    let noise = rng.next_u64();
    for (p, xp) in x.iter_mut().enumerate() {
        let on = (GLYPHS[c] >> (15 - p)) & 1 == 1;
        let flip = (noise >> (4 * p)) & 0xf == 0;
        *xp = if on != flip { 1.0 } else { 0.0 };
    }
}

/// Trains, evaluates, and records one check for the accuracy reached.
pub fn run(report: &mut Report, net: &mut Net) {
    match train(net) {
        Ok((noisy, clean)) => report.check(
            noisy >= TARGET_ACCURACY && clean == CLS as u32,
            format_args!(
                "train: MLP 16-32-8 with dropout (keep 0.8 in, 0.5 hidden), {} SGD steps: noisy test accuracy {:.1}% (target >= {:.0}%), clean glyphs {}/{}",
                STEPS,
                100.0 * noisy,
                100.0 * TARGET_ACCURACY,
                clean,
                CLS
            ),
        ),
        Err(e) => report.fail(format_args!("train: a layer call returned {e}")),
    }
}

fn train(net: &mut Net) -> Result<(f32, u32), Error> {
    let mut rng = rng(2024);
    // Uniform init, He-style for the ReLU layer: ±sqrt(6 / fan_in).
    let a1 = libm::sqrtf(6.0 / PIX as f32);
    let a2 = libm::sqrtf(6.0 / HID as f32);
    net.w1.iter_mut().for_each(|w| *w = a1 * uniform(&mut rng));
    net.w2.iter_mut().for_each(|w| *w = a2 * uniform(&mut rng));
    net.b1.fill(0.0);
    net.b2.fill(0.0);

    let (before, _, _) = evaluate(net, &mut crate::rng(7))?;
    say!(
        "train: accuracy before training {:.1}% (chance 12.5%)",
        100.0 * before
    );

    let keep_in = KeepProb::new(0.8)?;
    let keep_hid = KeepProb::new(0.5)?;
    let mut in_words = [0u64; words_for(PIX)];
    let mut hid_words = [0u64; words_for(HID)];
    let mut loss_sum = 0.0;
    let mut hidden_kept = 0u32;
    for step in 1..=STEPS {
        let c = (rng.next_u64() % CLS as u64) as usize;
        example(&mut rng, c, &mut net.x);
        let mut r0 = MaskMut::new(&mut in_words, PIX)?;
        sample::bernoulli(&mut rng, keep_in, &mut r0);
        let mut r1 = MaskMut::new(&mut hid_words, HID)?;
        sample::bernoulli(&mut rng, keep_hid, &mut r1);
        let (r0, r1) = (r0.as_mask(), r1.as_mask());
        hidden_kept += r1.count_kept() as u32;
        loss_sum += step_once(net, c, r0, keep_in, r1, keep_hid)?;
        if step % 1500 == 0 {
            say!(
                "train: step {:5}: mean loss {:.4}, mean hidden units kept {:.1} of {}",
                step,
                loss_sum / 1500.0,
                hidden_kept as f32 / 1500.0,
                HID
            );
            loss_sum = 0.0;
            hidden_kept = 0;
        }
    }
    let (noisy, clean, shown) = evaluate(net, &mut crate::rng(99))?;
    let mut text = [0u8; CLS];
    for (t, &ch) in text.iter_mut().zip(&shown) {
        *t = ch as u8;
    }
    say!(
        "train: clean glyphs O|-/\\+LT classified as {}",
        core::str::from_utf8(&text).unwrap_or("?")
    );
    Ok((noisy, clean))
}

/// One SGD step on example `(net.x, c)`; returns the cross-entropy loss.
fn step_once(
    net: &mut Net,
    c: usize,
    r0: Mask<'_>,
    keep_in: KeepProb,
    r1: Mask<'_>,
    keep_hid: KeepProb,
) -> Result<f32, Error> {
    // Layer 1, only for kept hidden units: z1 = W1 (r0 ⊙ x / 0.8) + b1.
    let w1 = MatRef::col_major(&net.w1, HID, PIX)?;
    layer::forward_both(w1, &net.x, r0, keep_in, r1, Some(&net.b1), &mut net.z1)?;
    for j in 0..HID {
        // A dropped unit's z1 is stale and h_j is never read; keep it finite anyway.
        net.h[j] = if r1.is_kept(j) {
            net.z1[j].max(0.0)
        } else {
            0.0
        };
    }
    // Layer 2: z2 = W2 (r1 ⊙ h / 0.5) + b2; softmax cross-entropy.
    let w2 = MatRef::col_major(&net.w2, CLS, HID)?;
    layer::forward(w2, &net.h, r1, keep_hid, Some(&net.b2), &mut net.z2)?;
    let loss = softmax_grad(&net.z2, c, &mut net.dz2);
    // Backward through layer 2 (before updating it), then update it.
    layer::input_grad(w2, &net.dz2, r1, keep_hid, &mut net.dh)?;
    layer::sgd_step(
        MatMut::col_major(&mut net.w2, CLS, HID)?,
        &net.dz2,
        &net.h,
        r1,
        keep_hid,
        LR,
    )?;
    for (b, d) in net.b2.iter_mut().zip(&net.dz2) {
        *b -= LR * d;
    }
    // ReLU: dz1 = dh ⊙ [z1 > 0], into dh; dropped units have dh = 0 and are skipped.
    for j in 0..HID {
        if !(r1.is_kept(j) && net.z1[j] > 0.0) {
            net.dh[j] = 0.0;
        }
        net.b1[j] -= LR * net.dh[j];
    }
    let w1 = MatMut::col_major(&mut net.w1, HID, PIX)?;
    layer::sgd_step_both(w1, &net.dh, &net.x, r0, keep_in, r1, LR)?;
    Ok(loss)
}

/// `dz = softmax(z) - onehot(c)`; returns `-log softmax(z)_c`.
fn softmax_grad(z: &[f32; CLS], c: usize, dz: &mut [f32; CLS]) -> f32 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (d, &v) in dz.iter_mut().zip(z) {
        *d = libm::expf(v - max);
        sum += *d;
    }
    for d in dz.iter_mut() {
        *d /= sum;
    }
    let loss = -libm::logf(dz[c].max(1e-30));
    dz[c] -= 1.0;
    loss
}

/// The network without dropout (every mask all ones, keep 1): the class it picks.
fn predict(net: &mut Net) -> Result<usize, Error> {
    let mut hid_words = [0u64; words_for(HID)];
    let mut in_words = [0u64; words_for(PIX)];
    let mut all_in = MaskMut::new(&mut in_words, PIX)?;
    all_in.fill(true);
    let mut all_hid = MaskMut::new(&mut hid_words, HID)?;
    all_hid.fill(true);
    let w1 = MatRef::col_major(&net.w1, HID, PIX)?;
    layer::forward(
        w1,
        &net.x,
        all_in.as_mask(),
        KeepProb::ONE,
        Some(&net.b1),
        &mut net.z1,
    )?;
    for (h, &z) in net.h.iter_mut().zip(&net.z1) {
        *h = z.max(0.0);
    }
    let w2 = MatRef::col_major(&net.w2, CLS, HID)?;
    layer::forward(
        w2,
        &net.h,
        all_hid.as_mask(),
        KeepProb::ONE,
        Some(&net.b2),
        &mut net.z2,
    )?;
    let mut best = 0;
    for k in 1..CLS {
        if net.z2[k] > net.z2[best] {
            best = k;
        }
    }
    Ok(best)
}

/// Accuracy on `TEST` noisy examples, and the number of clean glyphs recognized.
/// Also returns the class picked for each clean glyph, as a glyph name.
fn evaluate(net: &mut Net, rng: &mut TestRng) -> Result<(f32, u32, [char; CLS]), Error> {
    let mut right = 0u32;
    for t in 0..TEST {
        let c = t as usize % CLS;
        example(rng, c, &mut net.x);
        right += (predict(net)? == c) as u32;
    }
    let mut clean = 0u32;
    let mut shown = [' '; CLS];
    for c in 0..CLS {
        for (p, xp) in net.x.iter_mut().enumerate() {
            *xp = ((GLYPHS[c] >> (15 - p)) & 1) as f32;
        }
        let k = predict(net)?;
        shown[c] = NAMES[k];
        clean += (k == c) as u32;
    }
    Ok((right as f32 / TEST as f32, clean, shown))
}
