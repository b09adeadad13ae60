//! The kernels the layer helpers added: MSE loss, frozen (eval-mode) batch-norm backward and
//! gradient scaling. Memory-bound passes, so throughput is in bytes read plus written once
//! each; keel on 1- and 2-thread pools beside the scalar reference in each group.
//!
//! Shapes: MSE and `grad_scale` on 16M floats (activation size), frozen batch norm on conv
//! shape C's activations (32, 64, 32, 32).
//!
//! `cargo bench --bench lnorm`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::activation::{mse, mse_backward, mse_forward};
use keel::kernels::norm::{batchnorm_backward_eval, frozen};
use keel::kernels::optim::{grad_scale, scale};

const F32: u64 = 4;

fn filled(len: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic fill with both signs (benches must not run on zeros).
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

fn pools() -> Vec<(usize, rayon::ThreadPool)> {
    [1usize, 2]
        .into_iter()
        .map(|t| (t, rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap()))
        .collect()
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
            let loss = mse::reference::mse_forward(black_box(&pred), &target, &mut diff);
            mse::reference::mse_backward(&diff, &mut dpred);
            loss
        })
    });
    group.finish();
}

fn bench_frozen_batchnorm(criterion: &mut Criterion) {
    let (n, c, spatial) = (32usize, 64usize, 32 * 32);
    let len = n * c * spatial;
    let (x, dy) = (filled(len, 3), filled(len, 4));
    let (gamma, mean, var) = (vec![1.5f32; c], vec![0.1f32; c], vec![0.8f32; c]);
    let mut dx = vec![0.0f32; len];
    let (mut dgamma, mut dbeta) = (vec![0.0f32; c], vec![0.0f32; c]);
    let mut group = criterion.benchmark_group(format!("batchnorm_backward_eval/{n}x{c}x32x32"));
    group.throughput(Throughput::Bytes(3 * F32 * len as u64)); // read x, dy, write dx
    group.sample_size(20);
    for (threads, pool) in pools() {
        group.bench_function(BenchmarkId::new("keel", format!("T{threads}")), |bench| {
            pool.install(|| {
                bench.iter(|| {
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
                })
            })
        });
    }
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

fn bench_grad_scale(criterion: &mut Criterion) {
    let len = 1usize << 24;
    let mut grad = filled(len, 5);
    let mut group = criterion.benchmark_group("grad_scale/16M");
    group.throughput(Throughput::Bytes(2 * F32 * len as u64)); // read and write grad
    group.sample_size(10);
    // A factor of -1 keeps the values bounded over any number of iterations.
    for (threads, pool) in pools() {
        group.bench_function(BenchmarkId::new("keel", format!("T{threads}")), |bench| {
            pool.install(|| bench.iter(|| grad_scale(black_box(&mut grad), -1.0).unwrap()))
        });
    }
    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
        bench.iter(|| scale::reference::grad_scale(black_box(&mut grad), -1.0))
    });
    group.finish();
}

criterion_group!(benches, bench_mse, bench_frozen_batchnorm, bench_grad_scale);
criterion_main!(benches);
