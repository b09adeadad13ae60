//! RMSprop.

use keel_kernels::optim::{rmsprop_update, RmspropConfig};

use super::state::{export_slots, import_slots, Presence};
use super::{update_each_param, Optimizer, OptimizerState};
use crate::error::{LayerError, Result};
use crate::nn::{Layer, Param};
use crate::tensor::Tensor;

/// RMSprop (`torch.optim.RMSprop` semantics, with optional momentum and centring; see
/// [`RmspropConfig`]). Its state (squared-gradient average, and the momentum buffer and
/// gradient average when enabled) follows the model's parameter order; frozen parameters
/// are skipped.
///
/// ```
/// use keel_layers::{Dense, Init, Optimizer, RmsProp, RmspropConfig, SeedableRng, StdRng};
/// # fn main() -> keel_layers::Result<()> {
/// let mut dense = Dense::new(2, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// dense.weight.grad.data_mut().copy_from_slice(&[0.5, -200.0]);
/// let mut rmsprop = RmsProp::new(RmspropConfig { lr: 0.01, ..RmspropConfig::default() })?;
/// rmsprop.step(&mut dense)?;
/// // First step: v = (1 - α)·g² with α = 0.99, so the move lr·g/√v is 10·lr·sign(g).
/// let w = dense.weight.value.data();
/// assert!((w[0] + 0.1).abs() < 1e-5 && (w[1] - 0.1).abs() < 1e-5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RmsProp {
    /// Hyper-parameters; `lr` may be changed between steps.
    pub config: RmspropConfig,
    step: u64,
    /// Per parameter: `square_avg`, `momentum_buf` (empty until momentum is used),
    /// `grad_avg` (empty until centring is used).
    state: Vec<[Tensor; 3]>,
}

impl RmsProp {
    /// An optimizer with no state yet (created on the first step); errors
    /// ([`LayerError::Argument`] naming the field) if a hyper-parameter is out of its domain,
    /// as each step does, since `config` may change between steps.
    pub fn new(config: RmspropConfig) -> Result<Self> {
        config.check().map_err(|e| LayerError::argument(KIND, e))?;
        Ok(RmsProp { config, step: 0, state: Vec::new() })
    }
}

impl Optimizer for RmsProp {
    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn step(&mut self, model: &mut dyn Layer) -> Result<()> {
        self.config.check().map_err(|e| LayerError::argument(KIND, e))?;
        let config = &self.config;
        let init = |param: &Param| [Tensor::zeros(param.value.shape()), Tensor::default(), Tensor::default()];
        update_each_param(
            KIND,
            model,
            &mut self.state,
            init,
            |param, [square_avg, momentum_buf, grad_avg]| {
                // Buffers start at zero the first time their option is on (PyTorch creates them
                // with the parameter's state).
                if config.momentum > 0.0 && momentum_buf.is_empty() {
                    *momentum_buf = Tensor::zeros(param.value.shape());
                }
                if config.centered && grad_avg.is_empty() {
                    *grad_avg = Tensor::zeros(param.value.shape());
                }
                Ok(rmsprop_update(
                    config,
                    param.value.data_mut(),
                    param.grad.data(),
                    square_avg.data_mut(),
                    momentum_buf.data_mut(),
                    grad_avg.data_mut(),
                )?)
            },
        )?;
        // Counted once the update is done: a refused step leaves the count.
        self.step += 1;
        Ok(())
    }

    fn state(&self) -> OptimizerState {
        OptimizerState {
            kind: KIND.into(),
            step: self.step,
            learning_rate: self.config.lr,
            params: export_slots(&SLOTS, &self.state),
        }
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        let when_on = |on| if on { Presence::Always } else { Presence::Optional };
        let presence = [Presence::Always, when_on(self.config.momentum > 0.0), when_on(self.config.centered)];
        let (step, learning_rate) = (state.step, state.learning_rate);
        self.state = import_slots(KIND, &SLOTS, presence, state)?;
        self.step = step;
        self.config.lr = learning_rate;
        Ok(())
    }
}

const KIND: &str = "rmsprop";
/// The names of a parameter's state tensors, PyTorch's.
const SLOTS: [&str; 3] = ["square_avg", "momentum_buffer", "grad_avg"];
