//! The dense oracle against hand-computed cases.

use bitdrop::{BatchMask, Error, KeepProb, Mask, MaskBatch, MatMut, MatRef, reference};

/// A NaN with a payload: bitwise comparisons prove an entry was not written.
const SENTINEL: f64 = f64::from_bits(0x7ff8_dead_beef_0001);

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn half() -> KeepProb {
    KeepProb::new(0.5).unwrap()
}

// W = [[1, 2, 3],
//      [4, 5, 6]]   (n_out = 2, n_in = 3), input unit 1 dropped.
const W: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
const DROP_1: [u64; 1] = [0b101];

#[test]
fn forward_skips_dropped_inputs_and_scales_kept_ones() {
    let w = MatRef::row_major(&W, 2, 3).unwrap();
    let mask = Mask::new(&DROP_1, 3).unwrap();
    let mut z = [0.0; 2];
    // x_1 is NaN: a dropped input is never read.
    reference::forward(
        w,
        &[1.0, f64::NAN, 2.0],
        Some(mask),
        half(),
        None,
        Some(&[0.5, -1.0]),
        &mut z,
    )
    .unwrap();
    // z_0 = (1·1 + 3·2) / 0.5 + 0.5, z_1 = (4·1 + 6·2) / 0.5 - 1
    assert_eq!(z, [14.5, 31.0]);

    // The same with column-major storage of W.
    let wc = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
    let w = MatRef::col_major(&wc, 2, 3).unwrap();
    let mut zc = [0.0; 2];
    reference::forward(
        w,
        &[1.0, f64::NAN, 2.0],
        Some(mask),
        half(),
        None,
        Some(&[0.5, -1.0]),
        &mut zc,
    )
    .unwrap();
    assert_eq!(zc, z);
}

#[test]
fn forward_leaves_dropped_outputs_untouched() {
    let mut w = W;
    w[3..].fill(f64::INFINITY); // row 1 belongs to a dropped output: never read
    let w = MatRef::row_major(&w, 2, 3).unwrap();
    let out = Mask::new(&[0b01], 2).unwrap();
    let mut z = [0.0, SENTINEL];
    reference::forward(w, &[1.0, 1.0, 1.0], None, half(), Some(out), None, &mut z).unwrap();
    assert_eq!(bits(&z), bits(&[6.0, SENTINEL]));
}

#[test]
fn weight_grad_leaves_the_dropped_column_untouched() {
    let mask = Mask::new(&DROP_1, 3).unwrap();
    // Column 1 holds a NaN payload and -0.0: both must survive bit for bit.
    let mut dw = [1.0, SENTINEL, 0.0, 0.0, -0.0, 0.0];
    reference::weight_grad(
        &[1.0, 2.0],
        &[3.0, f64::NAN, 4.0],
        Some(mask),
        half(),
        None,
        MatMut::row_major(&mut dw, 2, 3).unwrap(),
    )
    .unwrap();
    // dW[j,i] += dz_j · x_i / 0.5, accumulated onto dW[0,0] = 1.
    assert_eq!(bits(&dw), bits(&[7.0, SENTINEL, 8.0, 12.0, -0.0, 16.0]));
}

#[test]
fn input_grad_is_exactly_zero_for_dropped_units() {
    let mut w = W;
    w[1] = f64::NAN; // column 1 is dropped: never read
    w[4] = f64::NEG_INFINITY;
    let w = MatRef::row_major(&w, 2, 3).unwrap();
    let mask = Mask::new(&DROP_1, 3).unwrap();
    let mut dx = [SENTINEL; 3];
    reference::input_grad(w, &[1.0, 2.0], Some(mask), half(), None, &mut dx).unwrap();
    // dx_0 = (1·1 + 4·2) / 0.5, dx_2 = (3·1 + 6·2) / 0.5
    assert_eq!(bits(&dx), bits(&[18.0, 0.0, 30.0]));

    // A dropped output: dz_1 (NaN) is not read, row 1 of W takes no part.
    let out = Mask::new(&[0b01], 2).unwrap();
    reference::input_grad(w, &[1.0, f64::NAN], Some(mask), half(), Some(out), &mut dx).unwrap();
    assert_eq!(bits(&dx), bits(&[2.0, 0.0, 6.0]));
}

#[test]
fn sgd_step_does_not_touch_the_dropped_column() {
    let mut w = W;
    w[1] = SENTINEL;
    w[4] = SENTINEL;
    let mask = Mask::new(&DROP_1, 3).unwrap();
    reference::sgd_step(
        MatMut::row_major(&mut w, 2, 3).unwrap(),
        &[1.0, -1.0],
        &[2.0, f64::INFINITY, 1.0],
        Some(mask),
        half(),
        None,
        0.25,
    )
    .unwrap();
    // W[j,i] -= 0.25 · dz_j · x_i / 0.5
    assert_eq!(bits(&w), bits(&[0.0, SENTINEL, 2.5, 5.0, SENTINEL, 6.5]));
}

