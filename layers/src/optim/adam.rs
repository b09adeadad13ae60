//! Adam and AdamW.

use keel_kernels::optim::{adam_update, AdamConfig};

use super::state::{export_slots, import_slots, Presence};
use super::{update_each_param, Optimizer, OptimizerState};
use crate::error::{LayerError, Result};
use crate::nn::{Layer, Param};
use crate::tensor::Tensor;

/// Adam / AdamW (`torch.optim.Adam`, `torch.optim.AdamW` semantics; see [`AdamConfig`]).
/// Its state (first and second moments) follows the model's parameter order; frozen
/// parameters are skipped.
///
/// ```
/// use keel_layers::{Adam, AdamConfig, Dense, Init, Optimizer, SeedableRng, StdRng};
/// # fn main() -> keel_layers::Result<()> {
/// let mut dense = Dense::new(2, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// dense.weight.grad.data_mut().copy_from_slice(&[0.5, -200.0]);
/// let mut adam = Adam::new(AdamConfig { lr: 0.01, ..AdamConfig::default() })?;
/// adam.step(&mut dense)?;
/// // Adam's first step is lr·sign(g), whatever the gradient's size.
/// let w = dense.weight.value.data();
/// assert!((w[0] + 0.01).abs() < 1e-6 && (w[1] - 0.01).abs() < 1e-6);
/// // AdamW: decoupled weight decay.
/// let adamw = Adam::new(AdamConfig::adamw())?;
/// assert_eq!(adamw.learning_rate(), 1e-3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Adam {
    /// Hyper-parameters; `lr` may be changed between steps (learning-rate schedules).
    pub config: AdamConfig,
    step: u64,
    moments: Vec<[Tensor; 3]>,
}

impl Adam {
    /// An optimizer with no state yet (created on the first step); errors
    /// ([`LayerError::Argument`] naming the field) if a hyper-parameter is out of its domain,
    /// as each step does, since `config` may change between steps.
    pub fn new(config: AdamConfig) -> Result<Self> {
        config.check().map_err(|e| LayerError::argument(KIND, e))?;
        Ok(Adam { config, step: 0, moments: Vec::new() })
    }
}

impl Optimizer for Adam {
    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn step(&mut self, model: &mut dyn Layer) -> Result<()> {
        self.config.check().map_err(|e| LayerError::argument(KIND, e))?;
        let (config, step) = (&self.config, self.step + 1);
        let init = |param: &Param| {
            let zeros = Tensor::zeros(param.value.shape());
            let amsgrad = if config.amsgrad { zeros.clone() } else { Tensor::default() };
            [zeros.clone(), zeros, amsgrad]
        };
        update_each_param(KIND, model, &mut self.moments, init, |param, [m, v, v_max]| {
            let grad = param.grad.data();
            Ok(adam_update(
                config,
                step,
                param.value.data_mut(),
                grad,
                m.data_mut(),
                v.data_mut(),
                v_max.data_mut(),
            )?)
        })?;
        // Counted once the update is done: a refused step leaves the count.
        self.step = step;
        Ok(())
    }

    fn state(&self) -> OptimizerState {
        OptimizerState {
            kind: KIND.into(),
            step: self.step,
            learning_rate: self.config.lr,
            params: export_slots(&SLOTS, &self.moments),
        }
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        let amsgrad = if self.config.amsgrad { Presence::Always } else { Presence::Never };
        let (step, learning_rate) = (state.step, state.learning_rate);
        self.moments = import_slots(KIND, &SLOTS, [Presence::Always, Presence::Always, amsgrad], state)?;
        self.step = step;
        self.config.lr = learning_rate;
        Ok(())
    }
}

const KIND: &str = "adam";
/// The names of a parameter's state tensors, PyTorch's.
const SLOTS: [&str; 3] = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
