//! The bias/variance diagnosis: which gap to work on, from human, train and dev error.

use std::fmt;

/// What to work on next, from [`BiasVariance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// Avoidable bias is the larger gap: a bigger model, longer training, a better optimizer.
    Bias,
    /// Variance is the larger gap: more data, regularisation, early stopping.
    Variance,
}

/// The bias/variance diagnosis from error rates (fractions in [0, 1]):
/// avoidable bias = train - human, variance = dev - train; work on the larger one.
///
/// ```
/// use keel_layers::metrics::Focus;
/// use keel_layers::BiasVariance;
/// // Human, train and dev error: the model underfits (7 points of avoidable bias).
/// let diagnosis = BiasVariance::new(0.01, 0.08, 0.10);
/// assert!((diagnosis.avoidable_bias() - 0.07).abs() < 1e-12);
/// assert_eq!(diagnosis.focus(), Focus::Bias);
/// assert_eq!(BiasVariance::new(0.01, 0.02, 0.10).focus(), Focus::Variance);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiasVariance {
    /// Human-level (proxy for Bayes) error.
    pub human_error: f64,
    /// Error on the training set.
    pub train_error: f64,
    /// Error on the dev set.
    pub dev_error: f64,
}

impl BiasVariance {
    /// The report for the given error rates.
    pub fn new(human_error: f64, train_error: f64, dev_error: f64) -> Self {
        BiasVariance { human_error, train_error, dev_error }
    }

    /// `train_error - human_error`.
    pub fn avoidable_bias(&self) -> f64 {
        self.train_error - self.human_error
    }

    /// `dev_error - train_error`.
    pub fn variance(&self) -> f64 {
        self.dev_error - self.train_error
    }

    /// The larger gap (bias on a tie: fix underfitting first).
    pub fn focus(&self) -> Focus {
        if self.variance() > self.avoidable_bias() {
            Focus::Variance
        } else {
            Focus::Bias
        }
    }
}

impl fmt::Display for BiasVariance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let advice = match self.focus() {
            Focus::Bias => "reduce bias (bigger model, train longer, better optimizer)",
            Focus::Variance => "reduce variance (more data, regularisation, early stopping)",
        };
        write!(
            f,
            "human {:.2}%, train {:.2}%, dev {:.2}%: avoidable bias {:.2}%, variance {:.2}% -> {advice}",
            100.0 * self.human_error,
            100.0 * self.train_error,
            100.0 * self.dev_error,
            100.0 * self.avoidable_bias(),
            100.0 * self.variance(),
        )
    }
}
