//! `cargo run --release --example peer_timings -- [--threads T] [--quick] [WORK ...]`: keel's
//! side of `benches/peers/compare.py`, which runs it beside PyTorch, onnxruntime and numpy's
//! OpenBLAS on the same work and makes one table of ratios (`docs/benchmarks.md`).
//!
//! It times each work item (all without a `WORK` id) on a rayon pool of `T` threads (the
//! `--threads` flag, else `RAYON_NUM_THREADS`, else every core) and on the instruction set
//! keel picks (`KEEL_ISA`, else the best the CPU has), and prints one JSON line per item:
//! `{"work": id, "threads": T, "isa": ..., "median_s": ..., "min_s": ..., "max_s": ...,
//! "reps": ..., "inner": ...}`, with the item's `flops` (a multiply-add counts two) or `bytes`
//! (read + written) per call where it has them. `--list` prints the items instead, one JSON
//! line each with its shape: the peers read their work from it.
//!
//! The work is that of keel's benches: the convolutions A-D of `PEERS.md` forward and forward +
//! backward (dX, dW, db; `benches/common/conv_work.rs`), LeNet-5 and the MLP training steps and
//! inference (`benches/common/networks.rs`), SGEMM on the shapes of
//! `benches/common/gemm_shapes.rs`; and two yardsticks of the machine: the FMA peak (the
//! register-only loop of `benches/common/fma_peak.rs` on the widest instruction set keel's
//! choice allows, one loop per thread) and the copy bandwidth (64 MiB copied, split across the
//! threads).
//!
//! Timing: warm-up calls for `--warmup-seconds` (at least 3 calls), then repetitions of `inner`
//! back-to-back calls, `inner` chosen so one lasts at least `--rep-seconds`, repeated for
//! `--total-seconds` and at least `--min-reps` times; the figures are per call. `--quick`
//! shortens all of it, for smoke tests.

use std::hint::black_box;
use std::time::Instant;

use keel::kernels::conv::{conv2d_workspace_len, Conv2dShape};
use keel::kernels::gemm::{native, GemmShape};
use keel::kernels::isa::current_isa;

#[path = "../benches/common/gemm_shapes.rs"]
mod gemm_shapes;

#[path = "../benches/common/direct_loops.rs"]
mod direct_loops;

#[path = "../benches/common/conv_work.rs"]
mod conv_work;

#[path = "../benches/common/networks.rs"]
mod networks;

#[path = "../benches/common/fma_peak.rs"]
mod fma_peak;

#[path = "../benches/common/copy.rs"]
mod copy;

use conv_work::{peer_conv_shapes, Buffers};
use gemm_shapes::{filled, SHAPES};
use networks::{Network, NETWORKS};

/// Floats in each buffer of the copy yardstick (64 MiB).
const COPY_FLOATS: usize = 16 << 20;

/// How each item is timed (the module docs give the rule).
struct Timing {
    warmup_seconds: f64,
    rep_seconds: f64,
    total_seconds: f64,
    min_reps: usize,
}

impl Timing {
    /// The default rule: 0.15 s of warm-up, repetitions of at least 2 ms, at least 20 of them
    /// and about 0.5 s in all.
    const FULL: Timing = Timing { warmup_seconds: 0.15, rep_seconds: 2e-3, total_seconds: 0.5, min_reps: 20 };
    /// `--quick`: a smoke test's timings.
    const QUICK: Timing = Timing { warmup_seconds: 0.0, rep_seconds: 1e-3, total_seconds: 0.02, min_reps: 3 };
}

/// Seconds per call of one timed item.
struct Stats {
    median: f64,
    min: f64,
    max: f64,
    reps: usize,
    inner: usize,
}

