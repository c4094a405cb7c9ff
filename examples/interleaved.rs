//! Masked against dense, alternating call by call in one process: a steadier ratio than
//! two criterion functions timed one after the other, on a machine whose speed drifts
//! (shared cores, other tenants). The criterion benches (`benches/`) remain the
//! measurements of record; this is the check beside them.
//!
//! ```text
//! cargo run --release --example interleaved -- OP LAYOUT [N] [KEEP] [CALLS] [M] [out]
//! cargo run --release --example interleaved -- forward row 1024 0.5
//! cargo run --release --example interleaved -- weight_grad_batch row 1024 0.5 200 32
//! cargo run --release --example interleaved -- step col
//! cargo run --release --example interleaved -- forward_batch col 1024 0.5 200 128 out
//! ```
//!
//! `OP` is `weight_grad`, `sgd_step`, `input_grad` or `forward` (one example, f32, `W`
//! `N x N`; dense: bitdrop's own unmasked `blas::ger` / `blas::gemv`, as in
//! `benches/kernels.rs`), or `weight_grad_batch`, `input_grad_batch` or `forward_batch`
//! (a batch of `M` examples, column-major, with one mask; dense: the same call with every
//! unit kept, which is matrixmultiply's GEMM on the whole matrices), or `step` (a layer's
//! training step on such a batch through `layer::ThinnedBatch`: forward, `dX`, SGD step;
//! dense: the same with every unit kept). `LAYOUT` is `row` or `col` (of `W`, or of
//! `dW`). Defaults: N = 1024, KEEP = 0.5, CALLS = 2000 (m = 1) or 200 (batches), M = 128.
//! The mask is the benchmarks' (seed 7). A last argument `out` gives the masked `_batch`
//! operations an output mask too (the same keep, seed 8). It prints the median time of
//! each and their ratio.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use bitdrop::{KeepProb, Mask, MaskMut, MatMut, MatRef, blas, layer, sample, words_for};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// What to time, parsed from the command line.
struct Args {
    op: String,
    row_major: bool,
    n: usize,
    keep: f64,
    calls: usize,
    m: usize,
    /// The masked batch operations also take an output mask.
    out: bool,
}

fn parse() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: f64| -> Result<f64, String> {
        match args.get(i) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| format!("not a number: {s}")),
        }
    };
    let op = args.first().ok_or("missing OP")?.clone();
    let batch = op.ends_with("_batch") || op == "step";
    if ![
        "weight_grad",
        "sgd_step",
        "input_grad",
        "forward",
        "weight_grad_batch",
        "input_grad_batch",
        "forward_batch",
        "step",
    ]
    .contains(&op.as_str())
    {
        return Err(format!("unknown OP: {op}"));
    }
    let row_major = match args.get(1).map(String::as_str) {
        Some("row") => true,
        Some("col") => false,
        _ => return Err("LAYOUT must be row or col".into()),
    };
    let out = match args.get(6).map(String::as_str) {
        None => false,
        Some("out") if op.ends_with("_batch") => true,
        Some(s) => {
            return Err(format!(
                "the last argument may only be out, for a _batch OP: {s}"
            ));
        }
    };
    Ok(Args {
        op,
        row_major,
        n: number(2, 1024.0)? as usize,
        keep: number(3, 0.5)?,
        calls: number(4, if batch { 200.0 } else { 2000.0 })? as usize,
        m: number(5, 128.0)? as usize,
        out,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\nusage: interleaved OP row|col [N] [KEEP] [CALLS] [M] [out]");
            return ExitCode::FAILURE;
        }
    };
    let Ok(keep) = KeepProb::new(args.keep) else {
        eprintln!("KEEP must be in (0, 1]");
        return ExitCode::FAILURE;
    };
    match run(&args, keep) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Times `masked` and `dense` alternately, `calls` times each, and prints the medians.
