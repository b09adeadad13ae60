//! [`evaluate`]: a model's mean loss and metrics over a data set, in eval mode.

use super::history::Evaluation;
use crate::collective::Collective;
use crate::data::{Batches, Dataset, Labels};
use crate::error::{LayerError, Result};
use crate::loss::{Loss, LossMetrics};
use crate::metrics::Tally;
use crate::nn::{Layer, Mode};
use crate::tensor::Tensor;

/// The mean loss and metrics of `model` over `data` in [`Mode::Eval`], in batches of
/// `batch_size` (batch losses weighted by batch size: the mean over samples); `data`'s
/// labels are what `loss` takes as targets (class indices for [`SoftmaxCrossEntropy`],
/// a tensor `(samples, ...)` shaped like the output for [`BceWithLogits`] and [`Mse`]).
/// Errors on an empty set or a batch size of 0, on a non-finite loss ([`LayerError::Data`]
/// naming the batch's samples: NaN or infinite features, or a diverged model), and as the
/// model and loss do.
///
/// [`SoftmaxCrossEntropy`]: crate::SoftmaxCrossEntropy
/// [`BceWithLogits`]: crate::BceWithLogits
/// [`Mse`]: crate::Mse
///
/// ```
/// use keel_layers::{evaluate, Dataset, Dense, Init, SeedableRng, SoftmaxCrossEntropy, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Logits (x, -x): class 0 for a positive x.
/// let mut model = Dense::new(1, 2, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// model.weight.value.data_mut().copy_from_slice(&[1.0, -1.0]);
/// let data = Dataset::new(Tensor::from_vec(&[3, 1], vec![2.0, -1.0, 0.5])?, vec![0, 1, 1])?;
/// let result = evaluate(&mut model, &mut SoftmaxCrossEntropy::new(), &data, 2)?;
/// assert_eq!(result.metrics.accuracy, 2.0 / 3.0); // the last sample is wrong
/// // Cross-entropy of two logits z·(1, -1): ln(1 + e^(-2z)) for the target's z.
/// let expected = [2.0f64, 1.0, -0.5].map(|z| (1.0 + (-2.0 * z).exp()).ln()).iter().sum::<f64>() / 3.0;
/// assert!((result.loss - expected).abs() < 1e-5);
/// # Ok(())
/// # }
/// ```
pub fn evaluate<L, T>(
    model: &mut dyn Layer,
    loss: &mut L,
    data: &Dataset<T>,
    batch_size: usize,
) -> Result<Evaluation<LossMetrics<L>>>
where
    L: Loss,
    T: Labels<Batch = L::Target>,
{
    if data.is_empty() {
        return Err(LayerError::Data("evaluate needs at least one sample".into()));
    }
    let mut totals = Totals::default();
    evaluate_batches(
        model,
        loss,
        &mut Batches::sequential(data, batch_size)?,
        &mut totals,
        "evaluation",
        None,
    )
}

/// The mean loss and metrics over every batch of `batches` (rewound first), summed in
/// `totals` (reset first, kept so that its buffers are reused); a sample's error names
/// `set` and `epoch` ([`at_sample`]).
pub(super) fn evaluate_batches<L, T>(
    model: &mut dyn Layer,
    loss: &mut L,
    batches: &mut Batches<T>,
    totals: &mut Totals<L::Tally>,
    set: &'static str,
    epoch: Option<usize>,
) -> Result<Evaluation<LossMetrics<L>>>
where
    L: Loss,
    T: Labels<Batch = L::Target>,
{
    batches.start_epoch();
    totals.reset();
    let mut first = 0;
    while let Some((x, y)) = batches.next_batch() {
        model.forward(x, Mode::Eval)?;
        let batch_loss = match loss.forward(model.output(), y) {
            Ok(batch_loss) => batch_loss,
            Err(error) => return Err(at_sample(error, set, batches.batch_indices(), epoch)),
        };
        let rows = x.shape().first().copied().unwrap_or(0);
        if !batch_loss.is_finite() {
            let after = epoch.map_or(String::new(), |epoch| format!(" after epoch {epoch}"));
            return Err(LayerError::Data(format!(
                "{set} samples {first}..{}{after}: the loss is {batch_loss}: a feature or an output there is NaN or infinite",
                first + rows
            )));
        }
        totals.add(loss, batch_loss, model.output(), y)?;
        first += rows;
    }
    Ok(totals.evaluation())
}

/// A loss's [`LayerError::Index`] (a target at a row of the batch) as the
/// [`LayerError::InSample`] of the sample at that row, `batch_indices` being the data set's
/// indices of the batch's rows; other errors unchanged.
pub(super) fn at_sample(
    error: LayerError,
    set: &'static str,
    batch_indices: &[usize],
    epoch: Option<usize>,
) -> LayerError {
    match error {
        LayerError::Index { position, .. } if position < batch_indices.len() => {
            LayerError::InSample { set, sample: batch_indices[position], epoch, error: Box::new(error) }
        }
        other => other,
    }
}

/// The loss summed over samples and the loss's metric tally, batch by batch.
#[derive(Debug, Default)]
pub(super) struct Totals<T> {
    loss_sum: f64,
    samples: usize,
    tally: T,
}

impl<T: Tally> Totals<T> {
    /// Sums the totals of every rank of `collective` into each (`scratch` keeps the
    /// buffer between epochs).
    pub(super) fn sum_across(&mut self, collective: &dyn Collective, scratch: &mut Vec<f64>) -> Result<()> {
        self.tally.sums(scratch);
        scratch.extend([self.loss_sum, self.samples as f64]);
        collective.sum(scratch)?;
        let tally_len = scratch.len() - 2;
        self.loss_sum = scratch[tally_len];
        self.samples = scratch[tally_len + 1] as usize;
        self.tally.set_sums(&scratch[..tally_len]);
        Ok(())
    }

    /// Back to nothing added.
    pub(super) fn reset(&mut self) {
        self.loss_sum = 0.0;
        self.samples = 0;
        self.tally.reset();
    }

    /// Adds a batch: its mean loss `batch_loss` from `loss`'s last forward on `output`
    /// `(batch, ...)` against `target`, weighted by `batch`.
    pub(super) fn add<L: Loss<Tally = T>>(
        &mut self,
        loss: &L,
        batch_loss: f32,
        output: &Tensor,
        target: &L::Target,
    ) -> Result<()> {
        let batch = output.shape().first().copied().unwrap_or(0);
        self.loss_sum += f64::from(batch_loss) * batch as f64;
        self.samples += batch;
        loss.tally(output, target, &mut self.tally)
    }

    /// The samples added so far.
    pub(super) fn samples(&self) -> usize {
        self.samples
    }

    /// The mean loss per sample and the metrics of what was added.
    pub(super) fn evaluation(&self) -> Evaluation<T::Metrics> {
        Evaluation { loss: self.loss_sum / self.samples as f64, metrics: self.tally.metrics() }
    }
}
