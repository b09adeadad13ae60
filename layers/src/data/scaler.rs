//! Per-feature scaling fitted on the training set and applied to every split: [`Scaler`]
//! (standardisation, min-max), with a [`ZeroVariance`] policy for constant features.

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// What fitting a [`Scaler`] does with a feature whose training values are all equal (its
/// standard deviation and range are 0, so dividing by them would give infinities and NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroVariance {
    /// Fitting errors, naming the feature and its value.
    Error,
    /// The feature is left as it is (center 0, scale 1) in every split.
    Unchanged,
}

/// A per-feature affine map `x[:, j] ← (x[:, j] - center[j]) / scale[j]`, fitted on the
/// training features and then applied unchanged to the training, dev and test features (so
/// no statistic of the held-out sets leaks into the model):
/// - [`Scaler::standard`]: center the mean, scale the standard deviation (the biased, `1/n`
///   one, as scikit-learn's `StandardScaler`): each training feature gets mean 0, std 1;
/// - [`Scaler::min_max`]: center the minimum, scale the range: each training feature spans
///   [0, 1] (held-out values may fall outside).
///
/// A feature is a position within a sample: for features `(samples, ...)` every trailing
/// index is one feature (a column of `(samples, features)`, a pixel of NCHW images).
///
/// ```
/// use keel_layers::{Scaler, Tensor, ZeroVariance};
/// # fn main() -> keel_layers::Result<()> {
/// let train = Tensor::from_vec(&[2, 2], vec![1.0, 10.0, 3.0, 30.0])?; // 2 samples, 2 features
/// let scaler = Scaler::standard(&train, ZeroVariance::Error)?;
/// assert_eq!((scaler.center(), scaler.scale()), (&[2.0, 20.0][..], &[1.0, 10.0][..]));
/// let mut test = Tensor::from_vec(&[1, 2], vec![4.0, 0.0])?;
/// scaler.transform(&mut test)?;
/// assert_eq!(test.data(), &[2.0, -2.0]);
/// scaler.inverse_transform(&mut test)?;
/// assert_eq!(test.data(), &[4.0, 0.0]);
/// // A constant feature is an error unless it is to be left as it is.
/// let constant = Tensor::from_vec(&[2, 1], vec![5.0, 5.0])?;
/// assert!(Scaler::min_max(&constant, ZeroVariance::Error).is_err());
/// assert_eq!(Scaler::min_max(&constant, ZeroVariance::Unchanged)?.scale(), &[1.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    center: Vec<f32>,
    scale: Vec<f32>,
}

/// The statistics of one feature over the training samples.
struct FeatureStats {
    min: f64,
    max: f64,
    mean: f64,
    std: f64,
}

impl Scaler {
    /// Fits standardisation on `features`: center the mean, scale the standard deviation of
    /// each feature (computed in f64).
    ///
    /// # Shapes
    /// `features`: `(samples, ...)`, at least one sample; the scaler then transforms
    /// features of the same trailing shape.
    ///
    /// # Errors
    /// No samples; a non-finite training value; a constant feature under
    /// [`ZeroVariance::Error`].
    pub fn standard(features: &Tensor, zero_variance: ZeroVariance) -> Result<Self> {
        Self::fit(features, zero_variance, "standard deviation", |stats| (stats.mean, stats.std))
    }

    /// Fits min-max scaling on `features`: center the minimum, scale the range
    /// `max - min` of each feature, so the training values span [0, 1].
    ///
    /// # Shapes
    /// As [`Scaler::standard`].
    ///
    /// # Errors
    /// As [`Scaler::standard`].
    pub fn min_max(features: &Tensor, zero_variance: ZeroVariance) -> Result<Self> {
        Self::fit(features, zero_variance, "range", |stats| (stats.min, stats.max - stats.min))
    }

