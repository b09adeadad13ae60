//! Batch norm (training, evaluation, backward and frozen eval-mode backward), dropout, optimizer updates,
//! gradient scaling and the MSE loss: memory-bound passes, so throughput is in bytes
//! (`Throughput::Bytes` = the bytes the operation must read plus write once each; the kernel
//! may read some more than once, e.g. batch norm's statistics passes). keel on 1- and
//! 2-thread pools beside the scalar reference in each group.
//!
//! The dispatched kernels (batch norm, dropout, Adam, SGD, `grad_scale`) run on
//! every instruction set the CPU has (`keel_avx512`, `keel_avx2`, `keel_portable`, forced
//! with `keel::kernels::isa::with_isa`); `keel_portable` is the `wide::f32x8` code every
//! build ran before run-time dispatch (two SSE halves in a default build): the "before".
//!
//! Shapes: batch norm on LeNet's first activations (64, 6, 28, 28) and conv shape C's
//! (32, 64, 32, 32); dropout on 1M and 16M floats; MSE and `grad_scale` on 16M floats;
//! Adam and SGD with momentum on 256K, 1M and 16M parameters.
//!
//! `cargo bench --bench norm_optim`

mod common;

use std::hint::black_box;

use common::{isa_runs, pools};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use keel::kernels::isa::with_isa;
use keel::kernels::loss::reference as loss_reference;
use keel::kernels::loss::{mse_backward, mse_forward};
use keel::kernels::norm::{self, batchnorm_backward_eval, batchnorm_backward_workspace_len, frozen};
use keel::kernels::optim::{self, grad_scale, scale, AdamConfig, SgdConfig};

const F32: u64 = 4;

fn filled(len: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic fill with both signs (benches must not run on zeros).
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

/// Batch-norm shapes `(n, c, h, w)`: LeNet's first conv output and conv shape C's.
const BATCHNORM_SHAPES: [(usize, usize, usize, usize); 2] = [(64, 6, 28, 28), (32, 64, 32, 32)];

/// Benches `f` in `group` on every instruction set of the CPU on 1 and 2 threads.
fn bench_keel(group: &mut BenchmarkGroup<'_, WallTime>, mut f: impl FnMut() + Send) {
    for run in isa_runs() {
        let (id, isa, pool) = (run.id(""), run.isa, run.pool);
        group.bench_function(id, |bench| pool.install(|| with_isa(isa, || bench.iter(&mut f)).unwrap()));
    }
}

fn bench_batchnorm(criterion: &mut Criterion) {
    for (n, c, h, w) in BATCHNORM_SHAPES {
        let spatial = h * w;
        let len = n * c * spatial;
        let x = filled(len, 1);
        let dy = filled(len, 2);
        let (gamma, beta) = (vec![1.5f32; c], vec![0.25f32; c]);
        let (mut rm, mut rv) = (vec![0.0f32; c], vec![1.0f32; c]);
        let (mut save_mean, mut save_invstd) = (vec![0.0f32; c], vec![0.0f32; c]);
        let mut y = vec![0.0f32; len];
        let mut dx = vec![0.0f32; len];
        let (mut dgamma, mut dbeta) = (vec![0.0f32; c], vec![0.0f32; c]);
        let mut workspace = vec![0.0f32; batchnorm_backward_workspace_len(c)];

        let mut group = criterion.benchmark_group(format!("batchnorm_forward_train/{n}x{c}x{h}x{w}"));
        group.throughput(Throughput::Bytes(2 * F32 * len as u64)); // read x, write y
        group.sample_size(20);
        bench_keel(&mut group, || {
            norm::batchnorm_forward_train(
                n,
                c,
                spatial,
                black_box(&x),
                &gamma,
                &beta,
                1e-5,
                0.1,
                &mut rm,
                &mut rv,
                &mut y,
                &mut save_mean,
                &mut save_invstd,
            )
            .unwrap()
        });
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| {
                norm::reference::batchnorm_forward_train(
                    n,
                    c,
                    spatial,
                    black_box(&x),
                    &gamma,
                    &beta,
                    1e-5,
                    0.1,
                    &mut rm,
                    &mut rv,
                    &mut y,
                    &mut save_mean,
                    &mut save_invstd,
                )
            })
        });
        group.finish();

        let mut group = criterion.benchmark_group(format!("batchnorm_forward_eval/{n}x{c}x{h}x{w}"));
        group.throughput(Throughput::Bytes(2 * F32 * len as u64)); // read x, write y
        group.sample_size(20);
        bench_keel(&mut group, || {
            norm::batchnorm_forward_eval(n, c, spatial, black_box(&x), &gamma, &beta, &rm, &rv, 1e-5, &mut y)
                .unwrap()
        });
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| {
                norm::reference::batchnorm_forward_eval(
                    n,
                    c,
                    spatial,
                    black_box(&x),
                    &gamma,
                    &beta,
                    &rm,
                    &rv,
                    1e-5,
                    &mut y,
                )
            })
        });
        group.finish();

        let mut group = criterion.benchmark_group(format!("batchnorm_backward/{n}x{c}x{h}x{w}"));
        group.throughput(Throughput::Bytes(3 * F32 * len as u64)); // read x, dy, write dx
        group.sample_size(20);
        bench_keel(&mut group, || {
            norm::batchnorm_backward(
                n,
                c,
                spatial,
                black_box(&x),
                black_box(&dy),
                &gamma,
                &save_mean,
                &save_invstd,
                &mut workspace,
                &mut dx,
                &mut dgamma,
                &mut dbeta,
            )
            .unwrap()
        });
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| {
                norm::reference::batchnorm_backward(
                    n,
                    c,
                    spatial,
                    black_box(&x),
                    black_box(&dy),
                    &gamma,
                    &save_mean,
                    &save_invstd,
                    &mut dx,
                    &mut dgamma,
                    &mut dbeta,
                )
            })
        });
        group.finish();
    }
}

