//! Optimizers over a model's parameters, each step one fused kernel pass per parameter.

use keel_kernels::optim::{adam_update, sgd_update, AdamConfig, SgdConfig};

use crate::error::Result;
use crate::layer::{Layer, Param};
use crate::tensor::Tensor;

/// An update rule over a model's parameters: what a training loop drives.
pub trait Optimizer {
    /// One update of every trainable parameter from its accumulated gradient.
    fn step(&mut self, model: &mut dyn Layer) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (schedules call this between epochs).
    fn set_learning_rate(&mut self, lr: f64);
}

/// Clears every parameter gradient of `model` (before a step's backward pass).
pub fn zero_grad(model: &mut dyn Layer) {
    model.visit_params(&mut |_, param| param.zero_grad());
}

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
        let (config, step, moments) = (&self.config, self.step, &mut self.moments);
        let mut index = 0;
        let mut outcome = Ok(());
        model.visit_params(&mut |_, param: &mut Param| {
            if moments.len() <= index {
                let zeros = Tensor::zeros(param.value.shape());
                let amsgrad = if config.amsgrad { zeros.clone() } else { Tensor::default() };
                moments.push([zeros.clone(), zeros, amsgrad]);
            }
            let [m, v, v_max] = &mut moments[index];
            index += 1;
            if param.frozen || outcome.is_err() {
                return;
            }
            let grad = param.grad.data();
            outcome = adam_update(
                config,
                step,
                param.value.data_mut(),
                grad,
                m.data_mut(),
                v.data_mut(),
                v_max.data_mut(),
            );
        });
        Ok(outcome?)
    }
}

/// SGD with momentum, dampening and Nesterov (`torch.optim.SGD` semantics; see
/// [`SgdConfig`]); frozen parameters are skipped.
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Hyper-parameters; `lr` may be changed between steps.
    pub config: SgdConfig,
    step: u64,
    velocity: Vec<Tensor>,
}

impl Sgd {
    /// An optimizer with no state yet.
    pub fn new(config: SgdConfig) -> Self {
        Sgd { config, step: 0, velocity: Vec::new() }
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
        self.config.check()?;
        self.step += 1;
        let (config, step, velocity) = (&self.config, self.step, &mut self.velocity);
        let mut index = 0;
        let mut outcome = Ok(());
        model.visit_params(&mut |_, param: &mut Param| {
            if velocity.len() <= index {
                velocity.push(Tensor::zeros(param.value.shape()));
            }
            let buffer = &mut velocity[index];
            index += 1;
            if param.frozen || outcome.is_err() {
                return;
            }
            outcome = sgd_update(config, step, param.value.data_mut(), param.grad.data(), buffer.data_mut());
        });
        Ok(outcome?)
    }
}
