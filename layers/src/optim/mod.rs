//! Optimizers over a model's parameters, each step one fused kernel pass per parameter;
//! gradient clipping over a model; learning-rate schedules.
//!
//! **L2 regularisation** is the optimizers' `weight_decay` (PyTorch's): the course adds
//! `λ/(2m)·Σ‖W‖²` to the cost, whose gradient `λ/m·W` is what `weight_decay = λ/m` adds to
//! every gradient before the update (with [`Sgd`], [`RmsProp`], and [`Adam`] in its L2 form;
//! AdamW's decoupled decay is a different rule). As in PyTorch, the decay applies to every
//! parameter the optimizer updates, biases and batch-norm γ, β included, where the course
//! penalises the weights only.

mod adam;
mod clip;
mod rmsprop;
mod schedule;
mod sgd;
mod state;

pub use adam::Adam;
pub use clip::{clip_grad_norm, clip_grad_value};
pub use keel_kernels::optim::{AdamConfig, RmspropConfig, SgdConfig};
pub use rmsprop::RmsProp;
pub use schedule::{ExponentialDecay, InverseTimeDecay, LrSchedule, StepDecay};
pub use sgd::Sgd;
pub use state::OptimizerState;

use crate::error::{LayerError, Result};
use crate::nn::{Layer, Param};
use crate::tensor::Tensor;

/// An update rule over a model's parameters: what a training loop drives.
///
/// A training step by hand (what [`fit`](crate::fit) runs on every mini-batch), fitting
/// `y = 2x + 1`:
///
/// ```
/// use keel_layers::{zero_grad, Dense, Init, Layer, Loss, Mode, Mse, Optimizer, Sgd, SgdConfig};
/// use keel_layers::{SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut model = Dense::new(1, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.5, ..SgdConfig::default() })?;
/// let mut mse = Mse::new();
/// let x = Tensor::from_vec(&[3, 1], vec![-1.0, 0.0, 1.0])?;
/// let y = Tensor::from_vec(&[3, 1], vec![-1.0, 1.0, 3.0])?;
/// for _ in 0..20 {
///     zero_grad(&mut model);
///     model.forward(&x, Mode::Train)?;
///     mse.forward(model.output(), &y)?;
///     model.backward(&x, mse.backward(&y)?)?;
///     sgd.step(&mut model)?;
/// }
/// assert!((model.weight.value.data()[0] - 2.0).abs() < 1e-3);
/// assert!((model.bias.value.data()[0] - 1.0).abs() < 1e-3);
/// # Ok(())
/// # }
/// ```
pub trait Optimizer {
    /// One update of every trainable parameter from its accumulated gradient.
    fn step(&mut self, model: &mut dyn Layer) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (schedules call this between epochs).
    fn set_learning_rate(&mut self, lr: f64);
    /// A copy of the state: step count, learning rate and per-parameter buffers (for a
    /// checkpoint, [`crate::save_optimizer_state`]).
    fn state(&self) -> OptimizerState;
    /// Takes `state` (from [`Optimizer::state`] of an optimizer of the same kind and
    /// options) as its own: the learning rate, step count and buffers, so the next steps
    /// are those the saving optimizer would have taken.
    ///
    /// Errors ([`LayerError::Config`]) if `state` is another
    /// kind's or does not fit the options (a buffer missing or one too many); on error the
    /// optimizer keeps its state.
    fn load_state(&mut self, state: OptimizerState) -> Result<()>;
}

/// Runs `update` on each trainable parameter of `model` with its optimizer state: `states`
/// follows the visiting order, a parameter's state is made by `init` the first time it is
/// seen, frozen parameters keep theirs untouched, and the first error stops the updates.
///
/// Errors ([`LayerError::Config`] naming the optimizer `kind`), before any update, if
/// `states` were made for another model: a different parameter count, or a buffer whose
/// shape is not its parameter's.
fn update_each_param<S: AsRef<[Tensor]>>(
    kind: &str,
    model: &mut dyn Layer,
    states: &mut Vec<S>,
    init: impl Fn(&Param) -> S,
    mut update: impl FnMut(&mut Param, &mut S) -> Result<()>,
) -> Result<()> {
    if !states.is_empty() {
        check_states_fit(kind, model, states)?;
    }
    let mut index = 0;
    let mut outcome = Ok(());
    model.visit_params(&mut |_, param: &mut Param| {
        if states.len() <= index {
            states.push(init(param));
        }
        let state = &mut states[index];
        index += 1;
        if !param.frozen && outcome.is_ok() {
            outcome = update(param, state);
        }
    });
    outcome
}

/// Errs unless `model` has one parameter per entry of `states`, each of the shape of that
/// entry's buffers (empty buffers, of options that are off, fit any parameter).
fn check_states_fit<S: AsRef<[Tensor]>>(kind: &str, model: &mut dyn Layer, states: &[S]) -> Result<()> {
    let mut count = 0;
    let mut mismatch = None;
    model.visit_params(&mut |name, param: &mut Param| {
        let buffers = states.get(count).map_or(&[][..], |state| state.as_ref());
        let shape = param.value.shape();
        if let (None, Some(buffer)) =
            (&mismatch, buffers.iter().find(|b| !b.is_empty() && b.shape() != shape))
        {
            mismatch = Some((name.to_string(), buffer.shape().to_vec(), shape.to_vec()));
        }
        count += 1;
    });
    let mistake = |expected: String, actual: String| LayerError::Config {
        model: kind.into(),
        expected: format!(
            "the model it has stepped before (an optimizer's state belongs to one model): {expected}"
        ),
        actual,
    };
    if count != states.len() {
        return Err(mistake(format!("{} parameters", states.len()), format!("a model of {count}")));
    }
    match mismatch {
        Some((name, expected, actual)) => {
            Err(mistake(format!("'{name}' of shape {expected:?}"), format!("shape {actual:?}")))
        }
        None => Ok(()),
    }
}

/// Clears every parameter gradient of `model` (before a step's backward pass).
pub fn zero_grad(model: &mut dyn Layer) {
    model.visit_params(&mut |_, param| param.zero_grad());
}