fn bench_dropout(criterion: &mut Criterion) {
    for (label, len) in [("1M", 1usize << 20), ("16M", 1 << 24)] {
        let x = filled(len, 3);
        let mut y = vec![0.0f32; len];
        let mut mask = vec![0u8; len];
        let mut group = criterion.benchmark_group(format!("dropout_forward/{label}"));
        group.throughput(Throughput::Bytes((2 * F32 + 1) * len as u64)); // read x, write y and the u8 mask
        group.sample_size(10);
        bench_keel(&mut group, || {
            norm::dropout_forward(0.5, 7, 0, black_box(&x), &mut y, &mut mask).unwrap()
        });
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| norm::reference::dropout_forward(0.5, 7, 0, black_box(&x), &mut y, &mut mask))
        });
        group.finish();

        let mut group = criterion.benchmark_group(format!("dropout_backward/{label}"));
        group.throughput(Throughput::Bytes((2 * F32 + 1) * len as u64)); // read dy and the mask, write dx
        group.sample_size(10);
        bench_keel(&mut group, || norm::dropout_backward(0.5, &mask, black_box(&x), &mut y).unwrap());
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| norm::reference::dropout_backward(0.5, &mask, black_box(&x), &mut y))
        });
        group.finish();
    }
}

fn bench_optimizers(criterion: &mut Criterion) {
    // 256K: about the MLP 784-256-128-10's 235K parameters, whose Adam state fits in L2.
    for (len, label) in [(1usize << 18, "256K"), (1 << 20, "1M"), (1 << 24, "16M")] {
        let grad = filled(len, 4);
        let mut param = filled(len, 5);
        let (mut m, mut v) = (filled(len, 6), vec![0.01f32; len]);
        let adam = AdamConfig::default();

        let mut group = criterion.benchmark_group(format!("adam_update/{label}"));
        // read param, grad, m, v; write param, m, v
        group.throughput(Throughput::Bytes(7 * F32 * len as u64));
        group.sample_size(10);
        for run in isa_runs() {
            let (id, isa, pool) = (run.id(""), run.isa, run.pool);
            group.bench_function(id, |bench| {
                pool.install(|| {
                    with_isa(isa, || {
                        bench.iter(|| {
                            optim::adam_update(
                                &adam,
                                10,
                                &mut param,
                                black_box(&grad),
                                &mut m,
                                &mut v,
                                &mut [],
                            )
                            .unwrap()
                        })
                    })
                    .unwrap()
                })
            });
        }
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| {
                optim::reference::adam_update(
                    &adam,
                    10,
                    &mut param,
                    black_box(&grad),
                    &mut m,
                    &mut v,
                    &mut [],
                )
            })
        });
        group.finish();

        let sgd = SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() };
        let mut group = criterion.benchmark_group(format!("sgd_momentum_update/{label}"));
        // read param, grad, buffer; write param, buffer
        group.throughput(Throughput::Bytes(5 * F32 * len as u64));
        group.sample_size(10);
        for run in isa_runs() {
            let (id, isa, pool) = (run.id(""), run.isa, run.pool);
            group.bench_function(id, |bench| {
                pool.install(|| {
                    with_isa(isa, || {
                        bench.iter(|| {
                            optim::sgd_update(&sgd, 10, &mut param, black_box(&grad), &mut m).unwrap()
                        })
                    })
                    .unwrap()
                })
            });
        }
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| optim::reference::sgd_update(&sgd, 10, &mut param, black_box(&grad), &mut m))
        });
        group.finish();
    }
}

