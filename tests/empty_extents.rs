//! Views with no elements may still have a huge extent in the other dimension (a
//! `0 x usize::MAX` matrix, a batch of `usize::MAX` masks of zero units): every
//! operation on them has nothing to do and must return at once, not loop over the long
//! dimension. Found by the `api_never_panics` fuzz target (its timeouts).

use std::sync::mpsc;
use std::time::Duration;

use bitdrop::{
    BatchMask, KeepProb, MaskBatch, MaskBatchMut, MatMut, MatRef, blas, layer, reference, sample,
};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

const HUGE: usize = usize::MAX;

/// Runs `f` on a thread and fails if it has not finished within a few seconds.
fn returns_promptly(what: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    let limit = Duration::from_secs(if cfg!(miri) { 600 } else { 10 });
    finished
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?}"));
}

fn empty() -> MatRef<'static, f32> {
    MatRef::new(&[], 0, 0, 1, 1).unwrap()
}

fn wide() -> MatRef<'static, f32> {
    MatRef::new(&[], 0, HUGE, 1, 1).unwrap()
}

#[test]
fn sampling_a_huge_batch_of_empty_masks() {
    returns_promptly("bernoulli_batch", || {
        let mut masks = MaskBatchMut::new(&mut [], 0, HUGE).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        sample::bernoulli_batch(&mut rng, KeepProb::new(0.3).unwrap(), &mut masks);
    });
}

#[test]
fn gemm_into_a_matrix_without_rows() {
    returns_promptly("gemm", || {
        let c = MatMut::new(&mut [], 0, HUGE, 1, 1).unwrap();
        blas::gemm(1.0f32, empty(), None, wide(), 0.0, c, None, None).unwrap();
    });
}

#[test]
fn layer_batches_with_nothing_to_write() {
    let keep = KeepProb::new(0.5).unwrap();
    returns_promptly("forward_batch with a bias", move || {
        let mask = bitdrop::Mask::new(&[], 0).unwrap();
        let z = MatMut::new(&mut [], 0, HUGE, 1, 1).unwrap();
        layer::forward_batch(empty(), wide(), mask, keep, None, Some(&[]), z, &mut []).unwrap();
    });
    returns_promptly("forward_per_example", move || {
        let masks = MaskBatch::new(&[], 0, HUGE).unwrap();
        let z = MatMut::new(&mut [], 0, HUGE, 1, 1).unwrap();
        layer::forward_per_example(empty(), wide(), masks, keep, None, None, z).unwrap();
    });
    returns_promptly("weight_grad_per_example", move || {
        let masks = MaskBatch::new(&[], 0, HUGE).unwrap();
        // dz is 2 x HUGE by broadcasting one column; dw is 2 x 0.
        let dz = MatRef::new(&[1.0f32, 2.0], 2, HUGE, 1, 0).unwrap();
        let dw = MatMut::new(&mut [], 2, 0, 1, 1).unwrap();
        layer::weight_grad_per_example(dz, wide(), masks, keep, None, dw).unwrap();
    });
    returns_promptly("sgd_step_per_example", move || {
        let masks = MaskBatch::new(&[], 0, HUGE).unwrap();
        let dz = MatRef::new(&[1.0f32, 2.0], 2, HUGE, 1, 0).unwrap();
        let w = MatMut::new(&mut [], 2, 0, 1, 1).unwrap();
        layer::sgd_step_per_example(w, dz, wide(), masks, keep, None, 0.1).unwrap();
    });
    returns_promptly("input_grad_per_example", move || {
        let masks = MaskBatch::new(&[], 0, HUGE).unwrap();
        let w = MatRef::new(&[], 2, 0, 1, 1).unwrap();
        let dz = MatRef::new(&[1.0f32, 2.0], 2, HUGE, 1, 0).unwrap();
        let dx = MatMut::new(&mut [], 0, HUGE, 1, 1).unwrap();
        layer::input_grad_per_example(w, dz, masks, keep, None, dx).unwrap();
    });
}

#[test]
fn reference_batches_with_nothing_to_write() {
    let keep = KeepProb::new(0.5).unwrap();
    returns_promptly("reference::forward_batch", move || {
        let z = MatMut::new(&mut [], 0, HUGE, 1, 1).unwrap();
        reference::forward_batch(empty(), wide(), None, keep, None, None, z).unwrap();
    });
    returns_promptly("reference::weight_grad_batch", move || {
        let dz = MatRef::new(&[1.0f32, 2.0], 2, HUGE, 1, 0).unwrap();
        let dw = MatMut::new(&mut [], 2, 0, 1, 1).unwrap();
        reference::weight_grad_batch(dz, wide(), None, keep, None, dw).unwrap();
    });
    returns_promptly("reference::sgd_step_batch", move || {
        let dz = MatRef::new(&[1.0f32, 2.0], 2, HUGE, 1, 0).unwrap();
        let w = MatMut::new(&mut [], 2, 0, 1, 1).unwrap();
        let masks = MaskBatch::new(&[], 0, HUGE).unwrap();
        let masks = Some(BatchMask::PerExample(masks));
        reference::sgd_step_batch(w, dz, wide(), masks, keep, None, 0.1).unwrap();
    });
    returns_promptly("reference::input_grad_batch", move || {
        let w = MatRef::new(&[], 2, 0, 1, 1).unwrap();
        let dz = MatRef::new(&[1.0f32, 2.0], 2, HUGE, 1, 0).unwrap();
        let dx = MatMut::new(&mut [], 0, HUGE, 1, 1).unwrap();
        reference::input_grad_batch(w, dz, None, keep, None, dx).unwrap();
    });
}

/// An empty view may have any strides (it needs no memory): taking its columns or rows
/// must not overflow computing their offsets.
#[test]
fn columns_and_rows_of_an_empty_view_with_huge_strides() {
    let a = MatRef::<f64>::new(&[], 0, 3, 1, HUGE).unwrap();
    for j in 0..3 {
        assert_eq!(a.col(j).map(|c| c.shape()), Some((0, 1)));
        assert_eq!(a.t().row(j).map(|r| r.shape()), Some((1, 0)));
    }
    let mut data: [f64; 0] = [];
    let mut m = MatMut::new(&mut data, 0, 3, 1, HUGE).unwrap();
    for j in 0..3 {
        assert_eq!(m.reborrow_mut().col(j).map(|c| c.shape()), Some((0, 1)));
        assert_eq!(m.reborrow_mut().t().row(j).map(|r| r.shape()), Some((1, 0)));
    }
    // B is 0 x 3 with a huge column stride: C = beta C, column by column.
    let mut c = [1.0f64, 2.0, 3.0];
    let b = MatRef::new(&[], 0, 3, 1, HUGE).unwrap();
    let a = MatRef::new(&[], 1, 0, 1, 1).unwrap();
    let cv = MatMut::col_major(&mut c, 1, 3).unwrap(); // column by column: no transpose
    blas::gemm(1.0, a, None, b, 0.0, cv, None, None).unwrap();
    assert_eq!(c, [0.0; 3]);
}

#[test]
fn filling_a_view_without_columns() {
    returns_promptly("MatMut::fill", || {
        let mut data: [f32; 0] = [];
        MatMut::new(&mut data, HUGE, 0, 1, 1).unwrap().fill(1.0);
        MatMut::new(&mut data, 0, HUGE, 1, 1).unwrap().fill(1.0);
    });
}
