//! Regression metrics: mean absolute error and the coefficient of determination R².

use std::fmt;

use super::{Metrics, Tally};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// How close predictions came to real-valued targets (regression losses' metrics).
///
/// ```
/// use keel_layers::metrics::{RegressionTally, Tally};
/// use keel_layers::{Loss, Mse, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let pred = Tensor::from_vec(&[4, 1], vec![1.0, 2.0, 3.0, 5.0])?;
/// let target = Tensor::from_vec(&[4, 1], vec![1.0, 2.0, 3.0, 4.0])?;
/// let mut mse = Mse::new();
/// mse.forward(&pred, &target)?;
/// let mut tally = RegressionTally::default();
/// mse.tally(&pred, &target, &mut tally)?;
/// let metrics = tally.metrics();
/// assert_eq!(metrics.mae, 0.25);
/// assert!((metrics.r2 - 0.8).abs() < 1e-9); // 1 - SS_res/SS_tot = 1 - 1/5
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regression {
    /// Mean absolute error over every predicted value, `mean |ŷ - y|`.
    pub mae: f64,
    /// The coefficient of determination `R² = 1 - SS_res/SS_tot` per output (a column of
    /// the targets `(samples, outputs)`), averaged over the outputs: scikit-learn's
    /// `r2_score` (`multioutput="uniform_average"`). 1 is a perfect fit, 0 no better than
    /// predicting each output's mean; an output with constant targets scores 1 when
    /// predicted exactly and 0 otherwise (scikit-learn's `force_finite`).
    pub r2: f64,
}

impl Metrics for Regression {
    fn named(&self) -> impl Iterator<Item = (&'static str, f64)> {
        [("mae", self.mae), ("r2", self.r2)].into_iter()
    }
}

impl fmt::Display for Regression {
    /// `mae 0.1234 r2 0.9876`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mae {:.4} r2 {:.4}", self.mae, self.r2)
    }
}

/// Sums giving [`Regression`] over batches of residuals and targets `(batch, outputs...)`
/// (every dimension after the first counts as one output), in `f64`.
///
/// Each output's target mean and sum of squared deviations are updated sample by sample
/// (Welford's method), so `SS_tot` suffers no cancellation when targets sit far from 0.
/// Its three per-output vectors are sized by the first batch and kept across resets.
#[derive(Debug, Clone, Default)]
pub struct RegressionTally {
    /// `Σ |ŷ - y|` over every value.
    abs_error: f64,
    /// Samples added.
    rows: usize,
    /// Per output: `Σ (ŷ - y)²`.
    squared_error: Vec<f64>,
    /// Per output: the running mean of the targets.
    target_mean: Vec<f64>,
    /// Per output: the running `Σ (y - mean)²`.
    target_m2: Vec<f64>,
}

impl RegressionTally {
    /// Adds a batch: `residuals = ŷ - y` and `targets = y`, both `(batch, outputs...)`.
    /// Errors if the shapes differ or the output count changes since the last reset.
    pub fn add(&mut self, residuals: &Tensor, targets: &Tensor) -> Result<()> {
        let batch = targets.shape().first().copied().unwrap_or(0);
        let outputs = targets.len().checked_div(batch).unwrap_or(0);
        if residuals.shape() != targets.shape() || (self.rows > 0 && outputs != self.outputs()) {
            return Err(LayerError::Shape {
                layer: "regression metrics".into(),
                expected: format!(
                    "residuals and targets of one shape, (batch, {} outputs)",
                    if self.rows > 0 { self.outputs() } else { outputs }
                ),
                actual: residuals.shape().to_vec(),
            });
        }
        if batch == 0 {
            return Ok(());
        }
        if self.rows == 0 {
            for column in [&mut self.squared_error, &mut self.target_mean, &mut self.target_m2] {
                column.clear();
                column.resize(outputs, 0.0);
            }
        }
        let rows = residuals.data().chunks_exact(outputs).zip(targets.data().chunks_exact(outputs));
        for (residual, target) in rows {
            self.rows += 1;
            let n = self.rows as f64;
            for (j, (&r, &y)) in residual.iter().zip(target).enumerate() {
                let (r, y) = (f64::from(r), f64::from(y));
                self.abs_error += r.abs();
                self.squared_error[j] += r * r;
                let delta = y - self.target_mean[j];
                self.target_mean[j] += delta / n;
                self.target_m2[j] += delta * (y - self.target_mean[j]);
            }
        }
        Ok(())
    }

    fn outputs(&self) -> usize {
        self.squared_error.len()
    }
}

impl Tally for RegressionTally {
    type Metrics = Regression;

    /// `[rows, Σ|ŷ - y|]`, then per output `Σ(ŷ - y)²`, `Σy = rows·mean` and
    /// `Σy² = M2 + rows·mean²`.
    fn sums(&self, sums: &mut Vec<f64>) {
        let rows = self.rows as f64;
        sums.clear();
        sums.extend([rows, self.abs_error]);
        sums.extend_from_slice(&self.squared_error);
        sums.extend(self.target_mean.iter().map(|&mean| rows * mean));
        sums.extend(self.target_mean.iter().zip(&self.target_m2).map(|(&mean, &m2)| m2 + rows * mean * mean));
    }

    /// The whole's mean `Σy/rows` and `M2 = Σy² - rows·mean²` (clamped at 0 against
    /// rounding).
    fn set_sums(&mut self, sums: &[f64]) {
        let outputs = sums.len().saturating_sub(2) / 3;
        let (rows, rest) = sums.split_at(2.min(sums.len()));
        let [count, abs_error] = *rows else { return };
        let (squared_error, rest) = rest.split_at(outputs);
        let (sum_y, sum_y2) = rest.split_at(outputs);
        self.rows = count as usize;
        self.abs_error = abs_error;
        self.squared_error.clear();
        self.squared_error.extend_from_slice(squared_error);
        self.target_mean.clear();
        self.target_mean.extend(sum_y.iter().map(|&s| if count > 0.0 { s / count } else { 0.0 }));
        self.target_m2.clear();
        self.target_m2.extend(
            sum_y2.iter().zip(&self.target_mean).map(|(&s2, &mean)| (s2 - count * mean * mean).max(0.0)),
        );
    }

    fn reset(&mut self) {
        self.abs_error = 0.0;
        self.rows = 0;
    }

    /// All zero when nothing was added.
    fn metrics(&self) -> Regression {
        if self.rows == 0 {
            return Regression { mae: 0.0, r2: 0.0 };
        }
        let r2_sum: f64 = self
            .squared_error
            .iter()
            .zip(&self.target_m2)
            .map(|(&ss_res, &ss_tot)| match (ss_tot > 0.0, ss_res == 0.0) {
                (true, _) => 1.0 - ss_res / ss_tot,
                (false, true) => 1.0,
                (false, false) => 0.0,
            })
            .sum();
        let outputs = self.outputs() as f64;
        Regression { mae: self.abs_error / (self.rows as f64 * outputs), r2: r2_sum / outputs }
    }
}
