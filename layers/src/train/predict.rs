//! A trained model's predictions on new samples, in [`Mode::Eval`] and in batches: its raw
//! outputs ([`predict`]), class probabilities ([`predict_proba`]) and classes
//! ([`predict_classes`]).
//!
//! Probabilities and classes read the outputs as the losses do: one output column is the
//! logit of class 1 ([`crate::BceWithLogits`]: probability `σ(z)`, class `z > 0`); several
//! are the logits of as many classes ([`crate::SoftmaxCrossEntropy`]: a softmax per row, the
//! first arg-max).

use keel_kernels::activation::{sigmoid_forward, softmax_forward};

use crate::error::{LayerError, Result};
use crate::nn::{argmax, Layer, Mode};
use crate::tensor::Tensor;

/// The outputs of `model` on `features`, batch by batch in [`Mode::Eval`].
///
/// # Shapes
/// `features` `(n, ...)`, `n >= 1`, as the model takes them; the result is `(n, ...)` as the
/// model gives them (`(n, classes)` for a classifier).
///
/// Errors: `batch_size` is 0, there are no samples, or the model's own error on a batch.
///
/// ```
/// use keel_layers::{predict, Dense, Init, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut model = Dense::new(2, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// model.weight.value.data_mut().fill(1.0); // y = x0 + x1
/// let x = Tensor::from_vec(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// let y = predict(&mut model, &x, 2)?; // batches of 2 and 1
/// assert_eq!((y.shape(), y.data()), (&[3, 1][..], &[3.0, 7.0, 11.0][..]));
/// # Ok(())
/// # }
/// ```
pub fn predict(model: &mut dyn Layer, features: &Tensor, batch_size: usize) -> Result<Tensor> {
    let shape = features.shape();
    let samples = shape.first().copied().unwrap_or(0);
    if batch_size == 0 || samples == 0 {
        return Err(LayerError::Data(format!(
            "predict: expected a batch size >= 1 and at least one sample, got batch size {batch_size} \
             and features of shape {shape:?}"
        )));
    }
    let row = features.len() / samples;
    let mut batch_shape = shape.to_vec();
    let (mut outputs, mut out_shape) = (Vec::new(), Vec::new());
    for start in (0..samples).step_by(batch_size) {
        let rows = batch_size.min(samples - start);
        batch_shape[0] = rows;
        let batch =
            Tensor::from_vec(&batch_shape, features.data()[start * row..(start + rows) * row].to_vec())?;
        model.forward(&batch, Mode::Eval)?;
        let output = model.output();
        out_shape = output.shape().to_vec();
        outputs.extend_from_slice(output.data());
    }
    out_shape[0] = samples;
    Tensor::from_vec(&out_shape, outputs)
}

/// Class probabilities of `model` on `features`: `σ` of a single output column (the
/// probability of class 1), else a softmax over each row's outputs.
///
/// # Shapes
/// `features` `(n, ...)`; the model's outputs and the result `(n, classes)`, or `(n, 1)`.
///
/// Errors as [`predict`], and on outputs that are not a matrix.
///
/// ```
/// use keel_layers::{predict_proba, Dense, Init, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // One logit z = x: the probability of class 1 is σ(x).
/// let mut model = Dense::new(1, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// model.weight.value.data_mut()[0] = 1.0;
/// let p = predict_proba(&mut model, &Tensor::from_vec(&[2, 1], vec![0.0, 3f32.ln()])?, 8)?;
/// assert!((p.data()[0] - 0.5).abs() < 1e-6 && (p.data()[1] - 0.75).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn predict_proba(model: &mut dyn Layer, features: &Tensor, batch_size: usize) -> Result<Tensor> {
    let logits = predict(model, features, batch_size)?;
    let (rows, cols) = matrix_dims(&logits)?;
    let mut probabilities = Tensor::zeros(logits.shape());
    if cols == 1 {
        sigmoid_forward(logits.data(), probabilities.data_mut())?;
    } else {
        softmax_forward(rows, cols, logits.data(), probabilities.data_mut())?;
    }
    Ok(probabilities)
}

/// The class of each sample: `z > 0` for a single output column `z`, else the first
/// arg-max of the row.
///
/// # Shapes
/// `features` `(n, ...)`; the result holds `n` classes.
///
/// Errors as [`predict_proba`], and ([`LayerError::Data`] naming the sample) on an output
/// that is NaN or infinite, which has no class.
///
/// ```
/// use keel_layers::{predict_classes, Dense, Init, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Logits (x, -x): class 0 for a positive x.
/// let mut model = Dense::new(1, 2, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// model.weight.value.data_mut().copy_from_slice(&[1.0, -1.0]);
/// let x = Tensor::from_vec(&[3, 1], vec![2.0, -1.0, 0.5])?;
/// assert_eq!(predict_classes(&mut model, &x, 8)?, [0, 1, 0]);
/// # Ok(())
/// # }
/// ```
pub fn predict_classes(model: &mut dyn Layer, features: &Tensor, batch_size: usize) -> Result<Vec<u32>> {
    let logits = predict(model, features, batch_size)?;
    let (_, cols) = matrix_dims(&logits)?;
    logits
        .data()
        .chunks_exact(cols)
        .enumerate()
        .map(|(sample, row)| match row.iter().find(|v| !v.is_finite()) {
            Some(value) => Err(LayerError::Data(format!(
                "predict_classes: sample {sample} has the output {value}: a feature is NaN or infinite, or the model diverged"
            ))),
            None if cols == 1 => Ok(u32::from(row[0] > 0.0)),
            None => Ok(argmax(row) as u32),
        })
        .collect()
}

/// `(rows, cols)` of outputs that must be a matrix.
fn matrix_dims(outputs: &Tensor) -> Result<(usize, usize)> {
    match *outputs.shape() {
        [rows, cols] if cols >= 1 => Ok((rows, cols)),
        _ => Err(LayerError::Shape {
            layer: "predict_proba / predict_classes (the model's outputs)".to_owned(),
            expected: "(samples, classes >= 1)".to_owned(),
            actual: outputs.shape().to_vec(),
        }),
    }
}
