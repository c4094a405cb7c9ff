//! The main job: train an MLP with dropout using only bitdrop's masked kernels, on
//! built-in data, and show the accuracy it buys and the time the skipping saves.
//!
//! ```text
//! cargo run --release --example train                 # defaults: see --help
//! cargo run --release --example train -- --batch 1 --lr 0.02 --epochs 60 --no-out-masks
//! cargo run --release --example train -- --mask per-example
//! cargo run --release --example train -- --data optdigits.csv
//! cargo test --example train                          # this file's unit tests
//! ```
//!
//! It trains a 64-512-512-10 ReLU network by SGD on mini-batches of 32 with inverted
//! dropout (keep 0.8 on the inputs, 0.5 on the hidden units; one mask per layer and
//! mini-batch, each hidden mask also skipping the rows of the layer below, so that each
//! layer's `layer::ThinnedBatch` gathers and computes only its kept x kept block) on
//! procedurally generated 8x8 digit glyphs (few
//! training examples, so that it overfits without dropout), prints a line per epoch,
//! trains the same network again without dropout, then times one training step with
//! bitdrop's masked kernels against the same step done densely (mask multiplied into the
//! activations, every product in full). All buffers are allocated before the training
//! loops; a counting allocator counts what the loops allocate: nothing but matrixmultiply's
//! packing buffers on the batch path (one per GEMM call). The last line is
//! `summary: test_acc_dropout=… test_acc_plain=… masked_step_us=… dense_step_us=…`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

#[path = "train/cli.rs"]
mod cli;
#[path = "train/data.rs"]
mod data;
#[path = "train/dense.rs"]
mod dense;
#[path = "train/mlp.rs"]
mod mlp;

use cli::{Command, Config};
use data::Dataset;
use dense::{DenseStep, Engine};
use mlp::{Dropout, Evaluator, Mlp, Trainer};

/// `println!` that ends the program quietly when stdout is gone (`| head`) instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}