    /// The statistics of each feature, turned into `(center, scale)` by `pick`; a constant
    /// feature (min = max, checked exactly rather than on a rounded deviation) follows
    /// `zero_variance`, and `what` names its scale in the error.
    fn fit(
        features: &Tensor,
        zero_variance: ZeroVariance,
        what: &str,
        pick: impl Fn(&FeatureStats) -> (f64, f64),
    ) -> Result<Self> {
        let samples = features.shape().first().copied().unwrap_or(0);
        if samples == 0 || features.is_empty() {
            return Err(LayerError::Data(format!(
                "scaler: expected training features (samples, ...) with at least one sample and one \
                 feature, got shape {:?}",
                features.shape()
            )));
        }
        let width = features.len() / samples;
        let rows = || features.data().chunks_exact(width);
        let (mut center, mut scale) = (Vec::with_capacity(width), Vec::with_capacity(width));
        for feature in 0..width {
            let column = || rows().map(|row| f64::from(row[feature]));
            if let Some((sample, value)) = column().enumerate().find(|(_, value)| !value.is_finite()) {
                return Err(LayerError::Data(format!(
                    "scaler: feature {feature} of training sample {sample} is {value}: expected finite values \
                     (fill in missing values before scaling)"
                )));
            }
            let mean = column().sum::<f64>() / samples as f64;
            let stats = FeatureStats {
                min: column().fold(f64::INFINITY, f64::min),
                max: column().fold(f64::NEG_INFINITY, f64::max),
                mean,
                std: (column().map(|value| (value - mean).powi(2)).sum::<f64>() / samples as f64).sqrt(),
            };
            let (c, s) = if stats.min == stats.max {
                match zero_variance {
                    ZeroVariance::Unchanged => (0.0, 1.0),
                    ZeroVariance::Error => {
                        return Err(LayerError::Data(format!(
                            "scaler: feature {feature} is {} in every training sample, so its {what} is 0: \
                             expected a varying feature (ZeroVariance::Unchanged leaves it as it is)",
                            stats.min as f32
                        )))
                    }
                }
            } else {
                pick(&stats)
            };
            center.push(c as f32);
            scale.push(s as f32);
        }
        Ok(Scaler { center, scale })
    }

    /// `x[:, j] ← (x[:, j] - center[j]) / scale[j]` in place, with the training statistics.
    ///
    /// # Shapes
    /// `features`: `(samples, ...)` with the trailing shape the scaler was fitted on
    /// (as many values per sample); overwritten.
    pub fn transform(&self, features: &mut Tensor) -> Result<()> {
        self.check_width(features)?;
        for row in features.data_mut().chunks_exact_mut(self.center.len()) {
            for ((value, &center), &scale) in row.iter_mut().zip(&self.center).zip(&self.scale) {
                *value = (*value - center) / scale;
            }
        }
        Ok(())
    }

    /// The inverse map `x[:, j] ← x[:, j]·scale[j] + center[j]` in place: brings predictions
    /// of scaled regression targets back to the targets' units.
    ///
    /// # Shapes
    /// As [`Scaler::transform`].
    pub fn inverse_transform(&self, values: &mut Tensor) -> Result<()> {
        self.check_width(values)?;
        for row in values.data_mut().chunks_exact_mut(self.center.len()) {
            for ((value, &center), &scale) in row.iter_mut().zip(&self.center).zip(&self.scale) {
                *value = *value * scale + center;
            }
        }
        Ok(())
    }

    /// What each feature's training value is shifted by: its mean or minimum (0 for a
    /// constant feature left unchanged).
    pub fn center(&self) -> &[f32] {
        &self.center
    }

    /// What each feature's shifted value is divided by: its standard deviation or range (1
    /// for a constant feature left unchanged).
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// Errors unless `features` holds `(samples, ...)` with the fitted number of values per
    /// sample.
    fn check_width(&self, features: &Tensor) -> Result<()> {
        let samples = features.shape().first().copied().unwrap_or(0);
        let width = self.center.len();
        if features.shape().is_empty() || features.len() != samples * width {
            return Err(LayerError::Shape {
                layer: "scaler".into(),
                expected: format!("(samples, ...) with {width} values per sample, as fitted"),
                actual: features.shape().to_vec(),
            });
        }
        Ok(())
    }
}
