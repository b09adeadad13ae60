//! Stochastic gradient descent with momentum.

use keel_kernels::optim::{sgd_update, SgdConfig};

use super::state::{export_slots, import_slots, Presence};
use super::{update_each_param, Optimizer, OptimizerState};
use crate::error::{LayerError, Result};
use crate::nn::{Layer, Param};
use crate::tensor::Tensor;

/// SGD with momentum, dampening and Nesterov (`torch.optim.SGD` semantics; see
/// [`SgdConfig`]); frozen parameters are skipped.
///
/// ```
/// use keel_layers::{Dense, Init, Optimizer, SeedableRng, Sgd, SgdConfig, StdRng};
/// # fn main() -> keel_layers::Result<()> {
/// let mut dense = Dense::new(2, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// dense.weight.grad.data_mut().copy_from_slice(&[1.0, -2.0]);
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() })?;
/// sgd.step(&mut dense)?; // the first step has no momentum yet: w - lr·g
/// assert_eq!(dense.weight.value.data(), &[-0.1, 0.2]);
/// assert!(Sgd::new(SgdConfig { lr: -1.0, ..SgdConfig::default() }).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Hyper-parameters; `lr` may be changed between steps.
    pub config: SgdConfig,
    step: u64,
    /// Per parameter: the momentum buffer.
    velocity: Vec<[Tensor; 1]>,
}

impl Sgd {
    /// An optimizer with no state yet (created on the first step); errors
    /// ([`LayerError::Argument`] naming the field) if a hyper-parameter is out of its domain,
    /// as each step does, since `config` may change between steps.
    pub fn new(config: SgdConfig) -> Result<Self> {
        config.check().map_err(|e| LayerError::argument(KIND, e))?;
        Ok(Sgd { config, step: 0, velocity: Vec::new() })
    }
}

impl Optimizer for Sgd {
    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn step(&mut self, model: &mut dyn Layer) -> Result<()> {
        self.config.check().map_err(|e| LayerError::argument(KIND, e))?;
        let (config, step) = (&self.config, self.step + 1);
        let init = |param: &Param| [Tensor::zeros(param.value.shape())];
        update_each_param(KIND, model, &mut self.velocity, init, |param, [buffer]| {
            Ok(sgd_update(config, step, param.value.data_mut(), param.grad.data(), buffer.data_mut())?)
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
            params: export_slots(&SLOTS, &self.velocity),
        }
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        let (step, learning_rate) = (state.step, state.learning_rate);
        self.velocity = import_slots(KIND, &SLOTS, [Presence::Always], state)?;
        self.step = step;
        self.config.lr = learning_rate;
        Ok(())
    }
}

const KIND: &str = "sgd";
/// The names of a parameter's state tensors, PyTorch's.
const SLOTS: [&str; 1] = ["momentum_buffer"];