// ---------------------------------------------------------------------------------------
// A counting allocator: counts what the training loops allocate (only matrixmultiply's
// packing buffers, one per GEMM call of the batch path; `tests/no_alloc.rs` proves that
// bitdrop's own kernels allocate nothing).

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// relaxed atomic add, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.alloc_zeroed`'s.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let cfg = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(cfg)) => cfg,
        Ok(Command::Help) => {
            out!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "error: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Streams of the run, one per purpose, all from `--seed`.
fn rng(seed: u64, purpose: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ purpose.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

const DATA: u64 = 1;
const INIT: u64 = 2;
const ORDER: u64 = 3;
const MASKS: u64 = 4;
const TIMING: u64 = 5;

fn run(cfg: &Config) -> Result<(), String> {
    let start = Instant::now();
    let (train, test, source) = load(cfg)?;
    let mut sizes = vec![train.features];
    sizes.extend(&cfg.hidden);
    sizes.push(train.classes);
    let arch: Vec<String> = sizes.iter().map(usize::to_string).collect();
    out!(
        "bitdrop train: {source}; {} training and {} test examples",
        train.len(),
        test.len()
    );
    out!(
        "MLP {} (ReLU, softmax), SGD lr {} on batches of {}, {} masks{}; dropout keep {} on inputs, {} on hidden units",
        arch.join("-"),
        cfg.lr,
        cfg.batch,
        cfg.mask.name(),
        if cfg.out_masks {
            " (+ output masks)"
        } else {
            ""
        },
        cfg.keep_input,
        cfg.keep_hidden,
    );
    if cfg.data.is_none() {
        print_glyphs(&train);
    }
    let batch = cfg.batch.min(train.len());
    let init = Mlp::new(&sizes, &mut rng(cfg.seed, INIT));
    let dropout = Dropout {
        keep_input: cfg.keep_input,
        keep_hidden: cfg.keep_hidden,
        mode: cfg.mask,
        out_masks: cfg.out_masks,
    };

    out!("\nwith dropout:");
    let mut net = init.clone();
    let with = train_run(cfg, &mut net, &train, &test, dropout, batch, |_| true)?;

    out!("\nthe same training without dropout (same init, data order and epochs):");
    let mut plain_net = init.clone();
    let every = cfg.epochs.div_ceil(8);
    let plain = train_run(
        cfg,
        &mut plain_net,
        &train,
        &test,
        Dropout::none(cfg.mask),
        batch,
        |epoch| epoch % every == 0 || epoch == cfg.epochs,
    )?;
    out!("\n                  train acc  test acc  gap");
    for (name, r) in [("no dropout  ", &plain), ("with dropout", &with)] {
        out!(
            "  {name}      {:.3}     {:.3}   {:.3}",
            r.train_acc,
            r.test_acc,
            r.train_acc - r.test_acc
        );
    }
    out!(
        "  dropout: test accuracy {:.3} -> {:.3} ({:+.1} points), train-test gap {:.3} -> {:.3}",
        plain.test_acc,
        with.test_acc,
        100.0 * (with.test_acc - plain.test_acc),
        plain.train_acc - plain.test_acc,
        with.train_acc - with.test_acc,
    );
    out!(
        "  wall time of the {} epochs (evaluation included): {:.1}s with dropout, {:.1}s without",
        cfg.epochs,
        with.seconds,
        plain.seconds
    );
    // The example's and bitdrop's buffers are all made before the loops. The batch path's
    // GEMM (evaluation in batches of 256, and training steps with --batch > 1) allocates
    // matrixmultiply's packing buffer in each call; bitdrop itself allocates nothing.
    out!(
        "  heap allocations inside the loops (both runs, all epochs): {} in the training steps, {} in the evaluations (matrixmultiply's packing buffers, one per GEMM call)",
        with.step_allocations + plain.step_allocations,
        with.eval_allocations + plain.eval_allocations,
    );

    let timing = time_steps(cfg, &net, &train, batch, dropout)?;
    out!("\ntotal {:.1}s", start.elapsed().as_secs_f64());
    out!(
        "summary: test_acc_dropout={:.3} test_acc_plain={:.3} masked_step_us={:.1} dense_step_us={:.1}",
        with.test_acc,
        plain.test_acc,
        timing.masked_us,
        timing.dense_us
    );
    Ok(())
}

/// The train and test sets, and a description of where they come from.
fn load(cfg: &Config) -> Result<(Dataset, Dataset, String), String> {
    let mut rng = rng(cfg.seed, DATA);
    match &cfg.data {
        None => {
            let (train, test) = data::glyphs(&mut rng, cfg.train, cfg.test);
            let source = format!("built-in 8x8 digit glyphs (seed {})", cfg.seed);
            Ok((train, test, source))
        }
        Some(path) => {
            let all = data::load_csv(path)?;
            let (mut train, mut test) = data::split(&mut rng, &all, cfg.test_fraction);
            data::normalise(&mut train, &mut test);
            let source = format!(
                "{} ({} rows, {} features, {} classes; features scaled to [0, 1] on the training split)",
                path.display(),
                all.len(),
                all.features,
                all.classes
            );
            Ok((train, test, source))
        }
    }
}

/// The first ten training glyphs, side by side.
fn print_glyphs(train: &Dataset) {
    out!("\nthe first training examples:");
    let shown: Vec<Vec<String>> = (0..train.len().min(10))
        .map(|k| data::ascii(train.example(k)))
        .collect();
    let labels: Vec<String> = (0..shown.len())
        .map(|k| format!("{:<8}", train.y[k]))
        .collect();
    out!("{}", labels.join("  ").trim_end());
    for row in 0..data::SIDE {
        let line: Vec<&str> = shown.iter().map(|g| g[row].as_str()).collect();
        out!("{}", line.join("  ").trim_end());
    }
}

struct RunResult {
    train_acc: f64,
    test_acc: f64,
    /// Heap allocations in the training steps (shuffle, sampling, forward, backward,
    /// update) and in the evaluations, over all epochs.
    step_allocations: usize,
    eval_allocations: usize,
    seconds: f64,
}

/// Trains `net` for `cfg.epochs` epochs, printing the epochs `show` picks.
fn train_run(
    cfg: &Config,
    net: &mut Mlp,
    train: &Dataset,
    test: &Dataset,
    dropout: Dropout,
    batch: usize,
    show: impl Fn(usize) -> bool,
) -> Result<RunResult, String> {
    // Everything the loop touches is allocated here.
    let mut trainer = Trainer::new(net, batch, dropout, rng(cfg.seed, MASKS));
    let mut eval = Evaluator::new(net, 256);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut labels = vec![0u16; batch];
    let mut shuffle = rng(cfg.seed, ORDER);
    let f = train.features;
    let (mut step_allocations, mut eval_allocations) = (0, 0);
    let (mut train_acc, mut test_acc) = (0.0, 0.0);
    let start = Instant::now();
    for epoch in 1..=cfg.epochs {
        let before = allocations();
        data::shuffle(&mut shuffle, &mut order);
        // Cosine decay from --lr towards 0 over the run.
        let progress = (epoch - 1) as f64 / cfg.epochs as f64;
        let lr = (f64::from(cfg.lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32;
        let mut loss = 0.0;
        for chunk in order.chunks(trainer.cap()) {
            let input = trainer.input_mut();
            for (k, &i) in chunk.iter().enumerate() {
                input[k * f..(k + 1) * f].copy_from_slice(train.example(i));
                labels[k] = train.y[i];
            }
            loss += f64::from(
                trainer
                    .step(net, &labels[..chunk.len()], lr)
                    .map_err(step_error)?,
            );
        }
        let evaluation = allocations();
        step_allocations += evaluation - before;
        train_acc = eval.accuracy(net, train).map_err(step_error)?;
        test_acc = eval.accuracy(net, test).map_err(step_error)?;
        eval_allocations += allocations() - evaluation;
        if !loss.is_finite() {
            return Err(format!(
                "the training diverged in epoch {epoch} (loss {loss}); try a smaller --lr"
            ));
        }
        if show(epoch) {
            out!(
                "epoch {epoch:>3}/{}  train loss {:.4}  train acc {train_acc:.3}  test acc {test_acc:.3}  {:>5.1}s",
                cfg.epochs,
                loss / train.len() as f64,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(RunResult {
        train_acc,
        test_acc,
        step_allocations,
        eval_allocations,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn step_error(e: bitdrop::Error) -> String {
    format!("a bitdrop kernel refused its arguments: {e}")
}

// ---------------------------------------------------------------------------------------
// Timing: masked against dense, same run, same weights, same batch, same masks.

struct Timing {
    masked_us: f64,
    dense_us: f64,
}

enum Stepper {
    Masked(Trainer),
    Dense(DenseStep),
}

impl Stepper {
    fn input_mut(&mut self) -> &mut [f32] {
        match self {
            Stepper::Masked(t) => t.input_mut(),
            Stepper::Dense(d) => d.input_mut(),
        }
    }
    fn step(&mut self, net: &mut Mlp, labels: &[u16], lr: f32) -> Result<f32, bitdrop::Error> {
        match self {
            Stepper::Masked(t) => t.step(net, labels, lr),
            Stepper::Dense(d) => d.step(net, labels, lr),
        }
    }
}

fn time_steps(
    cfg: &Config,
    trained: &Mlp,
    train: &Dataset,
    batch: usize,
    dropout: Dropout,
) -> Result<Timing, String> {
    let mut variants: Vec<(String, Stepper, Mlp)> = Vec::new();
    let stream = || rng(cfg.seed, TIMING);
    let masked_name = if dropout.out_masks {
        "masked: bitdrop kernels with input and output masks"
    } else {
        "masked: bitdrop kernels, input masks (skip dropped columns)"
    };
    variants.push((
        masked_name.into(),
        Stepper::Masked(Trainer::new(trained, batch, dropout, stream())),
        trained.clone(),
    ));
    let other = Dropout {
        out_masks: !dropout.out_masks,
        ..dropout
    };
    let other_name = if other.out_masks {
        "masked: + output masks (--out-masks: skip rows too)"
    } else {
        "masked: input masks only (--no-out-masks)"
    };
    variants.push((
        other_name.into(),
        Stepper::Masked(Trainer::new(trained, batch, other, stream())),
        trained.clone(),
    ));
    for engine in [Engine::Bitdrop, Engine::Matrixmultiply] {
        variants.push((
            format!("dense: mask multiplied in, {}", engine.describe()),
            Stepper::Dense(DenseStep::new(trained, engine, batch, dropout, stream())),
            trained.clone(),
        ));
    }
    let f = train.features;
    let labels: Vec<u16> = train.y[..batch].to_vec();
    for (_, stepper, _) in &mut variants {
        stepper.input_mut()[..batch * f].copy_from_slice(&train.x[..batch * f]);
    }

    // Fairness check: from the same weights with the same masks, one masked step and one
    // dense step must give the same network (up to rounding).
    let mut agree = 0.0f32;
    {
        let mut after = Vec::new();
        for (_, stepper, net) in &mut variants {
            let mut copy = net.clone();
            stepper
                .step(&mut copy, &labels, cfg.lr)
                .map_err(step_error)?;
            after.push(copy);
        }
        for other in &after[1..] {
            agree = agree.max(after[0].max_abs_diff(other));
        }
    }

    // Warm up, then size the rounds to ~10 ms per variant.
    let mut per_step = 0.0f64;
    for (_, stepper, net) in &mut variants {
        let t = Instant::now();
        for _ in 0..3 {
            stepper.step(net, &labels, cfg.lr).map_err(step_error)?;
        }
        per_step = per_step.max(t.elapsed().as_secs_f64() / 3.0);
    }
    // Many rounds, every variant in each: a burst of the other engineers' load then hits
    // a round's variants alike, and the per-round ratios below cancel it. The first
    // steps of a variant in a round run with its weights out of cache (the other
    // variants ran in between, which a training loop never does) and are not counted.
    let steps = ((0.004 / per_step) as usize).clamp(10, 40);
    let warm = 5;
    let rounds = 30;
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds * steps); variants.len()];
    let mut round_medians: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (((_, stepper, net), t), r) in
            variants.iter_mut().zip(&mut times).zip(&mut round_medians)
        {
            let mut round = Vec::with_capacity(steps);
            for k in 0..warm + steps {
                let s = Instant::now();
                stepper.step(net, &labels, cfg.lr).map_err(step_error)?;
                if k >= warm {
                    round.push(s.elapsed().as_secs_f64() * 1e6);
                }
            }
            t.extend_from_slice(&round);
            r.push(median(&mut round));
        }
    }
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    out!(
        "\ntime per training step (sampling + forward + backward + update; batch {batch}, {} masks, keep {}/{}; median of {} steps each, interleaved):",
        cfg.mask.name(),
        cfg.keep_input,
        cfg.keep_hidden,
        rounds * steps
    );
    for ((name, _, _), us) in variants.iter().zip(&medians) {
        out!("  {name:<62} {us:>9.1} us");
    }
    let masked = medians[0];
    let (dense_index, dense_name) = if medians[2] <= medians[3] {
        (2, Engine::Bitdrop.describe())
    } else {
        (3, Engine::Matrixmultiply.describe())
    };
    let dense = medians[dense_index];
    let mut ratios: Vec<f64> = round_medians[0]
        .iter()
        .zip(&round_medians[dense_index])
        .map(|(m, d)| m / d)
        .collect();
    let ratio = median(&mut ratios);
    out!(
        "  masked/dense = {ratio:.2} (median of the {rounds} rounds' ratios; dense = the faster dense engine here: {dense_name}); masked and dense steps agree to {agree:.1e}"
    );
    Ok(Timing {
        masked_us: masked,
        dense_us: dense,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::cli::{Command, MaskMode, parse};
    use super::data::{parse_csv, split};
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run_cfg(s: &str) -> Config {
        match parse(args(s)) {
            Ok(Command::Run(cfg)) => cfg,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn err(s: &str) -> String {
        match parse(args(s)) {
            Err(e) => e,
            other => panic!("{s} should fail: {other:?}"),
        }
    }

    #[test]
    fn flags_parse() {
        assert_eq!(run_cfg(""), Config::default());
        let cfg = run_cfg(
            "--epochs 3 --keep-input 1 --keep-hidden=0.25 --seed 9 --batch 32 --mask per-example --data x.csv --hidden 8,4 --lr 0.5 --out-masks",
        );
        assert_eq!(cfg.epochs, 3);
        assert_eq!(cfg.keep_input.get(), 1.0);
        assert_eq!(cfg.keep_hidden.get(), 0.25);
        assert_eq!(cfg.seed, 9);
        assert_eq!(cfg.batch, 32);
        assert_eq!(cfg.mask, MaskMode::PerExample);
        assert_eq!(cfg.data.as_deref(), Some(std::path::Path::new("x.csv")));
        assert_eq!(cfg.hidden, vec![8, 4]);
        assert_eq!(cfg.lr, 0.5);
        assert!(cfg.out_masks);
        assert!(!run_cfg("--no-out-masks").out_masks);
        assert_eq!(parse(args("--help")), Ok(Command::Help));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(err("--epochs").contains("needs a value"));
        assert!(err("--epochs 0").contains("between 1"));
        assert!(err("--epochs ten").contains("not a positive integer"));
        assert!(err("--keep-input 0").contains("keep probability"));
        assert!(err("--keep-hidden 1.5").contains("keep probability"));
        assert!(err("--keep-hidden nan").contains("keep probability"));
        assert!(err("--batch -1").contains("--batch"));
        assert!(err("--mask sometimes").contains("per-batch"));
        assert!(err("--lr -1").contains("positive"));
        assert!(err("--hidden 8,,4").contains("--hidden"));
        assert!(err("--test-fraction 1").contains("between 0 and 1"));
        assert!(err("--seed 1 --seed 2").contains("twice"));
        assert!(err("--frobnicate 1").contains("unknown flag --frobnicate"));
        assert!(err("stray").contains("unexpected argument"));
        assert!(err("--out-masks=yes").contains("no value"));
        assert!(err("--no-out-masks --out-masks").contains("contradict"));
    }

    #[test]
    fn csv_parses() {
        let d = parse_csv("# comment\nf1,f2,label\n0,1.5,2\n\n 3 , -4e1 , 0 \r\n").unwrap();
        assert_eq!((d.features, d.classes, d.len()), (2, 3, 2));
        assert_eq!(d.x, vec![0.0, 1.5, 3.0, -40.0]);
        assert_eq!(d.y, vec![2, 0]);
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let e = |text: &str| parse_csv(text).unwrap_err().to_string();
        assert_eq!(
            e("1,2,0\n1,2\n"),
            "line 2: 2 fields, expected 3 like the first row"
        );
        assert_eq!(e("1,2,0\n1,x,1\n"), "line 2: column 2: 'x' is not a number");
        assert_eq!(e("1,2,0\n1,,1\n"), "line 2: column 2 is empty");
        assert_eq!(
            e("1,2,0\n1,inf,1\n"),
            "line 2: column 2: 'inf' is not a finite number"
        );
        assert!(e("1,2,0\n\n1,2,1.5\n").starts_with("line 3: label '1.5'"));
        assert!(e("1,2,0\n1,2,-1\n").starts_with("line 2: label '-1'"));
        assert!(e("1,2,0\n1,2,5000\n").starts_with("line 2: label 5000 is too large"));
        assert!(e("7\n").starts_with("line 1: 1 field"));
        assert!(e("a,b\nc,d\n").starts_with("line 2: column 1: 'c'"));
        assert_eq!(e(""), "0 data rows; need at least 2");
        assert!(e("1,0\n2,0\n").contains("at least 2 classes"));
    }

    #[test]
    fn split_is_seeded_and_complete() {
        let d = parse_csv(
            &(0..20)
                .map(|i| format!("{i},{}\n", i % 2))
                .collect::<String>(),
        )
        .unwrap();
        let (a, b) = split(&mut rng(7, DATA), &d, 0.25);
        let (a2, b2) = split(&mut rng(7, DATA), &d, 0.25);
        assert_eq!((a.len(), b.len()), (15, 5));
        assert_eq!((&a, &b), (&a2, &b2));
        let mut all: Vec<f32> = a.x.iter().chain(&b.x).copied().collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, (0..20).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn masked_and_dense_steps_agree() {
        // A small network, one step each way from the same weights and masks.
        let sizes = [5, 70, 9, 3];
        let init = Mlp::new(&sizes, &mut rng(3, INIT));
        let x: Vec<f32> = (0..5 * 4).map(|i| (i % 7) as f32 / 7.0).collect();
        let labels = [0u16, 2, 1, 2];
        for mode in [MaskMode::PerBatch, MaskMode::PerExample] {
            for (out_masks, m) in [(false, 4), (true, 4), (false, 1), (true, 1)] {
                let dropout = Dropout {
                    keep_input: bitdrop::KeepProb::new(0.75).unwrap(),
                    keep_hidden: bitdrop::KeepProb::new(0.5).unwrap(),
                    mode,
                    out_masks,
                };
                let mut masked = init.clone();
                let mut t = Trainer::new(&masked, m, dropout, rng(3, MASKS));
                t.input_mut()[..5 * m].copy_from_slice(&x[..5 * m]);
                let l1 = t.step(&mut masked, &labels[..m], 0.1).unwrap();
                for engine in [Engine::Bitdrop, Engine::Matrixmultiply] {
                    let mut dense = init.clone();
                    let mut d = DenseStep::new(&dense, engine, m, dropout, rng(3, MASKS));
                    d.input_mut()[..5 * m].copy_from_slice(&x[..5 * m]);
                    let l2 = d.step(&mut dense, &labels[..m], 0.1).unwrap();
                    assert!(
                        (l1 - l2).abs() < 1e-5,
                        "{mode:?} {out_masks} {m}: loss {l1} vs {l2}"
                    );
                    let diff = masked.max_abs_diff(&dense);
                    assert!(diff < 1e-5, "{mode:?} {out_masks} {m} {engine:?}: {diff}");
                    assert!(
                        masked.max_abs_diff(&init) > 1e-3,
                        "the step changed nothing"
                    );
                }
            }
        }
    }
}
