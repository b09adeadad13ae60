//! # keel-layers
//!
//! Layers, losses and optimizers built on `keel-kernels`: every number is computed by a
//! kernel; this crate owns shapes, buffers and bookkeeping. Semantics, shapes and parameter
//! names follow PyTorch (`nn.Linear`'s `weight (out, in)`, `nn.LSTM`'s `weight_ih_l0`, ...),
//! so weights move both ways as safetensors.
//!
//! ## Where to start
//!
//! - Build a model: layers such as [`Dense`], [`Conv2d`], [`Lstm`] chained in a
//!   [`Sequential`], or a ready-made one from [`models`] ([`lenet5`], [`resnet`], ...).
//! - Train it: a [`Dataset`], a [`Loss`], an [`Optimizer`], then [`fit`] (mini-batches,
//!   dev-set scoring, early stopping, a log) and [`evaluate`]; or drive the steps yourself
//!   as below.
//! - Keep it: [`save_safetensors`] and [`load_safetensors`] (strict, all or nothing).
//!
//! Every layer's `forward` takes `(batch, ...)` and keeps its output; `backward` takes the
//! gradient of that output, **accumulates** the parameter gradients and **overwrites** the
//! input gradient; the optimizer's `step` reads the gradients and updates the parameters.
//!
//! ```
//! use keel_layers::{
//!     zero_grad, Adam, AdamConfig, Dense, Init, Layer, Loss, Mode, Optimizer, SeedableRng,
//!     Sequential, SoftmaxCrossEntropy, StdRng, Tensor,
//! };
//!
//! # fn main() -> keel_layers::Result<()> {
//! // Four points (batch 4, features 2), class 1 where the first feature is positive.
//! let x = Tensor::from_vec(&[4, 2], vec![1.0, 0.5, 2.0, -1.0, -1.0, 0.3, -2.0, -0.5])?;
//! let labels = [1, 1, 0, 0];
//!
//! let mut model = Sequential::new().push(Dense::new(2, 2, Init::Xavier, &mut StdRng::seed_from_u64(0))?);
//! let mut loss = SoftmaxCrossEntropy::new();
//! let mut optimizer = Adam::new(AdamConfig { lr: 0.1, ..AdamConfig::default() })?;
//!
//! let mut first = None;
//! for _ in 0..50 {
//!     model.forward(&x, Mode::Train)?;              // output (4, 2): class scores
//!     let value = loss.forward(model.output(), &labels)?;
//!     first.get_or_insert(value);
//!     zero_grad(&mut model);                        // gradients accumulate: clear them
//!     model.backward(&x, loss.backward(&labels)?)?; // ∂loss/∂output (4, 2) back through the model
//!     optimizer.step(&mut model)?;
//! }
//! model.forward(&x, Mode::Eval)?;
//! let last = loss.forward(model.output(), &labels)?;
//! assert!(last < 0.1 * first.unwrap());
//! # Ok(())
//! # }
//! ```
//!
//! ## Modules
//!
//! The source tree, one folder per concern (each item is also re-exported here at the root):
//!
//! - [`tensor`]: [`Tensor`], an owned, shaped `f32` buffer; [`error`]: [`LayerError`].
//! - [`nn`]: the [`Layer`] trait (forward in train or eval [`Mode`], backward that
//!   accumulates parameter gradients and returns the input gradient, a visitor over named
//!   [`Param`]s for optimizers, saving and freezing) and the layers: [`Dense`],
//!   [`Embedding`], [`Activation`], [`BatchNorm`], [`Dropout`], [`Conv2d`], [`MaxPool2d`],
//!   [`AvgPool2d`], [`GlobalAvgPool2d`], [`Flatten`], the recurrent [`Rnn`], [`Gru`], [`Lstm`]
//!   (configured by [`RecurrentConfig`], [`RnnConfig`]) and their many-to-one heads
//!   [`LastStep`], [`MeanOverTime`], the many-to-many [`FlattenSteps`] (a dense head on every
//!   step) and step-by-step decoding by a [`Sampler`] (greedy or at a temperature) or a
//!   [`BeamSearch`] (returning a [`Hypothesis`]), chained by
//!   [`Sequential`], run side by side on one input by [`Branches`] (merged as a [`Merge`]: sum
//!   or concatenation on channels); weight inits [`Init`];
//!   attention for sequence models: [`ScaledDotProductAttention`] (and
//!   [`scaled_dot_product_attention`]) and [`AdditiveAttention`] (Bahdanau's) under an
//!   [`AttentionMask`], and a decoder's [`GlobalAttention`] layer (Luong's) built on it.
//! - [`loss`]: the [`Loss`] trait (forward, backward, and a tally of the loss's metrics)
//!   and its implementations [`SoftmaxCrossEntropy`], [`BceWithLogits`], [`Mse`].
//! - [`optim`]: the [`Optimizer`] trait, [`Adam`], [`Sgd`], [`RmsProp`]; gradient clipping
//!   ([`clip_grad_norm`], [`clip_grad_value`]); learning-rate schedules ([`LrSchedule`]).
//! - [`data`]: [`Dataset`] (samples labelled by class indices or by rows of values, see
//!   [`Labels`]; CSV files read by a [`CsvReader`] into [`CsvData`] with the column and
//!   class names, MNIST's IDX files in [`data::idx`]), preprocessing fitted on the training
//!   set ([`Scaler`] per feature with a [`ZeroVariance`] policy, [`OneHot`]), [`Batches`]
//!   (seeded, shuffled mini-batches, augmented by an [`Augment`]: flips, crops, rotations,
//!   affine and [`Elastic`] distortion, see [`data::augment`]), [`train_dev_test_split`] and [`stratified_split`]
//!   (indices, [`SplitIndices`]).
//! - [`metrics`]: what losses report ([`Accuracy`]; [`Regression`]: MAE and R²),
//!   [`accuracy`], [`ConfusionMatrix`] (precision, recall, F1), [`BiasVariance`].
//! - [`train`]: [`fit`] (any [`Loss`]; progress bar, per-epoch log, learning-rate schedule,
//!   early stopping) and [`evaluate`] (an [`Evaluation`]: the loss and the loss's metrics),
//!   the [`History`] `fit` returns and its curves
//!   ([`plot_curves`], SVG), heat maps such as attention weights ([`plot_heatmap`], SVG);
//!   [`gradcheck`] for any layer or model; safetensors checkpoints
//!   ([`save_safetensors`], [`load_safetensors`], [`load_safetensors_with`] for a name map,
//!   a prefix or a non-strict load).
//! - [`models`]: ready-made networks, each from a configuration: [`lenet5`], [`alexnet`],
//!   [`vgg`] (VGG-11, VGG-16), [`resnet`] (ResNet-18, -34, small; its [`basic_block`]) and
//!   [`inception`] (GoogLeNet, small; its [`inception_block`]), under torchvision's names.
//! - [`embeddings`]: word vectors: [`Word2Vec`](embeddings::Word2Vec) (skip-gram with
//!   negative sampling), [`Glove`](embeddings::Glove), the [`Vocab`](embeddings::Vocab) and
//!   corpus reading, similarity, nearest neighbours, analogies
//!   ([`WordVectors`](embeddings::WordVectors)) and debiasing.
//!
//! Each layer resizes its own output, gradient and workspace buffers in place, and the GEMM
//! keeps its packing buffers per thread, so a training step on a fixed batch shape allocates
//! nothing once warm (`tests/allocation_free_training.rs` counts).

