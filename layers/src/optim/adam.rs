//! Adam and AdamW.

use keel_kernels::optim::{adam_update, AdamConfig};

use super::{update_each_param, Optimizer};
use crate::error::Result;
use crate::nn::{Layer, Param};
use crate::tensor::Tensor;

/// Adam / AdamW (`torch.optim.Adam`, `torch.optim.AdamW` semantics; see [`AdamConfig`]).
/// Its state (first and second moments) follows the model's parameter order; frozen
/// parameters are skipped.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Hyper-parameters; `lr` may be changed between steps (learning-rate schedules).
    pub config: AdamConfig,
    step: u64,
    moments: Vec<[Tensor; 3]>,
}

impl Adam {
    /// An optimizer with no state yet (created on the first step).
    pub fn new(config: AdamConfig) -> Self {
        Adam { config, step: 0, moments: Vec::new() }
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
        self.config.check()?;
        self.step += 1;
        let (config, step) = (&self.config, self.step);
        let init = |param: &Param| {
            let zeros = Tensor::zeros(param.value.shape());
            let amsgrad = if config.amsgrad { zeros.clone() } else { Tensor::default() };
            [zeros.clone(), zeros, amsgrad]
        };
        update_each_param(model, &mut self.moments, init, |param, [m, v, v_max]| {
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
        })
    }
}
