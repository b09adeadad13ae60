//! [`evaluate`]: a model's mean loss and metrics over a data set, in eval mode.

use crate::data::{Batches, Dataset};
use crate::error::{LayerError, Result};
use crate::loss::SoftmaxCrossEntropy;
use crate::metrics::count_correct;
use crate::nn::{Layer, Mode};

/// Mean loss and accuracy of `model` over `data` in [`Mode::Eval`], in batches of
/// `batch_size` (batch losses weighted by batch size: the mean over samples).
/// Errors on an empty set or a batch size of 0.
pub fn evaluate(
    model: &mut dyn Layer,
    loss: &mut SoftmaxCrossEntropy,
    data: &Dataset,
    batch_size: usize,
) -> Result<(f64, f64)> {
    if data.is_empty() {
        return Err(LayerError::Data("evaluate needs at least one sample".into()));
    }
    evaluate_batches(model, loss, &mut Batches::sequential(data, batch_size)?)
}

/// The mean loss and accuracy over every batch of `batches` (rewound first).
pub(super) fn evaluate_batches(
    model: &mut dyn Layer,
    loss: &mut SoftmaxCrossEntropy,
    batches: &mut Batches,
) -> Result<(f64, f64)> {
    batches.start_epoch();
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
    while let Some((x, y)) = batches.next_batch() {
        model.forward(x, Mode::Eval)?;
        loss_sum += f64::from(loss.forward(model.output(), y)?) * y.len() as f64;
        correct += count_correct(model.output(), y)?;
        seen += y.len();
    }
    Ok((loss_sum / seen as f64, correct as f64 / seen as f64))
}
