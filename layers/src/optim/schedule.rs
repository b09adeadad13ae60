//! Learning-rate schedules: the rate for an epoch (from 0), set on an optimizer between
//! epochs with [`Optimizer::set_learning_rate`](crate::Optimizer::set_learning_rate):
//!
//! ```text
//! for epoch in 0..epochs {
//!     optimizer.set_learning_rate(schedule.learning_rate(epoch));
//!     // ... one epoch of steps ...
//! }
//! ```

/// A learning rate as a function of the epoch.
///
/// ```
/// use keel_layers::{FitConfig, LrSchedule, StepDecay};
/// let halving = |epoch: usize| 1e-2 * 0.5f64.powi(epoch as i32);
/// assert_eq!(halving.learning_rate(2), 2.5e-3);
/// // `fit` sets the rate of each epoch from the schedule.
/// let config = FitConfig {
///     lr_schedule: Some(Box::new(StepDecay { initial: 0.1, gamma: 0.5, step: 10 })),
///     ..FitConfig::default()
/// };
/// assert!(config.lr_schedule.is_some());
/// ```
pub trait LrSchedule {
    /// The learning rate for `epoch` (0 is the first).
    fn learning_rate(&self, epoch: usize) -> f64;
}

/// Any function of the epoch is a schedule (PyTorch's `LambdaLR` with the base rate folded
/// in), e.g. `|epoch| 3e-3 * 0.5f64.powi((epoch / 10) as i32)`.
impl<F: Fn(usize) -> f64> LrSchedule for F {
    fn learning_rate(&self, epoch: usize) -> f64 {
        self(epoch)
    }
}

/// The course's `α = α0/(1 + k·epoch)` (`k` the decay rate).
///
/// ```
/// use keel_layers::{InverseTimeDecay, LrSchedule};
/// let schedule = InverseTimeDecay { initial: 0.2, decay_rate: 1.0 };
/// assert_eq!([0, 1, 3].map(|epoch| schedule.learning_rate(epoch)), [0.2, 0.1, 0.05]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseTimeDecay {
    /// α0, the rate at epoch 0.
    pub initial: f64,
    /// k, the decay rate.
    pub decay_rate: f64,
}

impl LrSchedule for InverseTimeDecay {
    fn learning_rate(&self, epoch: usize) -> f64 {
        self.initial / (1.0 + self.decay_rate * epoch as f64)
    }
}

/// `α = α0·γ^epoch` (PyTorch's `ExponentialLR`; the course's `0.95^epoch·α0`).
///
/// ```
/// use keel_layers::{ExponentialDecay, LrSchedule};
/// let schedule = ExponentialDecay { initial: 1.0, gamma: 0.5 };
/// assert_eq!(schedule.learning_rate(3), 0.125);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialDecay {
    /// α0, the rate at epoch 0.
    pub initial: f64,
    /// γ, the factor per epoch.
    pub gamma: f64,
}

impl LrSchedule for ExponentialDecay {
    fn learning_rate(&self, epoch: usize) -> f64 {
        self.initial * self.gamma.powf(epoch as f64)
    }
}

/// `α = α0·γ^⌊epoch/step⌋` (PyTorch's `StepLR` with `step_size = step`); `step = 0` is taken
/// as 1.
///
/// ```
/// use keel_layers::{LrSchedule, StepDecay};
/// let schedule = StepDecay { initial: 1.0, gamma: 0.5, step: 10 };
/// assert_eq!([0, 9, 10, 25].map(|epoch| schedule.learning_rate(epoch)), [1.0, 1.0, 0.5, 0.25]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDecay {
    /// α0, the rate of the first `step` epochs.
    pub initial: f64,
    /// γ, the factor applied every `step` epochs.
    pub gamma: f64,
    /// Epochs between decays.
    pub step: usize,
}

impl LrSchedule for StepDecay {
    fn learning_rate(&self, epoch: usize) -> f64 {
        self.initial * self.gamma.powf((epoch / self.step.max(1)) as f64)
    }
}
