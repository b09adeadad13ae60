//! The error type of the layer crate.

use keel_kernels::KernelError;
use thiserror::Error;

/// What went wrong in a layer, a loss, an optimizer or training.
///
/// ```
/// use keel_layers::{Dense, Init, Layer, LayerError, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut dense = Dense::new(3, 2, Init::He, &mut StdRng::seed_from_u64(0))?;
/// match dense.forward(&Tensor::zeros(&[1, 4]), Mode::Eval) {
///     Err(LayerError::Shape { layer, actual, .. }) => {
///         assert_eq!((layer.as_str(), actual), ("dense(3 -> 2)", vec![1, 4]));
///     }
///     other => panic!("expected a shape error, got {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LayerError {
    /// An input or gradient of the wrong shape reached a layer.
    #[error("{layer}: expected input of shape {expected}, got {actual:?}")]
    Shape {
        /// The layer's name, e.g. `"dense(784 -> 128)"`.
        layer: String,
        /// The shape it accepts, e.g. `"(batch, 784)"`.
        expected: String,
        /// The shape that came.
        actual: Vec<usize>,
    },
    /// An index input (a token id of an embedding) that is not a row of the table: out of
    /// range, or, coded in an `f32` tensor, not a whole number.
    #[error("{layer}: index {value} at position {position} is not valid: expected {expected}")]
    Index {
        /// The layer's name, e.g. `"embedding(1000, 64)"`.
        layer: String,
        /// The flat position of the index in the input.
        position: usize,
        /// The value that came, as written (`12`, `2.5`, `NaN`).
        value: String,
        /// What it must be, e.g. `"a whole number in 0..1000"`.
        expected: String,
    },
    /// A tensor was built from data whose length does not match its shape.
    #[error("tensor of shape {shape:?} needs {expected} values, got {actual}")]
    TensorLength {
        /// The requested shape.
        shape: Vec<usize>,
        /// The product of the shape.
        expected: usize,
        /// The number of values given.
        actual: usize,
    },
    /// A hyper-parameter out of its domain (a dropout probability of 1.5, a learning rate of
    /// NaN, a layer of 0 features), rejected when the layer or optimizer is built.
    #[error("{owner}: {what}: expected {expected}, got {actual}")]
    Argument {
        /// The layer or optimizer, e.g. `"dropout"`, `"adam"`.
        owner: String,
        /// The argument, e.g. `"p"`.
        what: String,
        /// Its domain, e.g. `"0 <= p < 1"`.
        expected: String,
        /// The value passed.
        actual: String,
    },
    /// A kernel rejected its arguments (a bug in a layer if it ever shows, since layers
    /// check shapes and hyper-parameters first).
    #[error("kernel: {0}")]
    Kernel(#[from] KernelError),
    /// A data file that cannot be read or parsed; the message names the file and line.
    #[error("data: {0}")]
    Data(String),
    /// Training produced a NaN or infinite loss (a learning rate too high, exploding
    /// gradients); epochs and steps count from 1.
    #[error("non-finite loss {loss} at epoch {epoch}, step {step}")]
    NonFiniteLoss {
        /// The epoch, from 1.
        epoch: usize,
        /// The mini-batch step within the epoch, from 1.
        step: usize,
        /// The loss value (NaN or ±inf).
        loss: f32,
    },
    /// A checkpoint file that cannot be written, read, or matched to the model: the detail
    /// names the tensor (missing, unexpected, wrong shape or type) or the I/O failure.
    #[error("checkpoint {path}: {detail}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// A model or container built with a configuration it cannot take: a child name already
    /// taken, widths and depths of different lengths, an input too small for the layers.
    #[error("{model}: expected {expected}, got {actual}")]
    Config {
        /// The model or container, e.g. `"resnet"`.
        model: String,
        /// What the configuration must satisfy.
        expected: String,
        /// What came.
        actual: String,
    },
    /// An error about one sample of a data set in [`fit`](crate::fit) or
    /// [`evaluate`](crate::evaluate) (a label that is not a class of the model's output):
    /// the sample's index in the data set, not its row in a shuffled batch, and the epoch.
    #[error("{set} sample {sample}{}: {error}", .epoch.map_or(String::new(), |e| format!(" (epoch {e})")))]
    InSample {
        /// `"training"`, `"dev"` or `"evaluation"`.
        set: &'static str,
        /// The sample's index in its data set.
        sample: usize,
        /// The epoch, from 1, during training.
        epoch: Option<usize>,
        /// What went wrong with it.
        error: Box<LayerError>,
    },
    /// A call out of order, e.g. `backward` before `forward`.
    #[error("{0}")]
    State(String),
}

impl LayerError {
    /// The [`LayerError::Argument`] of `owner` for a kernel's check of a hyper-parameter
    /// (an optimizer's configuration, a convolution's sizes).
    pub(crate) fn argument(owner: &str, error: KernelError) -> LayerError {
        let (what, expected, actual) = match error {
            KernelError::Argument { what, expected, actual }
            | KernelError::Shape { what, expected, actual } => (what, expected, actual),
            KernelError::Length { what, expected, actual } => {
                (what, format!("length {expected}"), format!("length {actual}"))
            }
        };
        LayerError::Argument { owner: owner.into(), what, expected, actual }
    }
}

/// Result of a layer-crate call.
pub type Result<T> = core::result::Result<T, LayerError>;
