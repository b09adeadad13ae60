//! Activation and fused-loss throughput in bytes moved (read + written), keel on 1- and
//! 2-thread pools beside the scalar libm reference and a plain memory copy of the same
//! number of bytes on the same 1- and 2-thread pools (the bandwidth yardstick: a
//! memory-bound kernel cannot beat the copy on its thread count).
//!
//! The element-wise kernels run on every instruction set the CPU has (`keel_avx512`,
//! `keel_avx2`, `keel_portable`, forced with `keel::kernels::isa::with_isa`);
//! `keel_portable` is the `wide::f32x8` code every build ran before run-time dispatch (two
//! SSE halves in a default build): the "before" of the dispatched paths.
//!
//! - element-wise forward (`x → y`) and backward (`y, dy → dx`) of sigmoid, tanh and ReLU on
//!   16M floats (64 MiB per array) and on 256K floats (L2-resident: the arithmetic's speed);
//! - softmax cross-entropy forward (`logits → probs`, loss) and backward (`probs → dlogits`)
//!   on `(batch, classes)` = (256, 10) (MNIST-size heads) and (64, 1000) (ImageNet-size).
//!
//! `cargo bench --bench activation`

mod common;

use std::hint::black_box;

use common::copy::parallel_copy;
use common::{isa_runs, pools};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::activation::{self as act, reference};
use keel::kernels::isa::with_isa;
use keel::kernels::loss;
use keel::kernels::loss::reference as loss_reference;
use keel::kernels::Result;

const LEN: usize = 16 << 20;

/// 256K floats: the arrays of one pass fit the 2 MiB L2, so the group measures the
/// arithmetic rather than DRAM bandwidth.
const CACHED_LEN: usize = 256 << 10;

fn filled(len: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    // A cheap deterministic fill with both signs (benches must not run on zeros).
    (0..len)
        .map(|i| {
            let unit =
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32;
            lo + (hi - lo) * unit
        })
        .collect()
}

type Forward = fn(&[f32], &mut [f32]) -> Result<()>;
type ForwardRef = fn(&[f32], &mut [f32]);
type Backward = fn(&[f32], &[f32], &mut [f32]) -> Result<()>;
type BackwardRef = fn(&[f32], &[f32], &mut [f32]);

const KERNELS: [(&str, Forward, ForwardRef, Backward, BackwardRef); 3] = [
    (
        "sigmoid",
        act::sigmoid_forward,
        reference::sigmoid_forward,
        act::sigmoid_backward,
        reference::sigmoid_backward,
    ),
    ("tanh", act::tanh_forward, reference::tanh_forward, act::tanh_backward, reference::tanh_backward),
    ("relu", act::relu_forward, reference::relu_forward, act::relu_backward, reference::relu_backward),
];

/// The copy yardstick of a group, `memcpy/T1` and `memcpy/T2`: `source` into `target` on
/// each pool, split across its threads as keel's passes are.
fn bench_copies(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    pools: &[(usize, rayon::ThreadPool)],
    target: &mut [f32],
    source: &[f32],
) {
    for (threads, pool) in pools {
        group.bench_function(BenchmarkId::new("memcpy", format!("T{threads}")), |bench| {
            pool.install(|| bench.iter(|| parallel_copy(target, black_box(source))))
        });
    }
}

fn bench_elementwise(criterion: &mut Criterion) {
    for (len, label) in [(LEN, "16M"), (CACHED_LEN, "256K")] {
        bench_elementwise_len(criterion, len, label);
    }
}

