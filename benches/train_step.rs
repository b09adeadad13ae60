//! Whole training steps and inference of the networks the layers issue measures, in images
//! (samples) per second, on 1- and 2-thread pools (the networks, batches and step are in
//! `common/networks.rs`, shared with `examples/peer_timings.rs`):
//! - LeNet-5, batch 64, Adam: `zero_grad`, forward, softmax-CE forward/backward, backward,
//!   `step`;
//! - MLP 784-256-128-10 (ReLU), batch 128, Adam: the same;
//! - inference (eval-mode forward) of both.
//!
//! The peers are PyTorch and onnxruntime: `python3 benches/peers/compare.py` measures them
//! beside keel in one run (`docs/benchmarks.md`): compare ratios, not lone figures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "common/networks.rs"]
mod networks;

use networks::{Network, NETWORKS};

fn bench_networks(criterion: &mut Criterion) {
    for (name, shape) in NETWORKS {
        let mut group = criterion.benchmark_group(format!("train_step/{name}"));
        group.throughput(Throughput::Elements(shape[0] as u64));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
            let mut network = Network::new(name, shape);
            group.bench_function(BenchmarkId::new("keel_adam", format!("T{threads}")), |bench| {
                pool.install(|| bench.iter(|| network.train_step()))
            });
            group.bench_function(BenchmarkId::new("keel_inference", format!("T{threads}")), |bench| {
                pool.install(|| bench.iter(|| network.infer()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_networks);
criterion_main!(benches);
