//! # keel-layers
//!
//! Layers, losses and optimizers built on `keel-kernels`: every number is computed by a
//! kernel; this crate owns shapes, buffers and bookkeeping.
//!
//! - [`Tensor`]: an owned, shaped `f32` buffer;
//! - [`Layer`]: forward (train or eval [`Mode`]), backward that accumulates parameter
//!   gradients and returns the input gradient, and a visitor over named [`Param`]s (for
//!   optimizers, saving and freezing);
//! - layers: [`Dense`], [`Activation`], [`Sequential`], [`BatchNorm`], [`Dropout`]; CNN
//!   layers [`Conv2d`], [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`], [`Flatten`];
//!   models: [`lenet5`];
//! - losses: [`SoftmaxCrossEntropy`], [`BceWithLogits`], [`Mse`]; optimizers: [`Adam`],
//!   [`Sgd`], [`RmsProp`], gradient clipping ([`clip_grad_norm`], [`clip_grad_value`]);
//!   learning-rate schedules ([`LrSchedule`]); inits: [`Init`];
//! - [`gradcheck`](gradcheck::gradcheck) for any layer or model;
//! - [`Dataset`]: the bundled CSV data sets; [`Batches`] (seeded, shuffled mini-batches)
//!   and [`train_dev_test_split`];
//! - training: [`fit`] (progress bar, per-epoch log, learning-rate schedule, early
//!   stopping) and [`evaluate`]; [`metrics`] (accuracy, [`ConfusionMatrix`], precision,
//!   recall, F1, [`BiasVariance`]); [`plot_curves`] (learning curves as SVG).
//!
//! Each layer resizes its own output, gradient and workspace buffers in place, and the GEMM
//! keeps its packing buffers per thread, so a training step on a fixed batch shape allocates
//! nothing once warm (`tests/allocation_free_training.rs` counts).

pub mod activation;
pub mod batches;
pub mod batchnorm;
pub mod checkpoint;
pub mod conv2d;
pub mod curves;
pub mod data;
pub mod dense;
pub mod dropout;
pub mod error;
pub mod flatten;
pub mod gradcheck;
pub mod idx;
pub mod init;
pub mod layer;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod pool;
pub mod schedule;
pub mod sequential;
pub mod tensor;
pub mod train;

pub use activation::{Activation, ActivationKind};
pub use batches::{train_dev_test_split, Batches};
pub use batchnorm::BatchNorm;
pub use checkpoint::{load_safetensors, save_safetensors};
pub use conv2d::{Conv2d, Conv2dConfig};
pub use curves::plot_curves;
pub use data::Dataset;
pub use dense::Dense;
pub use dropout::Dropout;
pub use error::{LayerError, Result};
pub use flatten::Flatten;
pub use init::Init;
pub use keel_kernels as kernels;
pub use layer::{Layer, Mode, Param};
pub use loss::{BceWithLogits, Mse, SoftmaxCrossEntropy};
pub use metrics::{accuracy, BiasVariance, ConfusionMatrix};
pub use models::lenet5;
pub use optim::{clip_grad_norm, clip_grad_value, zero_grad, Adam, Optimizer, RmsProp, Sgd};
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d, PoolWindow};
pub use schedule::{ExponentialDecay, InverseTimeDecay, LrSchedule, StepDecay};
pub use sequential::Sequential;
pub use tensor::Tensor;
pub use train::{evaluate, fit, EpochMetrics, FitConfig, History};