/// Both work on the same `state` (the same output buffer), so that each finds the cache
/// as the other left it.
fn time_pair<S>(
    label: &str,
    calls: usize,
    state: &mut S,
    mut masked: impl FnMut(&mut S) -> Result<(), bitdrop::Error>,
    mut dense: impl FnMut(&mut S) -> Result<(), bitdrop::Error>,
) -> Result<(), bitdrop::Error> {
    let (mut tm, mut td) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for _ in 0..calls.max(1) {
        let t = Instant::now();
        masked(state)?;
        tm.push(t.elapsed().as_secs_f64());
        black_box(&mut *state);
        let t = Instant::now();
        dense(state)?;
        td.push(t.elapsed().as_secs_f64());
        black_box(&mut *state);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m, d) = (median(&mut tm), median(&mut td));
    println!(
        "{label}: masked {:.1} us, dense {:.1} us, masked/dense {:.3} (medians of {} alternating calls)",
        m * 1e6,
        d * 1e6,
        m / d,
        tm.len()
    );
    Ok(())
}

fn run(a: &Args, keep: KeepProb) -> Result<(), bitdrop::Error> {
    let n = a.n;
    let mut words = vec![0u64; words_for(n)];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    sample::bernoulli(&mut rng, keep, &mut MaskMut::new(&mut words, n)?);
    let mask = Mask::new(&words, n)?;
    let mut out_words = vec![0u64; words_for(n)];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    sample::bernoulli(&mut rng, keep, &mut MaskMut::new(&mut out_words, n)?);
    let out_mask = a.out.then_some(Mask::new(&out_words, n)?);
    let mut all = vec![0u64; words_for(n)];
    MaskMut::new(&mut all, n)?.fill(true);
    let all = Mask::new(&all, n)?;
    let (rs, cs) = if a.row_major { (n, 1) } else { (1, n) };
    let label = format!(
        "{} {} n={n} keep={}",
        a.op,
        if a.row_major { "row" } else { "col" },
        a.keep
    );
    let mut w: Vec<f32> = (0..n * n).map(|k| (k % 7) as f32 * 0.1).collect();
    if a.op == "step" {
        return step(a, keep, mask, all);
    }
    if a.op.ends_with("_batch") {
        let m = a.m;
        let dz: Vec<f32> = (0..n * m).map(|k| (k % 11) as f32 * 0.01 - 0.05).collect();
        let x: Vec<f32> = (0..n * m).map(|k| (k % 13) as f32 * 0.01 - 0.06).collect();
        let out = vec![0.0f32; n * m];
        let ws = vec![0.0f32; layer::batch_workspace_len::<f32>(n, n, m)];
        // Both N x M, column-major (as in benches/gemm.rs).
        let (dz, x) = (MatRef::new(&dz, n, m, 1, n)?, MatRef::new(&x, n, m, 1, n)?);
        let label = format!("{label} m={m}{}", if a.out { " out" } else { "" });
        return if a.op == "weight_grad_batch" {
            time_pair(
                &label,
                a.calls,
                &mut (w, ws),
                |(dw, ws)| {
                    let dw = MatMut::new(dw, n, n, rs, cs)?;
                    layer::weight_grad_batch(dz, x, mask, keep, out_mask, dw, ws)
                },
                |(dw, ws)| {
                    let dw = MatMut::new(dw, n, n, rs, cs)?;
                    let one = KeepProb::ONE;
                    layer::weight_grad_batch(dz, x, all, one, None, dw, ws)
                },
            )
        } else {
            // The forward pass (Z) or dX: both N x M, column-major.
            let wv = MatRef::new(&w, n, n, rs, cs)?;
            let forward = a.op == "forward_batch";
            let op = |mask: Mask<'_>, keep, out_mask, o: &mut [f32], ws: &mut [f32]| {
                let o = MatMut::new(o, n, m, 1, n)?;
                if forward {
                    layer::forward_batch(wv, x, mask, keep, out_mask, None, o, ws)
                } else {
                    layer::input_grad_batch(wv, dz, mask, keep, out_mask, o, ws)
                }
            };
            time_pair(
                &label,
                a.calls,
                &mut (out, ws),
                |(o, ws)| op(mask, keep, out_mask, o, ws),
                |(o, ws)| op(all, KeepProb::ONE, None, o, ws),
            )
        };
    }
    let x = vec![0.5f32; n];
    let dz = vec![0.25f32; n];
    match a.op.as_str() {
        "weight_grad" | "sgd_step" => {
            let sgd = a.op == "sgd_step";
            time_pair(
                &label,
                a.calls,
                &mut w,
                |w| {
                    let wm = MatMut::new(w, n, n, rs, cs)?;
                    if sgd {
                        layer::sgd_step(wm, &dz, &x, mask, keep, 1e-3)
                    } else {
                        layer::weight_grad(&dz, &x, mask, keep, wm)
                    }
                },
                |w| blas::ger(1.0, &dz, None, &x, None, MatMut::new(w, n, n, rs, cs)?),
            )
        }
        _ => {
            let wv = MatRef::new(&w, n, n, rs, cs)?;
            let forward = a.op == "forward";
            // The dense product of the same orientation: W x, or Wᵀ dz.
            let dense_a = if forward { wv } else { wv.t() };
            let v = if forward { &x } else { &dz };
            time_pair(
                &label,
                a.calls,
                &mut vec![0.0f32; n],
                |out| {
                    if forward {
                        layer::forward(wv, v, mask, keep, None, out)
                    } else {
                        layer::input_grad(wv, v, mask, keep, out)
                    }
                },
                |out| blas::gemv(1.0, dense_a, v, None, 0.0, out, None),
            )
        }
    }
}

