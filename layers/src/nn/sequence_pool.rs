//! Many-to-one heads for the recurrent layers: [`LastStep`] and [`MeanOverTime`] turn a
//! recurrent output `(seq, batch, features)` (or `(batch, seq, features)`) into one vector
//! per sequence `(batch, features)`, for a dense head behind them in a
//! [`Sequential`](crate::nn::Sequential): `Sequential[Lstm, LastStep, Dense]`.
//!
//! Both only move or average values, so forward and backward are plain loops over the rows
//! they read: a step's row of `features` values is contiguous in either layout, at
//! `(t·batch + b)·features` time-major and `(b·seq + t)·features` batch-first.
//!
//! Feeding images as sequences needs no layer of its own: a dataset viewed as
//! `(samples, 28, 28)` ([`Dataset::with_sample_shape`](crate::Dataset::with_sample_shape))
//! gives batches `(batch, 28, 28)`, which a `batch_first` recurrent layer reads as 28 steps
//! (the rows) of 28 features.
//!
//! Sequences of different lengths ([`Lstm::set_lengths`](crate::Lstm::set_lengths)) are not
//! handled: `LastStep` reads step `seq - 1` of every row (0 past a shorter row's length) and
//! `MeanOverTime` divides by `seq`.

use super::layer::{ensure_forward_ran, Layer, Mode};
use super::recurrent::RecurrentConfig;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The layout of a recurrent output, shared by the two heads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Layout {
    batch_first: bool,
}

/// `(seq, batch, features)` of a 3-D input in either layout.
#[derive(Debug, Clone, Copy)]
struct Dims {
    seq: usize,
    batch: usize,
    features: usize,
}

impl Layout {
    fn expected(self) -> &'static str {
        if self.batch_first {
            "(batch, seq >= 1, features), 3 dimensions"
        } else {
            "(seq >= 1, batch, features), 3 dimensions"
        }
    }

    /// The dims of `input`, or a shape error naming the layer (named only then: a name is
    /// built by `format!`, and a steady-state step allocates nothing).
    fn dims(self, name: impl Fn() -> String, input: &Tensor) -> Result<Dims> {
        match *input.shape() {
            [a, b, features] if (if self.batch_first { b } else { a }) >= 1 => {
                let (seq, batch) = if self.batch_first { (b, a) } else { (a, b) };
                Ok(Dims { seq, batch, features })
            }
            _ => Err(LayerError::Shape {
                layer: name(),
                expected: self.expected().into(),
                actual: input.shape().to_vec(),
            }),
        }
    }

    /// The offset of the row of step `t`, batch row `b`.
    fn row(self, dims: Dims, t: usize, b: usize) -> usize {
        let row = if self.batch_first { b * dims.seq + t } else { t * dims.batch + b };
        row * dims.features
    }
}

/// Errors unless `grad_output` is `(batch, features)`.
fn check_grad(name: impl Fn() -> String, dims: Dims, grad_output: &Tensor) -> Result<()> {
    if grad_output.shape() != [dims.batch, dims.features] {
        return Err(LayerError::Shape {
            layer: format!("{} (gradient)", name()),
            expected: format!("{:?}", [dims.batch, dims.features]),
            actual: grad_output.shape().to_vec(),
        });
    }
    Ok(())
}

/// The output at the last time step of each sequence, the many-to-one head PyTorch users
/// write as `output[-1]` (or `h_n[-1]`). For a bidirectional layer's output
/// (`features = 2·hidden`, the reverse direction in the second half), the forward half is
/// read at the last step and the reverse half at the **first** step, where the reverse
/// direction has seen the whole sequence: PyTorch's `torch.cat([h_n[-2], h_n[-1]], 1)`.
///
/// # Shapes
/// - input `(seq, batch, features)`, or `(batch, seq, features)` with `batch_first`, `seq >= 1`
///   (`features` even when bidirectional);
/// - output `(batch, features)`, overwritten;
/// - input gradient: the input's shape, overwritten: `∂L/∂output` at the steps read, 0
///   elsewhere.
///
/// Errors ([`LayerError::Shape`]) on an input that is not 3-D, has no step, or (when
/// bidirectional) has an odd number of features, and on a gradient not `(batch, features)`.
///
/// ```
/// use keel_layers::{LastStep, Layer, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // 3 steps, batch 1, 2 features: (0, 1), (2, 3), (4, 5).
/// let x = Tensor::from_vec(&[3, 1, 2], (0..6).map(|v| v as f32).collect())?;
/// let mut last = LastStep::new();
/// last.forward(&x, Mode::Eval)?;
/// assert_eq!(last.output().data(), &[4.0, 5.0]);
/// // Bidirectional, one unit each way: the reverse direction's last step is the first.
/// let mut both = LastStep::new().with_bidirectional(true);
/// both.forward(&x, Mode::Eval)?;
/// assert_eq!(both.output().data(), &[4.0, 1.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct LastStep {
    layout: Layout,
    bidirectional: bool,
    output: Tensor,
    grad_input: Tensor,
}

impl LastStep {
    /// The head for a time-major, one-direction output.
    pub fn new() -> Self {
        LastStep::default()
    }

    /// The head matching a recurrent layer's output: its `batch_first` and `bidirectional`.
    pub fn for_config(config: &RecurrentConfig) -> Self {
        LastStep::new().with_batch_first(config.batch_first).with_bidirectional(config.bidirectional)
    }

    /// The same for a `(batch, seq, features)` input or not.
    pub fn with_batch_first(mut self, batch_first: bool) -> Self {
        self.layout.batch_first = batch_first;
        self
    }