/// The element-wise groups on `len` floats.
fn bench_elementwise_len(criterion: &mut Criterion, len: usize, label: &str) {
    let runs = isa_runs();
    let pools = pools();
    let x = filled(len, 1, -6.0, 6.0);
    let dy = filled(len, 2, -1.0, 1.0);
    let mut y = vec![0.0f32; len];
    let mut dx = vec![0.0f32; len];
    // Copy buffers for the yardstick: forward moves 2 arrays, backward 3 (1.5 copies' worth).
    let copy_src = filled(len * 3 / 2, 3, -1.0, 1.0);
    let mut copy_dst = vec![0.0f32; len * 3 / 2];
    let bytes = |arrays: usize| (arrays * len * size_of::<f32>()) as u64;

    for (name, forward, forward_ref, backward, backward_ref) in KERNELS {
        let mut group = criterion.benchmark_group(format!("{name}_forward/{label}"));
        group.throughput(Throughput::Bytes(bytes(2)));
        group.sample_size(10);
        for run in &runs {
            group.bench_function(run.id(""), |bench| {
                run.pool.install(|| {
                    with_isa(run.isa, || bench.iter(|| forward(black_box(&x), &mut y).unwrap())).unwrap()
                })
            });
        }
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| forward_ref(black_box(&x), &mut y))
        });
        bench_copies(&mut group, &pools, &mut copy_dst[..len], &copy_src[..len]);
        group.finish();

        // Backward from the saved output, as layers call it.
        forward(&x, &mut y).unwrap();
        let mut group = criterion.benchmark_group(format!("{name}_backward/{label}"));
        group.throughput(Throughput::Bytes(bytes(3)));
        group.sample_size(10);
        for run in &runs {
            group.bench_function(run.id(""), |bench| {
                run.pool.install(|| {
                    with_isa(run.isa, || {
                        bench.iter(|| backward(black_box(&y), black_box(&dy), &mut dx).unwrap())
                    })
                    .unwrap()
                })
            });
        }
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| backward_ref(black_box(&y), black_box(&dy), &mut dx))
        });
        bench_copies(&mut group, &pools, &mut copy_dst, &copy_src);
        group.finish();
    }
}

fn bench_softmax_cross_entropy(criterion: &mut Criterion) {
    let runs = isa_runs();
    let pools = pools();
    for (batch, classes) in [(256usize, 10usize), (64, 1000)] {
        let len = batch * classes;
        let logits = filled(len, 4, -5.0, 5.0);
        let targets: Vec<u32> = (0..batch as u32).map(|r| r * 7 % classes as u32).collect();
        let mut probs = vec![0.0f32; len];
        let mut dlogits = vec![0.0f32; len];
        let mut copy_dst = vec![0.0f32; len];
        let mut group = criterion.benchmark_group(format!("softmax_cross_entropy/{batch}x{classes}"));
        // Forward reads the logits and writes the probs, backward reads the probs and writes
        // dlogits: the same bytes (the targets add batch·4 more, ignored).
        group.throughput(Throughput::Bytes((2 * len * size_of::<f32>()) as u64));
        for run in &runs {
            group.bench_function(run.id("_forward"), |bench| {
                run.pool.install(|| {
                    with_isa(run.isa, || {
                        bench.iter(|| {
                            loss::softmax_cross_entropy_forward(
                                batch,
                                classes,
                                black_box(&logits),
                                &targets,
                                &mut probs,
                            )
                            .unwrap()
                        })
                    })
                    .unwrap()
                })
            });
            group.bench_function(run.id("_backward"), |bench| {
                run.pool.install(|| {
                    with_isa(run.isa, || {
                        bench.iter(|| {
                            loss::softmax_cross_entropy_backward(
                                batch,
                                classes,
                                black_box(&probs),
                                &targets,
                                &mut dlogits,
                            )
                            .unwrap()
                        })
                    })
                    .unwrap()
                })
            });
        }
        group.bench_function(BenchmarkId::new("reference_forward", "T1"), |bench| {
            bench.iter(|| {
                loss_reference::softmax_cross_entropy_forward(
                    classes,
                    black_box(&logits),
                    &targets,
                    &mut probs,
                )
            })
        });
        group.bench_function(BenchmarkId::new("reference_backward", "T1"), |bench| {
            bench.iter(|| {
                loss_reference::softmax_cross_entropy_backward(
                    classes,
                    black_box(&probs),
                    &targets,
                    &mut dlogits,
                )
            })
        });
        bench_copies(&mut group, &pools, &mut copy_dst, &logits);
        group.finish();
    }
}

criterion_group!(benches, bench_elementwise, bench_softmax_cross_entropy);
criterion_main!(benches);
