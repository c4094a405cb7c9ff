//! Zero heap allocations: a counting global allocator around every operation.
//!
//! One exception, with the `alloc` feature: the shared-mask `layer::*_batch` operations
//! call matrixmultiply, which allocates a packing buffer inside each GEMM call and frees
//! it before returning. bitdrop itself allocates nothing there either (the caller's
//! workspace holds the gathered operands), and the test checks what it can see from
//! outside: every allocation made during such a call is freed before the call returns,
//! and at most one is alive at any moment (one GEMM call at a time, each with its one
//! buffer). Without `alloc` (`cargo test --no-default-features`) those operations run on
//! bitdrop's own kernels and must allocate nothing at all, like every other operation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bitdrop::{KeepProb, Mask, MaskBatch, MaskMut, MatMut, MatRef, blas, layer, sample, words_for};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

struct Counting;

thread_local! {
    // Per thread, so that the test harness's other threads do not count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    // Blocks allocated and not yet freed by this thread, and the most there were since
    // the last reset.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; counting touches only
// const-initialised thread-local `Cell`s, which do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        let live = LIVE.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        PEAK.with(|p| p.set(p.get().max(live)));
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.with(|n| n.set(n.get() - 1));
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn view(d: &[f32], rows: usize, cols: usize, col_major: bool) -> MatRef<'_, f32> {
    if col_major {
        MatRef::col_major(d, rows, cols).unwrap()
    } else {
        MatRef::row_major(d, rows, cols).unwrap()
    }
}

fn view_mut(d: &mut [f32], rows: usize, cols: usize, col_major: bool) -> MatMut<'_, f32> {
    if col_major {
        MatMut::col_major(d, rows, cols).unwrap()
    } else {
        MatMut::row_major(d, rows, cols).unwrap()
    }
}

/// Runs `f`, a shared-mask batch operation: with `alloc`, asserts that whatever it
/// allocated (matrixmultiply's packing buffers) was freed before it returned and that at
/// most one block was alive at a time; without `alloc`, that it allocated nothing.
fn only_gemm_buffers<R>(what: &str, f: impl FnOnce() -> R) -> R {
    if !cfg!(feature = "alloc") {
        return no_alloc(what, f);
    }
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    assert_eq!(
        LIVE.with(Cell::get),
        base,
        "{what}: an allocation outlived the call"
    );
    let peak = PEAK.with(Cell::get) - base;
    assert!(peak <= 1, "{what}: {peak} allocations alive at once");
    r
}

/// Runs `f` and asserts it allocated nothing.
fn no_alloc<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "{what} allocated");
    r
}