mod collective;
pub mod data;
pub mod distributed;
pub mod embeddings;
pub mod error;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod optim;
pub mod tensor;
pub mod train;

pub use data::{
    stratified_split, train_dev_test_split, Augment, Augmenter, Batches, Column, CsvData, CsvReader, Dataset,
    Elastic, Labels, OneHot, Scaler, SplitIndices, ZeroVariance, MAX_CLASS_INDEX,
};
pub use error::{LayerError, Result};
pub use keel_kernels as kernels;
pub use loss::{BceWithLogits, Loss, LossMetrics, Mse, SoftmaxCrossEntropy};
pub use metrics::{
    accuracy, Accuracy, AccuracyTally, BiasVariance, ClassScores, ConfusionMatrix, Focus, Metrics,
    Regression, RegressionTally, Tally,
};
pub use models::{
    alexnet, basic_block, inception, inception_block, lenet5, lenet5_bn, resnet, vgg, AlexNetConfig,
    InceptionConfig, InceptionStem, InceptionWidths, ResNetConfig, ResNetStem, VggConfig,
};
pub use nn::{
    freeze, param_counts, scaled_dot_product_attention, unfreeze, Activation, ActivationKind,
    AdditiveAttention, AttentionMask, AvgPool2d, BatchNorm, BeamSearch, Branches, Conv2d, Conv2dConfig,
    Decoding, Dense, Dropout, Embedding, Flatten, FlattenSteps, GlobalAttention, GlobalAvgPool2d, Gru,
    GruConfig, Hypothesis, Init, LastStep, Layer, Lstm, LstmConfig, MaxPool2d, MeanOverTime, Merge, Mode,
    Nonlinearity, Param, ParamCounts, PoolWindow, RecurrentConfig, Rnn, RnnConfig, Sampler,
    ScaledDotProductAttention, Sequential,
};
pub use optim::{
    clip_grad_norm, clip_grad_value, zero_grad, Adam, AdamConfig, ExponentialDecay, InverseTimeDecay,
    LrSchedule, Optimizer, OptimizerState, RmsProp, RmspropConfig, Sgd, SgdConfig, StepDecay,
};
/// The random number generator every layer constructor and init takes (`rand` 0.10's), with
/// the trait that seeds it: `StdRng::seed_from_u64(0)` needs no `rand` dependency of the
/// caller's own, whatever `rand` version it uses.
pub use rand::{rngs::StdRng, SeedableRng};
pub use tensor::Tensor;
pub use train::{
    evaluate, fit, fit_with, gradcheck, gradcheck_params, load_optimizer_state, load_safetensors,
    load_safetensors_with, plot_curves, plot_heatmap, plot_series, predict, predict_classes, predict_proba,
    relative_error, save_optimizer_state, save_safetensors, Callback, Control, EpochLog, EpochMetrics,
    Evaluation, FitConfig, GradcheckReport, History, LoadOptions, LoadReport, LogTarget, Progress, StepEnd,
};