/// Times `call` under `timing` (warm-up, then `reps` repetitions of `inner` calls).
fn measure(timing: &Timing, mut call: impl FnMut()) -> Stats {
    let start = Instant::now();
    let mut warmup_calls = 0;
    while warmup_calls < 3 || start.elapsed().as_secs_f64() < timing.warmup_seconds {
        call();
        warmup_calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / warmup_calls as f64;
    let inner = ((timing.rep_seconds / per_call).ceil() as usize).max(1);
    let reps = ((timing.total_seconds / (per_call * inner as f64)) as usize).max(timing.min_reps);
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let rep = Instant::now();
            for _ in 0..inner {
                call();
            }
            rep.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Stats { median: times[reps / 2], min: times[0], max: times[reps - 1], reps, inner }
}

/// One work item.
enum Work {
    /// Convolution `letter` of `PEERS.md`, forward only or forward + backward.
    Conv { letter: char, shape: Conv2dShape, backward: bool },
    /// A network of `networks.rs`: a training step or inference.
    Network { name: &'static str, input: &'static [usize], train: bool },
    /// `C = A·B`, row-major (m, k) by (k, n).
    Sgemm { m: usize, n: usize, k: usize },
    /// The FMA loop, once per thread.
    FmaPeak,
    /// The 64 MiB copy.
    Copy,
}

/// Every work item, in the table's order.
fn catalogue() -> Vec<Work> {
    let mut work = Vec::new();
    for (letter, shape) in peer_conv_shapes() {
        for backward in [false, true] {
            work.push(Work::Conv { letter, shape, backward });
        }
    }
    for (name, input) in NETWORKS {
        for train in [true, false] {
            work.push(Work::Network { name, input, train });
        }
    }
    work.extend(SHAPES.iter().map(|&(m, n, k)| Work::Sgemm { m, n, k }));
    work.extend([Work::FmaPeak, Work::Copy]);
    work
}

impl Work {
    fn id(&self) -> String {
        match self {
            Work::Conv { letter, backward, .. } => {
                format!("conv_{letter}_{}", if *backward { "fwd_bwd" } else { "fwd" })
            }
            Work::Network { name, train, .. } => format!("{name}_{}", if *train { "train" } else { "infer" }),
            Work::Sgemm { m, n, k } => format!("sgemm_{m}x{n}x{k}"),
            Work::FmaPeak => "fma_peak".into(),
            Work::Copy => "copy_bw".into(),
        }
    }

    /// The item's `--list` line: its id, kind, shape and a description.
    fn describe(&self) -> String {
        let id = self.id();
        match self {
            Work::Conv { letter, shape: s, backward } => {
                // The catalogue's convolutions have square kernels and padding.
                let (n, c_in, h, w, c_out, k, pad) = (s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.pad_h);
                let pass = if *backward { "fwd+bwd (dX, dW, db)" } else { "fwd" };
                format!(
                    r#"{{"work": "{id}", "kind": "conv", "backward": {backward}, "n": {n}, "c_in": {c_in}, "h": {h}, "w": {w}, "c_out": {c_out}, "k": {k}, "pad": {pad}, "what": "conv {letter} b{n} {c_in}x{h}x{w}->{c_out} {k}x{k} p{pad}, {pass}"}}"#
                )
            }
            Work::Network { name, input, train } => format!(
                r#"{{"work": "{id}", "kind": "network", "network": "{name}", "train": {train}, "input": {input:?}, "what": "{name} {}"}}"#,
                if *train { "train step (Adam)" } else { "inference" }
            ),
            Work::Sgemm { m, n, k } => format!(
                r#"{{"work": "{id}", "kind": "sgemm", "m": {m}, "n": {n}, "k": {k}, "what": "SGEMM {m}x{n}x{k}"}}"#
            ),
            Work::FmaPeak => format!(
                r#"{{"work": "{id}", "kind": "yardstick", "what": "FMA peak (register-only loop, one per thread)"}}"#
            ),
            Work::Copy => format!(
                r#"{{"work": "{id}", "kind": "yardstick", "what": "copy bandwidth (64 MiB, read + written)"}}"#
            ),
        }
    }

    /// Times the item on the calling thread's pool (call it inside `pool.install`): its
    /// stats, and its FLOPs or bytes per call where counted.
    fn time(&self, timing: &Timing, threads: usize) -> (Stats, Option<f64>, Option<f64>) {
        match *self {
            Work::Conv { shape, backward, .. } => {
                let mut buffers = Buffers::new(&shape);
                // Sized inside the pool: one column buffer per thread.
                let mut workspace = vec![0.0; conv2d_workspace_len(&shape)];
                let forward_flops = 2.0 * shape.muladds() as f64;
                if backward {
                    let stats = measure(timing, || buffers.keel_step(&shape, &mut workspace));
                    (stats, Some(3.0 * forward_flops), None)
                } else {
                    let stats = measure(timing, || buffers.keel_forward(&shape, &mut workspace));
                    (stats, Some(forward_flops), None)
                }
            }
            Work::Network { name, input, train } => {
                let mut network = Network::new(name, input);
                let stats = if train {
                    measure(timing, || network.train_step())
                } else {
                    measure(timing, || network.infer())
                };
                (stats, None, None)
            }
            Work::Sgemm { m, n, k } => {
                let (a, b) = (filled(m * k, 1), filled(k * n, 2));
                let mut c = vec![0.0f32; m * n];
                let stats = measure(timing, || {
                    native::sgemm(&GemmShape::new(m, n, k), 1.0, black_box(&a), black_box(&b), 0.0, &mut c)
                        .expect("consistent shapes")
                });
                (stats, Some(2.0 * (m * n * k) as f64), None)
            }
            Work::FmaPeak => {
                let isa = current_isa();
                let Some(flops) = fma_peak::peak_flops(isa) else {
                    return (
                        Stats { median: f64::NAN, min: f64::NAN, max: f64::NAN, reps: 0, inner: 0 },
                        None,
                        None,
                    );
                };
                let stats = measure(timing, || {
                    rayon::broadcast(|_| black_box(fma_peak::fma_peak(isa, black_box(1.0))));
                });
                (stats, Some((flops * threads as u64) as f64), None)
            }
            Work::Copy => {
                let source = filled(COPY_FLOATS, 1);
                let mut target = vec![0.0f32; COPY_FLOATS];
                let stats = measure(timing, || copy::parallel_copy(&mut target, black_box(&source)));
                (stats, None, Some((2 * COPY_FLOATS * size_of::<f32>()) as f64))
            }
        }
    }
}

/// A JSON number, or `null` for a missing or non-finite one.
fn json_number(value: Option<f64>) -> String {
    match value {
        Some(value) if value.is_finite() => format!("{value:e}"),
        _ => "null".into(),
    }
}

/// The number after `flag` on the command line.
fn flag_value<T: std::str::FromStr>(flag: &str, value: Option<String>) -> T {
    value.and_then(|value| value.parse().ok()).unwrap_or_else(|| {
        eprintln!("peer_timings: {flag} needs a number");
        std::process::exit(2)
    })
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let mut timing = if quick { Timing::QUICK } else { Timing::FULL };
    let mut threads = rayon::current_num_threads();
    let mut wanted = Vec::new();
    let mut list = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = flag_value(&arg, args.next()),
            "--warmup-seconds" => timing.warmup_seconds = flag_value(&arg, args.next()),
            "--rep-seconds" => timing.rep_seconds = flag_value(&arg, args.next()),
            "--total-seconds" => timing.total_seconds = flag_value(&arg, args.next()),
            "--min-reps" => timing.min_reps = flag_value(&arg, args.next()),
            "--list" => list = true,
            "--quick" => {}
            _ => wanted.push(arg),
        }
    }
    timing.min_reps = timing.min_reps.max(1);
    let catalogue = catalogue();
    if let Some(unknown) = wanted.iter().find(|id| !catalogue.iter().any(|work| &work.id() == *id)) {
        let ids: Vec<String> = catalogue.iter().map(Work::id).collect();
        eprintln!("peer_timings: unknown work id {unknown:?}; the ids are: {}", ids.join(" "));
        std::process::exit(2);
    }
    let chosen = catalogue.iter().filter(|work| wanted.is_empty() || wanted.contains(&work.id()));
    if list {
        chosen.for_each(|work| println!("{}", work.describe()));
        return;
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool");
    let isa = current_isa().name();
    for work in chosen {
        let (stats, flops, bytes) = pool.install(|| work.time(&timing, threads));
        println!(
            r#"{{"work": "{}", "threads": {threads}, "isa": "{isa}", "median_s": {}, "min_s": {}, "max_s": {}, "reps": {}, "inner": {}, "flops": {}, "bytes": {}}}"#,
            work.id(),
            json_number(Some(stats.median)),
            json_number(Some(stats.min)),
            json_number(Some(stats.max)),
            stats.reps,
            stats.inner,
            json_number(flops),
            json_number(bytes),
        );
    }
}
