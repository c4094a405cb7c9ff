//! Command-line flags: parsed by hand (no dependency), every mistake an `Err` with a
//! message that names the flag, never a panic.

use std::path::PathBuf;

use bitdrop::KeepProb;

/// How dropout masks are shared within a mini-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskMode {
    /// One mask per layer for the whole mini-batch ("one thinned network per step"): a
    /// `layer::ThinnedBatch` per layer (the one-example kernels at batch 1).
    PerBatch,
    /// One mask per example (PyTorch's `nn.Dropout`): the `layer::*_per_example` kernels.
    PerExample,
}

impl MaskMode {
    pub fn name(self) -> &'static str {
        match self {
            MaskMode::PerBatch => "per-batch",
            MaskMode::PerExample => "per-example",
        }
    }
}

/// Everything the run depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub epochs: usize,
    pub keep_input: KeepProb,
    pub keep_hidden: KeepProb,
    pub seed: u64,
    pub batch: usize,
    pub mask: MaskMode,
    pub data: Option<PathBuf>,
    pub hidden: Vec<usize>,
    pub lr: f32,
    /// Examples of the built-in data set.
    pub train: usize,
    pub test: usize,
    /// Share of a `--data` file held out for testing.
    pub test_fraction: f64,
    /// Also pass each hidden layer's mask as the output mask of the layer below it
    /// (on by default; `--no-out-masks` turns it off).
    pub out_masks: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            epochs: 150,
            keep_input: KeepProb::new(0.8).unwrap_or(KeepProb::ONE),
            keep_hidden: KeepProb::new(0.5).unwrap_or(KeepProb::ONE),
            seed: 1,
            batch: 32,
            mask: MaskMode::PerBatch,
            data: None,
            hidden: vec![512, 512],
            lr: 0.2,
            train: 500,
            test: 5000,
            test_fraction: 0.3,
            out_masks: true,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Config),
    Help,
}

pub const USAGE: &str = "\
usage: cargo run --release --example train -- [FLAGS]

Trains an MLP with dropout using only bitdrop's masked kernels, trains it again
without dropout, and times one training step masked against dense.

  --epochs N              passes over the training set            (default 150)
  --keep-input P          keep probability of the input units      (default 0.8)
  --keep-hidden P         keep probability of the hidden units     (default 0.5)
  --seed N                seed of data, init, shuffling and masks  (default 1)
  --batch N               examples per SGD step                    (default 32)
  --mask per-batch|per-example
                          one mask per mini-batch or per example   (default per-batch)
  --data FILE             train on a CSV of rows f1,...,fk,label instead of the
                          built-in glyphs (e.g. UCI optical digits), split by a
                          seeded shuffle
  --test-fraction F       share of --data held out for testing     (default 0.3)
  --hidden N,N,...        hidden layer widths                      (default 512,512)
  --lr F                  learning rate (gradients are batch means)(default 0.2;
                          0.02 suits --batch 1 --epochs 60 --no-out-masks)
  --train N / --test N    sizes of the built-in data set           (default 500 / 5000)
  --out-masks             also skip the rows of dropped hidden units (the _both /
                          out_mask kernels; with a shared mask only the kept x kept
                          block of each hidden layer is computed); the default
  --no-out-masks          input masks only
  -h, --help              this text";

/// Parses the arguments after the program name.
///
/// # Errors
///
/// A message naming the flag for an unknown flag, a missing or malformed value, a value
/// out of range, or a flag given twice.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut cfg = Config::default();
    let mut seen: Vec<String> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if !flag.starts_with("--") {
            return Err(format!(
                "unexpected argument '{arg}' (flags start with --; see --help)"
            ));
        }
        if seen.contains(&flag) {
            return Err(format!("{flag} given twice"));
        }
        seen.push(flag.clone());
        if flag == "--out-masks" || flag == "--no-out-masks" {
            if inline.is_some() {
                return Err(format!("{flag} takes no value"));
            }
            let other = if flag == "--out-masks" {
                "--no-out-masks"
            } else {
                "--out-masks"
            };
            if seen.iter().any(|f| f == other) {
                return Err("--out-masks and --no-out-masks contradict each other".into());
            }
            cfg.out_masks = flag == "--out-masks";
            continue;
        }
        if !KNOWN.contains(&flag.as_str()) {
            return Err(format!("unknown flag {flag} (see --help)"));
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("{flag} needs a value (see --help)"))?,
        };
        apply(&mut cfg, &flag, &value)?;
    }
    if cfg.data.is_none() && cfg.train < 10 {
        return Err(format!("--train must be at least 10, got {}", cfg.train));
    }
    Ok(Command::Run(cfg))
}

const KNOWN: &[&str] = &[
    "--epochs",
    "--keep-input",
    "--keep-hidden",
    "--seed",
    "--batch",
    "--mask",
    "--data",
    "--test-fraction",
    "--hidden",
    "--lr",
    "--train",
    "--test",
];

fn apply(cfg: &mut Config, flag: &str, v: &str) -> Result<(), String> {
    match flag {
        "--epochs" => cfg.epochs = positive(flag, v, 100_000)?,
        "--keep-input" => cfg.keep_input = keep(flag, v)?,
        "--keep-hidden" => cfg.keep_hidden = keep(flag, v)?,
        "--seed" => {
            cfg.seed = v
                .parse()
                .map_err(|_| format!("{flag}: '{v}' is not a non-negative integer"))?;
        }
        "--batch" => cfg.batch = positive(flag, v, 4096)?,
        "--mask" => {
            cfg.mask = match v {
                "per-batch" => MaskMode::PerBatch,
                "per-example" => MaskMode::PerExample,
                _ => {
                    return Err(format!(
                        "{flag}: '{v}' is neither per-batch nor per-example"
                    ));
                }
            }
        }
        "--data" => {
            if v.is_empty() {
                return Err(format!("{flag} needs a file name"));
            }
            cfg.data = Some(PathBuf::from(v));
        }
        "--test-fraction" => {
            let f: f64 = number(flag, v)?;
            if !(f > 0.0 && f < 1.0) {
                return Err(format!("{flag} must be strictly between 0 and 1, got {v}"));
            }
            cfg.test_fraction = f;
        }
        "--hidden" => {
            let widths = v
                .split(',')
                .map(|w| positive(flag, w.trim(), 4096))
                .collect::<Result<Vec<_>, _>>()?;
            cfg.hidden = widths;
        }
        "--lr" => {
            let lr: f32 = number(flag, v)?;
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(format!("{flag} must be a positive number, got {v}"));
            }
            cfg.lr = lr;
        }
        "--train" => cfg.train = positive(flag, v, 1 << 20)?,
        "--test" => cfg.test = positive(flag, v, 1 << 20)?,
        _ => return Err(format!("unknown flag {flag} (see --help)")),
    }
    Ok(())
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: '{v}' is not a number"))
}

fn positive(flag: &str, v: &str, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{flag} must be between 1 and {max}, got {n}")),
        Err(_) => Err(format!("{flag}: '{v}' is not a positive integer")),
    }
}

fn keep(flag: &str, v: &str) -> Result<KeepProb, String> {
    let p: f64 = number(flag, v)?;
    KeepProb::new(p).map_err(|e| format!("{flag} {v}: {e}"))
}
