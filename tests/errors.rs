//! Every error path of the kernels: the right `Err`, naming the argument and sizes, and
//! nothing written.

use bitdrop::{Error, KeepProb, Mask, MaskBatch, MatMut, MatRef, blas, layer};

const N_OUT: usize = 3;
const N_IN: usize = 4;
const S: f32 = 7.5; // what every output holds before; it must hold it after an Err

fn len(arg: &'static str, expected: usize, found: usize) -> Error {
    Error::Length {
        arg,
        expected,
        found,
    }
}

fn mask_len(arg: &'static str, expected: usize, found: usize) -> Error {
    Error::MaskLength {
        arg,
        expected,
        found,
    }
}

fn shape(arg: &'static str, expected: (usize, usize), found: (usize, usize)) -> Error {
    Error::Shape {
        arg,
        expected,
        found,
    }
}

struct Fixture {
    w: Vec<f32>,
    in_words: [u64; 1],
    out_words: [u64; 1],
    keep: KeepProb,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            w: vec![1.0; N_OUT * N_IN],
            in_words: [0b1011],
            out_words: [0b101],
            keep: KeepProb::new(0.5).unwrap(),
        }
    }
    fn w(&self) -> MatRef<'_, f32> {
        MatRef::col_major(&self.w, N_OUT, N_IN).unwrap()
    }
    fn mask(&self) -> Mask<'_> {
        Mask::new(&self.in_words, N_IN).unwrap()
    }
    fn out(&self) -> Mask<'_> {
        Mask::new(&self.out_words, N_OUT).unwrap()
    }
    /// A mask of the wrong length for either side.
    fn wrong(&self) -> Mask<'_> {
        Mask::new(&self.in_words, 5).unwrap()
    }
}

fn cm(d: &mut [f32], rows: usize, cols: usize) -> MatMut<'_, f32> {
    MatMut::col_major(d, rows, cols).unwrap()
}

fn rm(d: &mut [f32], rows: usize, cols: usize) -> MatMut<'_, f32> {
    MatMut::row_major(d, rows, cols).unwrap()
}

fn untouched(v: &[f32]) {
    assert!(v.iter().all(|&x| x == S), "written on Err: {v:?}");
}

#[test]
fn single_example_errors() {
    let f = Fixture::new();
    let (x, dz) = ([1.0f32; N_IN], [1.0f32; N_OUT]);
    let mut z = [S; N_OUT];
    let r = layer::forward(f.w(), &x[..3], f.mask(), f.keep, None, &mut z);
    assert_eq!(r, Err(len("x", N_IN, 3)));
    let r = layer::forward(f.w(), &x, f.mask(), f.keep, None, &mut z[..2]);
    assert_eq!(r, Err(len("z", N_OUT, 2)));
    let r = layer::forward(f.w(), &x, f.mask(), f.keep, Some(&[0.0; 4]), &mut z);
    assert_eq!(r, Err(len("bias", N_OUT, 4)));
    let r = layer::forward(f.w(), &x, f.wrong(), f.keep, None, &mut z);
    assert_eq!(r, Err(mask_len("mask", N_IN, 5)));
    let r = layer::forward_both(f.w(), &x, f.wrong(), f.keep, f.out(), None, &mut z);
    assert_eq!(r, Err(mask_len("in_mask", N_IN, 5)));
    let r = layer::forward_both(f.w(), &x, f.mask(), f.keep, f.wrong(), None, &mut z);
    assert_eq!(r, Err(mask_len("out_mask", N_OUT, 5)));
    untouched(&z);

    let mut dx = [S; N_IN];
    let r = layer::input_grad(f.w(), &dz[..1], f.mask(), f.keep, &mut dx);
    assert_eq!(r, Err(len("dz", N_OUT, 1)));
    let r = layer::input_grad(f.w(), &dz, f.mask(), f.keep, &mut dx[..3]);
    assert_eq!(r, Err(len("dx", N_IN, 3)));
    let r = layer::input_grad(f.w(), &dz, f.wrong(), f.keep, &mut dx);
    assert_eq!(r, Err(mask_len("mask", N_IN, 5)));
    let r = layer::input_grad_both(f.w(), &dz, f.mask(), f.keep, f.wrong(), &mut dx);
    assert_eq!(r, Err(mask_len("out_mask", N_OUT, 5)));
    untouched(&dx);

    let mut dw = [S; N_OUT * N_IN];
    let r = layer::weight_grad(&dz[..2], &x, f.mask(), f.keep, cm(&mut dw, N_OUT, N_IN));
    assert_eq!(r, Err(len("dz", N_OUT, 2)));
    let r = layer::weight_grad(&dz, &x[..1], f.mask(), f.keep, cm(&mut dw, N_OUT, N_IN));
    assert_eq!(r, Err(len("x", N_IN, 1)));
    let r = layer::weight_grad(&dz, &x, f.wrong(), f.keep, cm(&mut dw, N_OUT, N_IN));
    assert_eq!(r, Err(mask_len("mask", N_IN, 5)));
    let r = layer::weight_grad_both(
        &dz,
        &x,
        f.mask(),
        f.keep,
        f.wrong(),
        cm(&mut dw, N_OUT, N_IN),
    );
    assert_eq!(r, Err(mask_len("out_mask", N_OUT, 5)));
    let r = layer::sgd_step(
        cm(&mut dw, N_OUT, N_IN),
        &dz,
        &x[..2],
        f.mask(),
        f.keep,
        0.1,
    );
    assert_eq!(r, Err(len("x", N_IN, 2)));
    let r = layer::sgd_step_both(
        cm(&mut dw, N_OUT, N_IN),
        &dz,
        &x,
        f.wrong(),
        f.keep,
        f.out(),
        0.1,
    );
    assert_eq!(r, Err(mask_len("in_mask", N_IN, 5)));
    untouched(&dw);

    let mut y = [S; N_IN];
    let r = layer::dropout(&x, f.mask(), f.keep, &mut y[..2]);
    assert_eq!(r, Err(len("y", N_IN, 2)));
    let r = layer::dropout(&x, f.wrong(), f.keep, &mut y);
    assert_eq!(r, Err(mask_len("mask", N_IN, 5)));
    untouched(&y);
}