/// What a step reads and writes: `W`, the workspace, `Z` and `dX`.
type StepState = (Vec<f32>, Vec<f32>, (Vec<f32>, Vec<f32>));

/// A layer's step on a batch through a `ThinnedBatch`, masked against all kept.
fn step(a: &Args, keep: KeepProb, mask: Mask<'_>, all: Mask<'_>) -> Result<(), bitdrop::Error> {
    let (n, m) = (a.n, a.m);
    let (rs, cs) = if a.row_major { (n, 1) } else { (1, n) };
    let w: Vec<f32> = (0..n * n).map(|k| (k % 7) as f32 * 0.01).collect();
    let x: Vec<f32> = (0..n * m).map(|k| (k % 13) as f32 * 0.01 - 0.06).collect();
    let dz: Vec<f32> = (0..n * m).map(|k| (k % 11) as f32 * 0.01 - 0.05).collect();
    let bias = vec![0.1f32; n];
    let ws = vec![0.0f32; layer::thinned_workspace_len::<f32>(n, n, m)];
    let (x, dz) = (MatRef::new(&x, n, m, 1, n)?, MatRef::new(&dz, n, m, 1, n)?);
    let outs = (vec![0.0f32; n * m], vec![0.0f32; n * m]);
    let run = |(w, ws, (z, dx)): &mut StepState, mask: Mask<'_>, keep: KeepProb| {
        let w = MatMut::new(w, n, n, rs, cs)?;
        let mut step = layer::ThinnedBatch::new(w, mask, keep, None, ws)?;
        step.forward(x, Some(&bias), MatMut::new(z, n, m, 1, n)?)?;
        step.input_grad(dz, MatMut::new(dx, n, m, 1, n)?)?;
        step.sgd_step(dz, x, 1e-6)
    };
    time_pair(
        &format!(
            "step {} n={n} keep={} m={m}",
            if a.row_major { "row" } else { "col" },
            a.keep
        ),
        a.calls,
        &mut (w, ws, outs),
        |state| run(state, mask, keep),
        |state| run(state, all, KeepProb::ONE),
    )
}