#[test]
fn no_masks_is_the_plain_dense_layer() {
    let w = MatRef::row_major(&W, 2, 3).unwrap();
    let mut z = [0.0; 2];
    reference::forward(w, &[1.0, 1.0, 1.0], None, half(), None, None, &mut z).unwrap();
    assert_eq!(z, [6.0, 15.0]);
    let mut dx = [0.0; 3];
    reference::input_grad(w, &[1.0, 1.0], None, half(), None, &mut dx).unwrap();
    assert_eq!(dx, [5.0, 7.0, 9.0]);
}

#[test]
fn batches_apply_the_single_example_formula_per_column() {
    let w = MatRef::row_major(&W, 2, 3).unwrap();
    // X is 3 x 2 (examples are columns), stored row-major.
    let xs = [1.0, 7.0, f64::NAN, 2.0, 2.0, 3.0];
    let x = MatRef::row_major(&xs, 3, 2).unwrap();
    let shared = Mask::new(&DROP_1, 3).unwrap();
    let mut z = [0.0; 4];
    reference::forward_batch(
        w,
        x,
        Some(BatchMask::Shared(shared)),
        half(),
        None,
        None,
        MatMut::row_major(&mut z, 2, 2).unwrap(),
    )
    .unwrap();
    let mut z0 = [0.0; 2];
    reference::forward(
        w,
        &[1.0, f64::NAN, 2.0],
        Some(shared),
        half(),
        None,
        None,
        &mut z0,
    )
    .unwrap();
    assert_eq!([z[0], z[2]], z0);
    // Example 1: x = (7, 2, 3) with unit 1 dropped.
    assert_eq!([z[1], z[3]], [(7.0 + 9.0) * 2.0, (28.0 + 18.0) * 2.0]);

    // Per-example masks: example 0 keeps {0, 2}, example 1 keeps {1}.
    let masks = MaskBatch::new(&[0b101, 0b010], 3, 2).unwrap();
    let mut dw = [0.0; 6];
    let dzs = [1.0, 1.0, 0.0, 1.0];
    reference::weight_grad_batch(
        MatRef::row_major(&dzs, 2, 2).unwrap(),
        x,
        Some(BatchMask::PerExample(masks)),
        half(),
        None,
        MatMut::row_major(&mut dw, 2, 3).unwrap(),
    )
    .unwrap();
    // Row 0: dz = (1, 1): example 0 adds (2, -, 4), example 1 adds (-, 4, -).
    // Row 1: dz = (0, 1): example 1 adds (-, 4, -).
    assert_eq!(dw, [2.0, 4.0, 4.0, 0.0, 4.0, 0.0]);

    // input_grad_batch writes 0 for every dropped (unit, example).
    let mut dx = [SENTINEL; 6];
    reference::input_grad_batch(
        w,
        MatRef::row_major(&dzs, 2, 2).unwrap(),
        Some(BatchMask::PerExample(masks)),
        half(),
        None,
        MatMut::row_major(&mut dx, 3, 2).unwrap(),
    )
    .unwrap();
    assert_eq!(bits(&dx), bits(&[2.0, 0.0, 0.0, 14.0, 6.0, 0.0]));
}

#[test]
fn shape_errors_write_nothing() {
    let w = MatRef::row_major(&W, 2, 3).unwrap();
    let mut z = [SENTINEL; 2];
    let mask = Mask::new(&DROP_1, 3).unwrap();
    assert_eq!(
        reference::forward(w, &[1.0; 2], Some(mask), half(), None, None, &mut z),
        Err(Error::Length {
            arg: "x",
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        reference::forward(w, &[1.0; 3], Some(mask), half(), None, Some(&[1.0]), &mut z),
        Err(Error::Length {
            arg: "bias",
            expected: 2,
            found: 1
        })
    );
    let short = Mask::new(&[0b1], 2).unwrap();
    assert_eq!(
        reference::forward(w, &[1.0; 3], Some(short), half(), None, None, &mut z),
        Err(Error::MaskLength {
            arg: "in_mask",
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        reference::forward(w, &[1.0; 3], None, half(), Some(mask), None, &mut z),
        Err(Error::MaskLength {
            arg: "out_mask",
            expected: 2,
            found: 3
        })
    );
    assert_eq!(bits(&z), bits(&[SENTINEL; 2]));

    let xs = [0.0; 6];
    let x = MatRef::row_major(&xs, 3, 2).unwrap();
    let mut zb = [SENTINEL; 6];
    assert_eq!(
        reference::forward_batch(
            w,
            x,
            None,
            half(),
            None,
            None,
            MatMut::row_major(&mut zb, 2, 3).unwrap()
        ),
        Err(Error::Shape {
            arg: "z",
            expected: (2, 2),
            found: (2, 3)
        })
    );
    let masks = MaskBatch::new(&[0, 0, 0], 3, 3).unwrap();
    assert_eq!(
        reference::forward_batch(
            w,
            x,
            Some(BatchMask::PerExample(masks)),
            half(),
            None,
            None,
            MatMut::row_major(&mut zb, 2, 2).unwrap()
        ),
        Err(Error::Shape {
            arg: "in_mask",
            expected: (3, 2),
            found: (3, 3)
        })
    );
    assert_eq!(bits(&zb), bits(&[SENTINEL; 6]));
}