#[test]
fn batch_errors() {
    let f = Fixture::new();
    let m = 2;
    let xd = [1.0f32; N_IN * 2];
    let dzd = [1.0f32; N_OUT * 2];
    let x = MatRef::col_major(&xd, N_IN, m).unwrap();
    let x_short = MatRef::col_major(&xd, N_IN - 1, m).unwrap();
    let dz = MatRef::col_major(&dzd, N_OUT, m).unwrap();
    let dz_wide = MatRef::col_major(&dzd, N_OUT, 1).unwrap(); // m = 1
    let mut out = vec![S; 64];
    let mut ws = vec![S; layer::batch_workspace_len::<f32>(N_OUT, N_IN, m)];

    let r = layer::forward_batch(
        f.w(),
        x_short,
        f.mask(),
        f.keep,
        None,
        None,
        cm(&mut out, N_OUT, m),
        &mut ws,
    );
    assert_eq!(r, Err(shape("x", (N_IN, m), (N_IN - 1, m))));
    let r = layer::forward_batch(
        f.w(),
        x,
        f.mask(),
        f.keep,
        None,
        None,
        cm(&mut out, N_OUT, 3),
        &mut ws,
    );
    assert_eq!(r, Err(shape("z", (N_OUT, m), (N_OUT, 3))));
    let r = layer::forward_batch(
        f.w(),
        x,
        f.mask(),
        f.keep,
        None,
        Some(&[0.0]),
        cm(&mut out, N_OUT, m),
        &mut ws,
    );
    assert_eq!(r, Err(len("bias", N_OUT, 1)));
    let r = layer::forward_batch(
        f.w(),
        x,
        f.wrong(),
        f.keep,
        None,
        None,
        cm(&mut out, N_OUT, m),
        &mut ws,
    );
    assert_eq!(r, Err(mask_len("mask", N_IN, 5)));
    let r = layer::forward_batch(
        f.w(),
        x,
        f.mask(),
        f.keep,
        Some(f.wrong()),
        None,
        cm(&mut out, N_OUT, m),
        &mut ws,
    );
    assert_eq!(r, Err(mask_len("out_mask", N_OUT, 5)));
    let r = layer::weight_grad_batch(
        dz_wide,
        x,
        f.mask(),
        f.keep,
        None,
        cm(&mut out, N_OUT, N_IN),
        &mut ws,
    );
    assert_eq!(r, Err(shape("dz", (N_OUT, m), (N_OUT, 1))));
    let r = layer::sgd_step_batch(
        cm(&mut out, N_OUT, N_IN),
        dz,
        x_short,
        f.mask(),
        f.keep,
        None,
        0.1,
        &mut ws,
    );
    assert_eq!(r, Err(shape("x", (N_IN, m), (N_IN - 1, m))));
    let r = layer::input_grad_batch(
        f.w(),
        dz,
        f.mask(),
        f.keep,
        None,
        cm(&mut out, N_IN, 1),
        &mut ws,
    );
    assert_eq!(r, Err(shape("dx", (N_IN, m), (N_IN, 1))));
    let r = layer::input_grad_batch(
        f.w(),
        dz,
        f.mask(),
        f.keep,
        Some(f.wrong()),
        cm(&mut out, N_IN, m),
        &mut ws,
    );
    assert_eq!(r, Err(mask_len("out_mask", N_OUT, 5)));

    // Per example: the mask batch must be n_in x m (and n_out x m).
    let words = [0u64; 3];
    let three = MaskBatch::new(&words, N_IN, 3).unwrap();
    let two_short = MaskBatch::new(&words[..2], N_IN - 1, 2).unwrap();
    let two_in = MaskBatch::new(&words[..2], N_IN, 2).unwrap();
    let r = layer::forward_per_example(f.w(), x, three, f.keep, None, None, cm(&mut out, N_OUT, m));
    assert_eq!(r, Err(shape("masks", (N_IN, m), (N_IN, 3))));
    let r =
        layer::weight_grad_per_example(dz, x, two_short, f.keep, None, cm(&mut out, N_OUT, N_IN));
    assert_eq!(r, Err(shape("masks", (N_IN, m), (N_IN - 1, 2))));
    let r = layer::input_grad_per_example(
        f.w(),
        dz,
        two_in,
        f.keep,
        Some(two_in),
        cm(&mut out, N_IN, m),
    );
    assert_eq!(r, Err(shape("out_masks", (N_OUT, m), (N_IN, 2))));
    let r = layer::sgd_step_per_example(
        cm(&mut out, N_OUT, N_IN),
        dz_wide,
        x,
        two_in,
        f.keep,
        None,
        0.1,
    );
    assert_eq!(r, Err(shape("dz", (N_OUT, m), (N_OUT, 1))));
    untouched(&out);
    untouched(&ws);
}

