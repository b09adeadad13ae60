//! The networks of `benches/train_step.rs` and `examples/peer_timings.rs` (each includes this
//! file by path), with their batches and training step:
//! - LeNet-5, batch 64, Adam: `zero_grad`, forward, softmax-CE forward/backward, backward,
//!   `step`;
//! - MLP 784-256-128-10 (ReLU), batch 128, Adam: the same;
//! - inference (eval-mode forward) of both.

use std::hint::black_box;

use keel::kernels::optim::AdamConfig;
use keel::layers::{
    lenet5, zero_grad, ActivationKind, Adam, Dense, Init, Layer, Loss, Mode, Optimizer, Sequential,
    SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The networks by name, with their input shape (batch first).
pub const NETWORKS: [(&str, &[usize]); 2] =
    [("lenet5_b64", &[64, 1, 28, 28]), ("mlp_784_256_128_10_b128", &[128, 784])];

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

/// One network of [`NETWORKS`] with its batch, Adam and loss.
pub struct Network {
    model: Sequential,
    adam: Adam,
    loss: SoftmaxCrossEntropy,
    x: Tensor,
    labels: Vec<u32>,
}

impl Network {
    /// The network `name` (LeNet-5 for a name starting with `lenet`, else the MLP), seeded,
    /// on a batch of `shape`.
    pub fn new(name: &str, shape: &[usize]) -> Network {
        let (x, labels) = batch(shape);
        let mut rng = StdRng::seed_from_u64(1);
        let mut model =
            if name.starts_with("lenet") { lenet5(&mut rng).expect("valid LeNet") } else { mlp(&mut rng) };
        // As in PyTorch, the data's gradient is not computed.
        model.set_input_grad(false);
        let adam = Adam::new(AdamConfig::default()).unwrap();
        Network { model, adam, loss: SoftmaxCrossEntropy::new(), x, labels }
    }

    /// One training step with Adam.
    pub fn train_step(&mut self) {
        zero_grad(&mut self.model);
        self.model.forward(&self.x, Mode::Train).expect("valid shapes");
        black_box(self.loss.forward(self.model.output(), &self.labels).expect("valid labels"));
        let grad = self.loss.backward(&self.labels).expect("valid labels");
        self.model.backward(&self.x, grad).expect("valid shapes");
        self.adam.step(&mut self.model).expect("valid config");
        // Keep the optimizer's learning rate in use so the step is not optimised away.
        black_box(self.adam.learning_rate());
    }

    /// One eval-mode forward pass.
    pub fn infer(&mut self) {
        self.model.forward(black_box(&self.x), Mode::Eval).expect("valid shapes");
        black_box(self.model.output());
    }
}