#[test]
fn every_operation_is_allocation_free() {
    // Sizes past the tails of a word; buffers made before counting starts.
    let (n_out, n_in, m) = if cfg!(miri) {
        (9, 70, 3)
    } else {
        (130, 200, 17)
    };
    let keep = KeepProb::new(0.5).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut in_words = vec![0u64; words_for(n_in)];
    let mut out_words = vec![0u64; words_for(n_out)];
    let mut batch_words = vec![0u64; words_for(n_in) * m];
    no_alloc("sample::bernoulli", || {
        sample::bernoulli(
            &mut rng,
            keep,
            &mut MaskMut::new(&mut in_words, n_in).unwrap(),
        );
        sample::bernoulli(
            &mut rng,
            keep,
            &mut MaskMut::new(&mut out_words, n_out).unwrap(),
        );
        let mut batch = bitdrop::MaskBatchMut::new(&mut batch_words, n_in, m).unwrap();
        sample::bernoulli_batch(&mut rng, keep, &mut batch);
    });
    let mask = Mask::new(&in_words, n_in).unwrap();
    let out = Mask::new(&out_words, n_out).unwrap();
    let masks = MaskBatch::new(&batch_words, n_in, m).unwrap();

    let w_data = vec![0.5f32; n_out * n_in];
    let mut w_mut = w_data.clone();
    let x = vec![1.0f32; n_in];
    let dz = vec![1.0f32; n_out];
    let bias = vec![0.1f32; n_out];
    let mut z = vec![0.0f32; n_out];
    let mut dx = vec![0.0f32; n_in];
    let mut dw = vec![0.0f32; n_out * n_in];
    let xb = vec![1.0f32; n_in * m];
    let dzb = vec![1.0f32; n_out * m];
    let mut zb = vec![0.0f32; n_out * m];
    let mut dxb = vec![0.0f32; n_in * m];
    let mut ws = vec![0.0f32; layer::batch_workspace_len::<f32>(n_out, n_in, m)];
    #[cfg(feature = "alloc")]
    let mut thin_ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(n_out, n_in, m)];
    let mut all_words = vec![0u64; words_for(n_in)];
    MaskMut::new(&mut all_words, n_in).unwrap().fill(true);
    let all = Mask::new(&all_words, n_in).unwrap();

    for layout in ["row-major", "column-major"] {
        let col_major = layout == "column-major";
        let w = view(&w_data, n_out, n_in, col_major);
        let xs = MatRef::col_major(&xb, n_in, m).unwrap();
        let dzs = MatRef::col_major(&dzb, n_out, m).unwrap();
        no_alloc(layout, || {
            layer::forward(w, &x, mask, keep, Some(&bias), &mut z).unwrap();
            layer::forward_both(w, &x, mask, keep, out, None, &mut z).unwrap();
            layer::weight_grad(
                &dz,
                &x,
                mask,
                keep,
                view_mut(&mut dw, n_out, n_in, col_major),
            )
            .unwrap();
            layer::weight_grad_both(
                &dz,
                &x,
                mask,
                keep,
                out,
                view_mut(&mut dw, n_out, n_in, col_major),
            )
            .unwrap();
            layer::input_grad(w, &dz, mask, keep, &mut dx).unwrap();
            layer::input_grad_both(w, &dz, mask, keep, out, &mut dx).unwrap();
            layer::sgd_step(
                view_mut(&mut w_mut, n_out, n_in, col_major),
                &dz,
                &x,
                mask,
                keep,
                0.1,
            )
            .unwrap();
            layer::sgd_step_both(
                view_mut(&mut w_mut, n_out, n_in, col_major),
                &dz,
                &x,
                mask,
                keep,
                out,
                0.1,
            )
            .unwrap();
            layer::dropout(&x, mask, keep, &mut dx).unwrap();
            let zs = MatMut::col_major(&mut zb, n_out, m).unwrap();
            layer::forward_per_example(w, xs, masks, keep, None, None, zs).unwrap();
            layer::weight_grad_per_example(
                dzs,
                xs,
                masks,
                keep,
                None,
                view_mut(&mut dw, n_out, n_in, col_major),
            )
            .unwrap();
            let dxs = MatMut::col_major(&mut dxb, n_in, m).unwrap();
            layer::input_grad_per_example(w, dzs, masks, keep, None, dxs).unwrap();
            layer::sgd_step_per_example(
                view_mut(&mut w_mut, n_out, n_in, col_major),
                dzs,
                xs,
                masks,
                keep,
                None,
                0.1,
            )
            .unwrap();
            blas::ger(
                1.0,
                &dz,
                Some(out),
                &x,
                Some(mask),
                view_mut(&mut dw, n_out, n_in, col_major),
            )
            .unwrap();
            blas::gemv(1.0, w, &x, Some(mask), 0.5, &mut z, Some(out)).unwrap();
            let zs = MatMut::row_major(&mut zb, n_out, m).unwrap();
            blas::gemm(1.0, w, Some(mask), xs, 0.0, zs, Some(out), None).unwrap();
            // Errors allocate nothing either.
            assert!(layer::forward(w, &x[1..], mask, keep, None, &mut z).is_err());
            assert!(
                layer::forward_batch(
                    w,
                    xs,
                    mask,
                    keep,
                    None,
                    None,
                    MatMut::col_major(&mut zb, n_out, m).unwrap(),
                    &mut []
                )
                .is_err()
                    || layer::batch_workspace_len::<f32>(n_out, n_in, m) == 0
            );
        });
        // The shared-mask batch operations, with every mask kind the path distinguishes:
        // input mask, both masks, all kept (the direct GEMM).
        for (what, mask, out, keep) in [
            ("input mask", mask, None, keep),
            ("both masks", mask, Some(out), keep),
            ("all kept", all, None, KeepProb::ONE),
        ] {
            let what = format!("{layout} batch, {what}");
            only_gemm_buffers(&what, || {
                let zs = MatMut::col_major(&mut zb, n_out, m).unwrap();
                layer::forward_batch(w, xs, mask, keep, out, Some(&bias), zs, &mut ws).unwrap();
            });
            only_gemm_buffers(&what, || {
                let dws = view_mut(&mut dw, n_out, n_in, col_major);
                layer::weight_grad_batch(dzs, xs, mask, keep, out, dws, &mut ws).unwrap();
            });
            only_gemm_buffers(&what, || {
                let dxs = MatMut::col_major(&mut dxb, n_in, m).unwrap();
                layer::input_grad_batch(w, dzs, mask, keep, out, dxs, &mut ws).unwrap();
            });
            only_gemm_buffers(&what, || {
                let ws_ = view_mut(&mut w_mut, n_out, n_in, col_major);
                layer::sgd_step_batch(ws_, dzs, xs, mask, keep, out, 0.1, &mut ws).unwrap();
            });
            #[cfg(feature = "alloc")]
            only_gemm_buffers(&format!("{what}, ThinnedBatch"), || {
                let w_thin = view_mut(&mut w_mut, n_out, n_in, col_major);
                let mut step =
                    layer::ThinnedBatch::new(w_thin, mask, keep, out, &mut thin_ws).unwrap();
                let zs = MatMut::col_major(&mut zb, n_out, m).unwrap();
                step.forward(xs, Some(&bias), zs).unwrap();
                let dxs = MatMut::col_major(&mut dxb, n_in, m).unwrap();
                step.input_grad(dzs, dxs).unwrap();
                let dws = view_mut(&mut dw, n_out, n_in, col_major);
                step.weight_grad(dzs, xs, dws).unwrap();
                step.sgd_step(dzs, xs, 0.1).unwrap();
            });
        }
    }
}
