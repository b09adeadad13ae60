//! Whole training steps and inference of the networks the layers issue measures, in images
//! (samples) per second, on 1- and 2-thread pools:
//! - LeNet-5, batch 64, Adam: `zero_grad`, forward, softmax-CE forward/backward, backward,
//!   `step`;
//! - MLP 784-256-128-10 (ReLU), batch 128, Adam: the same;
//! - inference (eval-mode forward) of both.
//!
//! The peers are PyTorch and onnxruntime (`../shared/perf/PEERS.md`, measured on this kind of
//! machine with the scripts in `../shared/perf/peers/`): compare ratios, not lone figures.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::optim::AdamConfig;
use keel::layers::{
    lenet5, zero_grad, ActivationKind, Adam, Dense, Init, Layer, Loss, Mode, Optimizer, Sequential,
    SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Inputs in [-1, 1) with both signs and labels 0..9, deterministic.
fn batch(shape: &[usize]) -> (Tensor, Vec<u32>) {
    let len: usize = shape.iter().product();
    let values = (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect();
    let labels = (0..shape[0] as u32).map(|i| i * 7 % 10).collect();
    (Tensor::from_vec(shape, values).expect("consistent shape"), labels)
}

/// The MLP with its ReLUs fused into the dense layers.
fn mlp(rng: &mut StdRng) -> Sequential {
    Sequential::new()
        .push(Dense::new(784, 256, Init::He, rng).unwrap().with_activation(ActivationKind::Relu))
        .push(Dense::new(256, 128, Init::He, rng).unwrap().with_activation(ActivationKind::Relu))
        .push(Dense::new(128, 10, Init::He, rng).unwrap())
}

fn train_step(
    model: &mut Sequential,
    adam: &mut Adam,
    loss: &mut SoftmaxCrossEntropy,
    x: &Tensor,
    labels: &[u32],
) {
    zero_grad(model);
    model.forward(x, Mode::Train).expect("valid shapes");
    black_box(loss.forward(model.output(), labels).expect("valid labels"));
    let grad = loss.backward(labels).expect("valid labels");
    model.backward(x, grad).expect("valid shapes");
    adam.step(model).expect("valid config");
}

fn bench_networks(criterion: &mut Criterion) {
    let cases: [(&str, Vec<usize>); 2] =
        [("lenet5_b64", vec![64, 1, 28, 28]), ("mlp_784_256_128_10_b128", vec![128, 784])];
    for (name, shape) in cases {
        let (x, labels) = batch(&shape);
        let mut group = criterion.benchmark_group(format!("train_step/{name}"));
        group.throughput(Throughput::Elements(shape[0] as u64));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
            let mut rng = StdRng::seed_from_u64(1);
            let mut model = if name.starts_with("lenet") {
                lenet5(&mut rng).expect("valid LeNet")
            } else {
                mlp(&mut rng)
            };
            // As in PyTorch, the data's gradient is not computed.
            model.set_input_grad(false);
            let mut adam = Adam::new(AdamConfig::default()).unwrap();
            let mut loss = SoftmaxCrossEntropy::new();
            group.bench_function(BenchmarkId::new("keel_adam", format!("T{threads}")), |bench| {
                pool.install(|| bench.iter(|| train_step(&mut model, &mut adam, &mut loss, &x, &labels)))
            });
            group.bench_function(BenchmarkId::new("keel_inference", format!("T{threads}")), |bench| {
                pool.install(|| {
                    bench.iter(|| model.forward(black_box(&x), Mode::Eval).expect("valid shapes"))
                })
            });
            // Keep the optimizer's learning rate in use so the step is not optimised away.
            black_box(adam.learning_rate());
        }
        group.finish();
    }
}

criterion_group!(benches, bench_networks);
criterion_main!(benches);