/// A workspace shorter than `batch_workspace_len` is refused before anything is written
/// (also with every unit kept, where the GEMM would not need it, and with a bias that
/// would otherwise be written first). Without `alloc` the length is 0 and every slice
/// will do.
#[test]
fn batch_workspace_errors() {
    let f = Fixture::new();
    let m = 2;
    let xd = [1.0f32; N_IN * 2];
    let dzd = [1.0f32; N_OUT * 2];
    let x = MatRef::col_major(&xd, N_IN, m).unwrap();
    let dz = MatRef::col_major(&dzd, N_OUT, m).unwrap();
    let need = layer::batch_workspace_len::<f32>(N_OUT, N_IN, m);
    let all_words = [0b1111u64];
    let all = Mask::new(&all_words, N_IN).unwrap();
    let mut out = vec![S; 64];
    let mut full = vec![S; need];
    let ws = &mut full[..need.saturating_sub(1)];
    if need == 0 {
        // The portable path (no `alloc`): an empty workspace is enough.
        assert!(
            layer::forward_batch(
                f.w(),
                x,
                f.mask(),
                f.keep,
                None,
                None,
                cm(&mut out, N_OUT, m),
                ws
            )
            .is_ok()
        );
        return;
    }
    let error = Error::Workspace {
        expected: need,
        found: need - 1,
    };
    let err = Err(error);
    for mask in [f.mask(), all] {
        let r = layer::forward_batch(
            f.w(),
            x,
            mask,
            f.keep,
            Some(f.out()),
            Some(&[9.0; N_OUT]),
            cm(&mut out, N_OUT, m),
            ws,
        );
        assert_eq!(r, err);
        let r = layer::weight_grad_batch(dz, x, mask, f.keep, None, cm(&mut out, N_OUT, N_IN), ws);
        assert_eq!(r, err);
        let r = layer::sgd_step_batch(
            cm(&mut out, N_OUT, N_IN),
            dz,
            x,
            mask,
            KeepProb::ONE,
            None,
            0.1,
            ws,
        );
        assert_eq!(r, err);
        let r = layer::input_grad_batch(f.w(), dz, mask, f.keep, None, cm(&mut out, N_IN, m), ws);
        assert_eq!(r, err);
    }
    untouched(&out);
    untouched(ws);
    assert_eq!(
        error.to_string(),
        format!(
            "workspace must hold at least {need} elements, got {}",
            need - 1
        )
    );
}

