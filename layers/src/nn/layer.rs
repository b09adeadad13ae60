//! The `Layer` trait, trainable parameters and the train/eval mode.

use std::sync::Arc;

use crate::collective::Collective;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Whether a forward pass trains (dropout active, batch statistics) or evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: dropout drops, batch norm uses and updates batch statistics.
    Train,
    /// Evaluation: dropout is the identity, batch norm uses running statistics.
    Eval,
}

/// A trainable tensor and its gradient (same shape). The gradient is accumulated by
/// `backward` and cleared by [`Param::zero_grad`]; a frozen parameter is skipped by the
/// optimizers (transfer learning).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The values.
    pub value: Tensor,
    /// `∂loss/∂value`, accumulated.
    pub grad: Tensor,
    /// When true, optimizers leave the value unchanged.
    pub frozen: bool,
}

impl Param {
    /// A parameter with the given values and a zero gradient.
    pub fn new(value: Tensor) -> Self {
        let grad = Tensor::zeros(value.shape());
        Param { value, grad, frozen: false }
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&mut self) {
        self.grad.data_mut().fill(0.0);
    }
}

/// A network layer: a pair of passes, forward and backward, over tensors it owns.
///
/// - `forward` reads `input` and writes the layer's output into its own buffer, read back
///   with [`Layer::output`];
/// - `backward` gets the same `input` again and `∂loss/∂output`, **accumulates** the
///   parameter gradients and **overwrites** its `∂loss/∂input` buffer, read back with
///   [`Layer::grad_input`];
/// - buffers are reused across calls, so steady-state steps allocate nothing;
/// - layers are `Send`, so a model can move to (or be driven from) another thread, such as
///   inside a rayon pool's `install`.
///
/// Driving a layer by hand (what [`fit`](crate::fit) does each step): parameter gradients
/// add up over backward calls until cleared, the input gradient is overwritten.
///
/// ```
/// use keel_layers::{Dense, Init, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut layer = Dense::new(2, 1, Init::He, &mut StdRng::seed_from_u64(0))?;
/// let x = Tensor::from_vec(&[1, 2], vec![3.0, 4.0])?;
/// let dy = Tensor::from_vec(&[1, 1], vec![1.0])?;
/// layer.forward(&x, Mode::Train)?;
/// assert_eq!(layer.output().shape(), &[1, 1]);
/// layer.backward(&x, &dy)?;
/// layer.backward(&x, &dy)?;
/// assert_eq!(layer.weight.grad.data(), &[6.0, 8.0]); // twice ∂y/∂W = x
/// assert_eq!(layer.grad_input().shape(), &[1, 2]);
/// let mut names = Vec::new();
/// layer.visit_params(&mut |name, param| {
///     names.push(name.to_string());
///     param.zero_grad();
/// });
/// assert_eq!(names, ["weight", "bias"]);
/// assert_eq!(layer.weight.grad.data(), &[0.0, 0.0]);
/// # Ok(())
/// # }
/// ```
pub trait Layer: Send {
    /// A short description with the shapes, used in error messages, e.g. `dense(784 -> 10)`.
    fn name(&self) -> String;

    /// Runs the layer on `input`; the result is then [`Layer::output`].
    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()>;

    /// Back-propagates `grad_output` (shape of the output) for the `input` of the last
    /// forward; the result is then [`Layer::grad_input`].
    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()>;

    /// The output of the last forward.
    fn output(&self) -> &Tensor;

    /// `∂loss/∂input` from the last backward (empty while the input gradient is off, see
    /// [`Layer::set_input_grad`]).
    fn grad_input(&self) -> &Tensor;

    /// Whether `backward` must produce `∂loss/∂input`: on by default. A model's first layer
    /// reads data whose gradient nobody uses; turning it off there skips the costliest part of
    /// its backward (for a first `Dense` or `Conv2d`, a whole matrix product), as PyTorch
    /// skips inputs that do not require a gradient. `fit` turns it off for the model it
    /// trains. Layers whose input gradient is cheap keep the default, which ignores the
    /// request and computes it anyway.
    fn set_input_grad(&mut self, _needed: bool) {}

    /// The position, in the global batch, of the next forward's first row: data-parallel
    /// training gives each rank a part of every batch ([`fit`](crate::fit) sets it), and a
    /// layer whose draws depend on the row (dropout) then draws what the whole batch in one
    /// process would, so the ranks draw different masks and together those of one process.
    /// Containers pass it on; the default ignores it (as the recurrent layers do: their
    /// rows are not the batch's first dimension).
    fn set_batch_offset(&mut self, _rows: usize) {}

    /// Makes every batch norm inside take its training statistics over the batches of all
    /// ranks of `group` ([`BatchNorm::synchronized`](crate::BatchNorm::synchronized);
    /// PyTorch's `SyncBatchNorm.convert_sync_batchnorm`). Containers pass it on; the default
    /// ignores it.
    fn synchronize_batch_norm(&mut self, _group: &Arc<dyn Collective>) {}

    /// Calls `visit` with each parameter and its stable name (`"weight"`, `"bias"`, or
    /// `"3.weight"` inside a container), in a fixed order. Layers without parameters keep
    /// the default, which visits nothing.
    fn visit_params(&mut self, _visit: &mut dyn FnMut(&str, &mut Param)) {}

    /// Calls `visit` with each buffer: state that is saved with the model but not trained
    /// (batch norm's `"running_mean"`, `"running_var"`), named like the parameters. Layers
    /// without buffers keep the default, which visits nothing.
    fn visit_buffers(&mut self, _visit: &mut dyn FnMut(&str, &mut Tensor)) {}
}

/// The `State` error every layer gives for a `backward` before its first `forward`.
pub(crate) fn backward_before_forward(layer: &str) -> LayerError {
    LayerError::State(format!("{layer}: backward before forward"))
}

/// Checks the tensors a shape-preserving layer's `backward` gets against the shape of its last
/// forward's output: `grad_output`, then `input` when given; the error names the one that
/// differs (the layer's name is built only on error).
pub(crate) fn check_backward_shapes(
    layer: impl Fn() -> String,
    forward_shape: &[usize],
    grad_output: &Tensor,
    input: Option<&Tensor>,
) -> Result<()> {
    for (what, tensor) in std::iter::once(("gradient", grad_output)).chain(input.map(|t| ("input", t))) {
        if tensor.shape() != forward_shape {
            return Err(LayerError::Shape {
                layer: format!("{} ({what})", layer()),
                expected: format!("{forward_shape:?}, the shape of the last forward"),
                actual: tensor.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// Errs with [`backward_before_forward`] while `output`, the buffer a layer's forward writes,
/// is still [`Tensor::EMPTY`] (no forward has run: every output has at least one dimension).
pub(crate) fn ensure_forward_ran(output: &Tensor, layer: impl FnOnce() -> String) -> Result<()> {
    if output.shape().is_empty() {
        Err(backward_before_forward(&layer()))
    } else {
        Ok(())
    }
}
