//! # keel-layers
//!
//! Layers, losses and optimizers built on `keel-kernels`: every number is computed by a
//! kernel; this crate owns shapes, buffers and bookkeeping.
//!
//! - [`Tensor`]: an owned, shaped `f32` buffer;
//! - [`Layer`]: forward (train or eval [`Mode`]), backward that accumulates parameter
//!   gradients and returns the input gradient, and a visitor over named [`Param`]s (for
//!   optimizers, saving and freezing);
//! - layers: [`Dense`], [`Activation`], [`Sequential`], [`BatchNorm`], [`Dropout`];
//! - losses: [`SoftmaxCrossEntropy`], [`BceWithLogits`], [`Mse`]; optimizers: [`Adam`],
//!   [`Sgd`], [`RmsProp`], gradient clipping ([`clip_grad_norm`], [`clip_grad_value`]);
//!   learning-rate schedules ([`LrSchedule`]); inits: [`Init`];
//! - [`gradcheck`](gradcheck::gradcheck) for any layer or model;
//! - [`Dataset`]: the bundled CSV data sets.
//!
//! A training step on a fixed batch shape allocates nothing: each layer resizes its own
//! output and gradient buffers in place.

pub mod activation;
pub mod batchnorm;
pub mod data;
pub mod dense;
pub mod dropout;
pub mod error;
pub mod gradcheck;
pub mod init;
pub mod layer;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod sequential;
pub mod tensor;

pub use activation::{Activation, ActivationKind};
pub use batchnorm::BatchNorm;
pub use data::Dataset;
pub use dense::Dense;
pub use dropout::Dropout;
pub use error::{LayerError, Result};
pub use init::Init;
pub use keel_kernels as kernels;
pub use layer::{Layer, Mode, Param};
pub use loss::{BceWithLogits, Mse, SoftmaxCrossEntropy};
pub use optim::{clip_grad_norm, clip_grad_value, zero_grad, Adam, Optimizer, RmsProp, Sgd};
pub use schedule::{ExponentialDecay, InverseTimeDecay, LrSchedule, StepDecay};
pub use sequential::Sequential;
pub use tensor::Tensor;