fn bench_mse(criterion: &mut Criterion) {
    let len = 1usize << 24;
    let (pred, target) = (filled(len, 1), filled(len, 2));
    let (mut diff, mut dpred) = (vec![0.0f32; len], vec![0.0f32; len]);
    let mut group = criterion.benchmark_group("mse_forward_backward/16M");
    // Forward reads pred, target and writes diff; backward reads diff and writes dpred.
    group.throughput(Throughput::Bytes(5 * F32 * len as u64));
    group.sample_size(10);
    for (threads, pool) in pools() {
        group.bench_function(BenchmarkId::new("keel", format!("T{threads}")), |bench| {
            pool.install(|| {
                bench.iter(|| {
                    let loss = mse_forward(black_box(&pred), &target, &mut diff).unwrap();
                    mse_backward(&diff, &mut dpred).unwrap();
                    loss
                })
            })
        });
    }
    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
        bench.iter(|| {
            let loss = loss_reference::mse_forward(black_box(&pred), &target, &mut diff);
            loss_reference::mse_backward(&diff, &mut dpred);
            loss
        })
    });
    group.finish();
}

fn bench_frozen_batchnorm(criterion: &mut Criterion) {
    for (n, c, h, w) in BATCHNORM_SHAPES {
        let spatial = h * w;
        let len = n * c * spatial;
        let (x, dy) = (filled(len, 3), filled(len, 4));
        let (gamma, mean, var) = (vec![1.5f32; c], vec![0.1f32; c], vec![0.8f32; c]);
        let mut dx = vec![0.0f32; len];
        let (mut dgamma, mut dbeta) = (vec![0.0f32; c], vec![0.0f32; c]);
        let mut group = criterion.benchmark_group(format!("batchnorm_backward_eval/{n}x{c}x{h}x{w}"));
        group.throughput(Throughput::Bytes(3 * F32 * len as u64)); // read x, dy, write dx
        group.sample_size(20);
        bench_keel(&mut group, || {
            batchnorm_backward_eval(
                n,
                c,
                spatial,
                black_box(&x),
                &dy,
                &gamma,
                &mean,
                &var,
                1e-5,
                &mut dx,
                &mut dgamma,
                &mut dbeta,
            )
            .unwrap()
        });
        group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
            bench.iter(|| {
                frozen::reference::batchnorm_backward_eval(
                    n,
                    c,
                    spatial,
                    black_box(&x),
                    &dy,
                    &gamma,
                    &mean,
                    &var,
                    1e-5,
                    &mut dx,
                    &mut dgamma,
                    &mut dbeta,
                )
            })
        });
        group.finish();
    }
}

fn bench_grad_scale(criterion: &mut Criterion) {
    let len = 1usize << 24;
    let mut grad = filled(len, 5);
    let mut group = criterion.benchmark_group("grad_scale/16M");
    group.throughput(Throughput::Bytes(2 * F32 * len as u64)); // read and write grad
    group.sample_size(10);
    // A factor of -1 keeps the values bounded over any number of iterations.
    for run in isa_runs() {
        let (id, isa, pool) = (run.id(""), run.isa, run.pool);
        group.bench_function(id, |bench| {
            pool.install(|| {
                with_isa(isa, || bench.iter(|| grad_scale(black_box(&mut grad), -1.0).unwrap())).unwrap()
            })
        });
    }
    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
        bench.iter(|| scale::reference::grad_scale(black_box(&mut grad), -1.0))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_batchnorm,
    bench_dropout,
    bench_optimizers,
    bench_mse,
    bench_frozen_batchnorm,
    bench_grad_scale
);
criterion_main!(benches);