#[test]
fn blas_errors() {
    let f = Fixture::new();
    let mut y = [S; N_OUT];
    let r = blas::gemv(1.0, f.w(), &[1.0; 3], None, 0.0, &mut y, None);
    assert_eq!(r, Err(len("x", N_IN, 3)));
    let r = blas::gemv(1.0, f.w(), &[1.0; N_IN], None, 0.0, &mut y[..1], None);
    assert_eq!(r, Err(len("y", N_OUT, 1)));
    let r = blas::gemv(1.0, f.w(), &[1.0; N_IN], Some(f.wrong()), 0.0, &mut y, None);
    assert_eq!(r, Err(mask_len("col_mask", N_IN, 5)));
    let r = blas::gemv(1.0, f.w(), &[1.0; N_IN], None, 0.0, &mut y, Some(f.mask()));
    assert_eq!(r, Err(mask_len("row_mask", N_OUT, N_IN)));
    untouched(&y);

    let mut a = [S; N_OUT * N_IN];
    let r = blas::ger(
        1.0,
        &[1.0; 2],
        None,
        &[1.0; N_IN],
        None,
        rm(&mut a, N_OUT, N_IN),
    );
    assert_eq!(r, Err(len("x", N_OUT, 2)));
    let r = blas::ger(
        1.0,
        &[1.0; N_OUT],
        None,
        &[1.0; 5],
        None,
        rm(&mut a, N_OUT, N_IN),
    );
    assert_eq!(r, Err(len("y", N_IN, 5)));
    let r = blas::ger(
        1.0,
        &[1.0; N_OUT],
        Some(f.mask()),
        &[1.0; N_IN],
        None,
        rm(&mut a, N_OUT, N_IN),
    );
    assert_eq!(r, Err(mask_len("row_mask", N_OUT, N_IN)));
    let r = blas::ger(
        1.0,
        &[1.0; N_OUT],
        None,
        &[1.0; N_IN],
        Some(f.out()),
        rm(&mut a, N_OUT, N_IN),
    );
    assert_eq!(r, Err(mask_len("col_mask", N_IN, N_OUT)));
    untouched(&a);

    let bd = [1.0f32; 20];
    let b = MatRef::row_major(&bd, N_IN, 5).unwrap();
    let mut c = [S; 15];
    let b_bad = MatRef::row_major(&bd, 3, 5).unwrap();
    let r = blas::gemm(
        1.0,
        f.w(),
        None,
        b_bad,
        0.0,
        rm(&mut c, N_OUT, 5),
        None,
        None,
    );
    assert_eq!(r, Err(shape("b", (N_IN, 5), (3, 5))));
    let r = blas::gemm(1.0, f.w(), None, b, 0.0, rm(&mut c, N_OUT, 4), None, None);
    assert_eq!(r, Err(shape("b", (N_IN, 4), (N_IN, 5))));
    let r = blas::gemm(
        1.0,
        f.w(),
        Some(f.out()),
        b,
        0.0,
        rm(&mut c, N_OUT, 5),
        None,
        None,
    );
    assert_eq!(r, Err(mask_len("inner_mask", N_IN, N_OUT)));
    let r = blas::gemm(
        1.0,
        f.w(),
        None,
        b,
        0.0,
        rm(&mut c, N_OUT, 5),
        Some(f.mask()),
        None,
    );
    assert_eq!(r, Err(mask_len("row_mask", N_OUT, N_IN)));
    let r = blas::gemm(
        1.0,
        f.w(),
        None,
        b,
        0.0,
        rm(&mut c, N_OUT, 5),
        None,
        Some(f.mask()),
    );
    assert_eq!(r, Err(mask_len("col_mask", 5, N_IN)));
    untouched(&c);
}