    /// The same for a bidirectional output (forward half at the last step, reverse half at
    /// the first) or not.
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    fn dims(&self, input: &Tensor) -> Result<Dims> {
        let dims = self.layout.dims(|| self.name(), input)?;
        if self.bidirectional && dims.features % 2 != 0 {
            return Err(LayerError::Shape {
                layer: self.name(),
                expected: format!("{} with an even number of features (2·hidden)", self.layout.expected()),
                actual: input.shape().to_vec(),
            });
        }
        Ok(dims)
    }

    /// For batch row `b`, the pairs `(input offset, output offset, len)` of the values read:
    /// the whole row at the last step, or its two halves at the last and first steps.
    fn spans(layout: Layout, bidirectional: bool, dims: Dims, b: usize) -> [(usize, usize, usize); 2] {
        let out = b * dims.features;
        let last = layout.row(dims, dims.seq - 1, b);
        if bidirectional {
            let half = dims.features / 2;
            let first = layout.row(dims, 0, b);
            [(last, out, half), (first + half, out + half, half)]
        } else {
            [(last, out, dims.features), (0, 0, 0)]
        }
    }
}

impl Layer for LastStep {
    fn name(&self) -> String {
        let layout = if self.layout.batch_first { "batch_first" } else { "time-major" };
        let directions = if self.bidirectional { ", bidirectional" } else { "" };
        format!("last_step({layout}{directions})")
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let dims = self.dims(input)?;
        self.output.resize(&[dims.batch, dims.features]);
        let (layout, bidirectional) = (self.layout, self.bidirectional);
        let (x, y) = (input.data(), self.output.data_mut());
        for b in 0..dims.batch {
            for (from, to, len) in Self::spans(layout, bidirectional, dims, b) {
                y[to..to + len].copy_from_slice(&x[from..from + len]);
            }
        }
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        let dims = self.dims(input)?;
        check_grad(|| self.name(), dims, grad_output)?;
        self.grad_input.resize(input.shape());
        // Every step but the ones read gets no gradient.
        let (layout, bidirectional) = (self.layout, self.bidirectional);
        let (dx, dy) = (self.grad_input.data_mut(), grad_output.data());
        dx.fill(0.0);
        for b in 0..dims.batch {
            for (to, from, len) in Self::spans(layout, bidirectional, dims, b) {
                dx[to..to + len].copy_from_slice(&dy[from..from + len]);
            }
        }
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }
}

/// The mean of the outputs over time, `y[b] = (1/seq)·Σ_t x[t, b]`: a pooled many-to-one
/// head that reads every step (both directions alike when bidirectional).
///
/// # Shapes
/// - input `(seq, batch, features)`, or `(batch, seq, features)` with `batch_first`, `seq >= 1`;
/// - output `(batch, features)`, overwritten;
/// - input gradient: the input's shape, overwritten: `∂L/∂output / seq` at every step.
///
/// Errors ([`LayerError::Shape`]) on an input that is not 3-D or has no step, and on a
/// gradient not `(batch, features)`.
///
/// ```
/// use keel_layers::{Layer, MeanOverTime, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Batch-first: 1 sequence of 3 steps of 2 features, (0, 1), (2, 3), (4, 5).
/// let x = Tensor::from_vec(&[1, 3, 2], (0..6).map(|v| v as f32).collect())?;
/// let mut mean = MeanOverTime::new().with_batch_first(true);
/// mean.forward(&x, Mode::Eval)?;
/// assert_eq!(mean.output().shape(), &[1, 2]);
/// assert_eq!(mean.output().data(), &[2.0, 3.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MeanOverTime {
    layout: Layout,
    output: Tensor,
    grad_input: Tensor,
}

impl MeanOverTime {
    /// The head for a time-major output.
    pub fn new() -> Self {
        MeanOverTime::default()
    }

    /// The head matching a recurrent layer's output (its `batch_first`).
    pub fn for_config(config: &RecurrentConfig) -> Self {
        MeanOverTime::new().with_batch_first(config.batch_first)
    }

    /// The same for a `(batch, seq, features)` input or not.
    pub fn with_batch_first(mut self, batch_first: bool) -> Self {
        self.layout.batch_first = batch_first;
        self
    }
}

impl Layer for MeanOverTime {
    fn name(&self) -> String {
        let layout = if self.layout.batch_first { "batch_first" } else { "time-major" };
        format!("mean_over_time({layout})")
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let dims = self.layout.dims(|| self.name(), input)?;
        self.output.resize(&[dims.batch, dims.features]);
        let scale = 1.0 / dims.seq as f32;
        let (x, y) = (input.data(), self.output.data_mut());
        y.fill(0.0);
        for t in 0..dims.seq {
            for b in 0..dims.batch {
                let from = self.layout.row(dims, t, b);
                let out = &mut y[b * dims.features..(b + 1) * dims.features];
                for (o, &v) in out.iter_mut().zip(&x[from..from + dims.features]) {
                    *o += v;
                }
            }
        }
        y.iter_mut().for_each(|o| *o *= scale);
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        let dims = self.layout.dims(|| self.name(), input)?;
        check_grad(|| self.name(), dims, grad_output)?;
        self.grad_input.resize(input.shape());
        let scale = 1.0 / dims.seq as f32;
        let (dx, dy) = (self.grad_input.data_mut(), grad_output.data());
        for t in 0..dims.seq {
            for b in 0..dims.batch {
                let to = self.layout.row(dims, t, b);
                let row = &dy[b * dims.features..(b + 1) * dims.features];
                for (d, &g) in dx[to..to + dims.features].iter_mut().zip(row) {
                    *d = g * scale;
                }
            }
        }
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }
}
