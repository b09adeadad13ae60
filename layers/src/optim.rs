//! Optimizers over a model's parameters, each step one fused kernel pass per parameter, and
//! gradient clipping over a model.
//!
//! **L2 regularisation** is the optimizers' `weight_decay` (PyTorch's): the course adds
//! `λ/(2m)·Σ‖W‖²` to the cost, whose gradient `λ/m·W` is what `weight_decay = λ/m` adds to
//! every gradient before the update (with [`Sgd`], [`RmsProp`], and [`Adam`] in its L2 form;
//! AdamW's decoupled decay is a different rule). As in PyTorch, the decay applies to every
//! parameter the optimizer updates, biases and batch-norm γ, β included, where the course
//! penalises the weights only.

use keel_kernels::optim::{
    adam_update, clip_grad_norm as clip_norm_kernel, clip_grad_value as clip_value_kernel, grad_scale,
    rmsprop_update, sgd_update, AdamConfig, RmspropConfig, SgdConfig,
};
use keel_kernels::KernelError;

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

/// Runs `update` on each trainable parameter of `model` with its optimizer state: `states`
/// follows the visiting order, a parameter's state is made by `init` the first time it is
/// seen, frozen parameters keep theirs untouched, and the first error stops the updates.
fn update_each_param<S>(
    model: &mut dyn Layer,
    states: &mut Vec<S>,
    init: impl Fn(&Param) -> S,
    mut update: impl FnMut(&mut Param, &mut S) -> Result<()>,
) -> Result<()> {
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
        let (config, step) = (&self.config, self.step);
        let init = |param: &Param| Tensor::zeros(param.value.shape());
        update_each_param(model, &mut self.velocity, init, |param, buffer| {
            Ok(sgd_update(config, step, param.value.data_mut(), param.grad.data(), buffer.data_mut())?)
        })
    }
}

/// RMSprop (`torch.optim.RMSprop` semantics, with optional momentum and centring; see
/// [`RmspropConfig`]). Its state (squared-gradient average, and the momentum buffer and
/// gradient average when enabled) follows the model's parameter order; frozen parameters
/// are skipped.
#[derive(Debug, Clone)]
pub struct RmsProp {
    /// Hyper-parameters; `lr` may be changed between steps.
    pub config: RmspropConfig,
    /// Per parameter: `square_avg`, `momentum_buf` (empty until momentum is used),
    /// `grad_avg` (empty until centring is used).
    state: Vec<[Tensor; 3]>,
}

impl RmsProp {
    /// An optimizer with no state yet (created on the first step).
    pub fn new(config: RmspropConfig) -> Self {
        RmsProp { config, state: Vec::new() }
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
        self.config.check()?;
        let config = &self.config;
        let init = |param: &Param| [Tensor::zeros(param.value.shape()), Tensor::default(), Tensor::default()];
        update_each_param(model, &mut self.state, init, |param, [square_avg, momentum_buf, grad_avg]| {
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
        })
    }
}

/// `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)` over the trainable (not
/// frozen) parameters: when the 2-norm of all their gradients taken together exceeds
/// `max_norm`, every gradient is scaled in place by `max_norm/(total + 1e-6)`. Returns the
/// total norm before clipping.
///
/// Two passes, parameter by parameter, so nothing is allocated: each gradient's norm (the
/// kernel's f64 reduction, rounded to f32), combined as `√Σ norm²` in f64; then the scaling.
/// Errors: `max_norm` negative or NaN; a non-finite total norm (NaN or infinite gradients),
/// in which case no gradient is changed.
pub fn clip_grad_norm(model: &mut dyn Layer, max_norm: f32) -> Result<f32> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(KernelError::Argument {
            what: "max_norm".into(),
            expected: "max_norm >= 0".into(),
            actual: max_norm.to_string(),
        }
        .into());
    }
    let mut sum_squares = 0.0f64;
    let mut outcome = Ok(());
    model.visit_params(&mut |_, param| {
        if param.frozen || outcome.is_err() {
            return;
        }
        // An infinite max_norm never scales: the kernel then only measures.
        match clip_norm_kernel(&mut [param.grad.data_mut()], f32::INFINITY, 2.0) {
            Ok(norm) => sum_squares += f64::from(norm) * f64::from(norm),
            Err(err) => outcome = Err(err),
        }
    });
    outcome.clone()?;
    let total = sum_squares.sqrt() as f32;
    if !total.is_finite() {
        return Err(KernelError::Argument {
            what: "grads".into(),
            expected: "gradients with a finite total norm".into(),
            actual: total.to_string(),
        }
        .into());
    }
    let clip_coef = max_norm / (total + 1e-6);
    if clip_coef < 1.0 {
        model.visit_params(&mut |_, param| {
            if !param.frozen && outcome.is_ok() {
                outcome = grad_scale(param.grad.data_mut(), clip_coef);
            }
        });
    }
    outcome?;
    Ok(total)
}

/// `torch.nn.utils.clip_grad_value_(model.parameters(), clip)` over the trainable (not
/// frozen) parameters: clamps every gradient element in place to `[-clip, clip]`.
/// Errors: `clip` negative or NaN.
pub fn clip_grad_value(model: &mut dyn Layer, clip: f32) -> Result<()> {
    // Checked once up front, so a model without trainable parameters rejects it too.
    clip_value_kernel(&mut [], clip)?;
    let mut outcome = Ok(());
    model.visit_params(&mut |_, param| {
        if !param.frozen && outcome.is_ok() {
            outcome = clip_value_kernel(&mut [param.grad.data_mut()], clip);
        }
    });
    Ok(outcome?)
}
