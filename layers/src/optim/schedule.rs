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
