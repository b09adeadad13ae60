//! An optimizer's state as plain data, for checkpoints: what [`Optimizer::state`] gives and
//! [`Optimizer::load_state`] takes back, so that training resumes with the same bits.
//!
//! [`Optimizer::state`]: super::Optimizer::state
//! [`Optimizer::load_state`]: super::Optimizer::load_state

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The state of an optimizer: its kind, step count and learning rate, and per parameter (in
/// the model's visiting order) its state tensors under PyTorch's names (`"momentum_buffer"`,
/// `"square_avg"`, `"grad_avg"`, `"exp_avg"`, `"exp_avg_sq"`, `"max_exp_avg_sq"`), each of the
/// parameter's shape. `params` is empty before the first step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptimizerState {
    /// `"sgd"`, `"rmsprop"` or `"adam"`.
    pub kind: String,
    /// Updates taken so far (Adam's bias correction and SGD's first step depend on it).
    pub step: u64,
    /// The learning rate in use.
    pub learning_rate: f64,
    /// Per parameter, its named state tensors; a buffer not created yet is absent.
    pub params: Vec<Vec<(String, Tensor)>>,
}

/// The named state of each parameter: `slots[i]` names the `i`-th tensor of a parameter's
/// state array; empty tensors (buffers not created yet) are left out.
pub(super) fn export_slots<const N: usize>(
    slots: &[&str; N],
    states: &[[Tensor; N]],
) -> Vec<Vec<(String, Tensor)>> {
    states
        .iter()
        .map(|tensors| {
            slots
                .iter()
                .zip(tensors)
                .filter(|(_, tensor)| !tensor.is_empty())
                .map(|(slot, tensor)| (slot.to_string(), tensor.clone()))
                .collect()
        })
        .collect()
}

/// Whether an optimizer with its current options has a state tensor for every parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Presence {
    /// Made with the parameter's state (Adam's moments).
    Always,
    /// Made the first time an option is on, kept after (RMSprop's momentum buffer).
    Optional,
    /// Never made with these options (Adam's `max_exp_avg_sq` without AMSGrad).
    Never,
}

/// The state arrays back from `state`, checked against an optimizer of kind `kind` whose
/// parameters hold the tensors named in `slots` as `presence` says. Errors
/// ([`LayerError::Config`]) on another kind, a name not in `slots`, a name twice, a tensor
/// missing or present against `presence`, or tensors of one parameter with different shapes.
pub(super) fn import_slots<const N: usize>(
    kind: &str,
    slots: &[&str; N],
    presence: [Presence; N],
    state: OptimizerState,
) -> Result<Vec<[Tensor; N]>> {
    let mismatch =
        |expected: String, actual: String| LayerError::Config { model: kind.to_owned(), expected, actual };
    if state.kind != kind {
        return Err(mismatch(
            format!("the state of an optimizer of kind {kind:?}"),
            format!("{:?}", state.kind),
        ));
    }
    state
        .params
        .into_iter()
        .enumerate()
        .map(|(index, named)| {
            let mut tensors: [Tensor; N] = std::array::from_fn(|_| Tensor::default());
            for (name, tensor) in named {
                let Some(slot) = slots.iter().position(|&slot| slot == name) else {
                    return Err(mismatch(
                        format!("state tensors named {slots:?}"),
                        format!("{name:?} for parameter {index}"),
                    ));
                };
                if !tensors[slot].is_empty() {
                    return Err(mismatch(
                        "each state tensor once".into(),
                        format!("{name:?} twice for parameter {index}"),
                    ));
                }
                tensors[slot] = tensor;
            }
            for (slot, tensor) in tensors.iter().enumerate() {
                let name = slots[slot];
                match presence[slot] {
                    Presence::Always if tensor.is_empty() => {
                        return Err(mismatch(
                            format!("a {name:?} tensor for every parameter"),
                            format!("none for parameter {index}"),
                        ));
                    }
                    Presence::Never if !tensor.is_empty() => {
                        return Err(mismatch(
                            format!("no {name:?} tensor with this optimizer's options"),
                            format!("one for parameter {index}"),
                        ));
                    }
                    _ => {}
                }
            }
            let shape =
                tensors.iter().find(|t| !t.is_empty()).map(|t| t.shape().to_vec()).unwrap_or_default();
            if let Some(other) = tensors.iter().find(|t| !t.is_empty() && t.shape() != shape) {
                return Err(mismatch(
                    format!("state tensors of one shape {shape:?} for parameter {index}"),
                    format!("{:?}", other.shape()),
                ));
            }
            Ok(tensors)
        })
        .collect()
}
