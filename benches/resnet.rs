//! ResNet-18 (`models::resnet` with `ResNetConfig::resnet18`, torchvision's architecture) on
//! a batch of 8 images of 3x224x224, on 1- and 2-thread pools, on each SIMD instruction set
//! of the CPU (the portable path is checked by the tests, not timed here: one step takes
//! minutes):
//! - `forward`: inference, an eval-mode forward;
//! - `train_sgd`: a training step with SGD (momentum 0.9, weight decay 1e-4): `zero_grad`,
//!   forward in training mode, softmax-CE forward and backward, backward (no gradient for the
//!   images), `step`.
//!
//! Throughput is in images. The work is 3.628 GFLOP per image forward (the convolutions' and
//! the classifier's multiply-adds, counted from torchvision's layer shapes) and 10.65 GFLOP
//! per image for a training step (forward, input gradients of every layer but the first,
//! weight gradients of all: `3 × 3.628 - 0.236`, the stem convolution's 0.236 having no
//! input gradient), so images/s × these give GFLOP/s.
//!
//! The peer is `torchvision.models.resnet18` in PyTorch on the same machine:
//! `benches/peers/resnet18_torch.py` runs the same two cases (see its docstring).

mod common;

use std::hint::black_box;

use common::isa_runs;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keel::kernels::isa::{with_isa, Isa};
use keel::kernels::optim::SgdConfig;
use keel::layers::models::{resnet, ResNetConfig};
use keel::layers::{zero_grad, Layer, Loss, Mode, Optimizer, Sgd, SoftmaxCrossEntropy, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Images per batch.
const BATCH: usize = 8;

/// Images in [-1, 1) with both signs and labels 0..999, deterministic.
fn batch() -> (Tensor, Vec<u32>) {
    let shape = [BATCH, 3, 224, 224];
    let len: usize = shape.iter().product();
    let values = (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect();
    let labels = (0..BATCH as u32).map(|i| i * 131 % 1000).collect();
    (Tensor::from_vec(&shape, values).expect("consistent shape"), labels)
}

fn bench_resnet18(criterion: &mut Criterion) {
    let (x, labels) = batch();
    let mut group = criterion.benchmark_group("resnet18_b8_224");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    for run in isa_runs().into_iter().filter(|run| run.isa != Isa::Portable) {
        let mut model =
            resnet(&ResNetConfig::resnet18(1000), &mut StdRng::seed_from_u64(1)).expect("ResNet-18 builds");
        // As in PyTorch, the images' gradient is not computed.
        model.set_input_grad(false);
        let mut sgd =
            Sgd::new(SgdConfig { lr: 0.01, momentum: 0.9, weight_decay: 1e-4, ..SgdConfig::default() })
                .unwrap();
        let mut loss = SoftmaxCrossEntropy::new();
        group.bench_function(run.id("_forward"), |bench| {
            run.pool.install(|| {
                with_isa(run.isa, || {
                    bench.iter(|| model.forward(black_box(&x), Mode::Eval).expect("valid shapes"))
                })
                .expect("an instruction set of this CPU")
            })
        });
        group.bench_function(run.id("_train_sgd"), |bench| {
            run.pool.install(|| {
                with_isa(run.isa, || {
                    bench.iter(|| {
                        zero_grad(&mut model);
                        model.forward(&x, Mode::Train).expect("valid shapes");
                        black_box(loss.forward(model.output(), &labels).expect("valid labels"));
                        let grad = loss.backward(&labels).expect("valid labels");
                        model.backward(&x, grad).expect("valid shapes");
                        sgd.step(&mut model).expect("valid config");
                    })
                })
                .expect("an instruction set of this CPU")
            })
        });
        black_box(sgd.learning_rate());
    }
    group.finish();
}

criterion_group!(benches, bench_resnet18);
criterion_main!(benches);
