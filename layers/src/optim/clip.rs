//! Gradient clipping over a model's trainable parameters, by total norm or by value.

use crate::error::{LayerError, Result};
use crate::nn::Layer;
use keel_kernels::optim::{
    clip_grad_norm as clip_norm_kernel, clip_grad_value as clip_value_kernel, grad_scale,
};

/// `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)` over the trainable (not
/// frozen) parameters: when the 2-norm of all their gradients taken together exceeds
/// `max_norm`, every gradient is scaled in place by `max_norm/(total + 1e-6)`. Returns the
/// total norm before clipping.
///
/// Two passes, parameter by parameter, so nothing is allocated: each gradient's norm (the
/// kernel's f64 reduction, rounded to f32), combined as `√Σ norm²` in f64; then the scaling.
/// Errors ([`LayerError::Argument`]): `max_norm` negative or NaN; a non-finite total norm (NaN or infinite gradients),
/// in which case no gradient is changed.
///
/// ```
/// use keel_layers::{clip_grad_norm, Dense, Init, SeedableRng, StdRng};
/// # fn main() -> keel_layers::Result<()> {
/// let mut dense = Dense::new(1, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// dense.weight.grad.data_mut()[0] = 3.0;
/// dense.bias.grad.data_mut()[0] = 4.0;
/// assert_eq!(clip_grad_norm(&mut dense, 1.0)?, 5.0); // the norm before clipping
/// assert!((dense.weight.grad.data()[0] - 0.6).abs() < 1e-5);
/// assert!((dense.bias.grad.data()[0] - 0.8).abs() < 1e-5);
/// # Ok(())
/// # }
/// ```
pub fn clip_grad_norm(model: &mut dyn Layer, max_norm: f32) -> Result<f32> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(LayerError::Argument {
            owner: "clip_grad_norm".into(),
            what: "max_norm".into(),
            expected: "max_norm >= 0".into(),
            actual: max_norm.to_string(),
        });
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
    outcome.clone().map_err(|e| LayerError::argument("clip_grad_norm", e))?;
    let total = sum_squares.sqrt() as f32;
    if !total.is_finite() {
        return Err(LayerError::Argument {
            owner: "clip_grad_norm".into(),
            what: "grads".into(),
            expected: "gradients with a finite total norm".into(),
            actual: total.to_string(),
        });
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
/// Errors ([`LayerError::Argument`]): `clip` negative or NaN.
///
/// ```
/// use keel_layers::{clip_grad_value, Dense, Init, SeedableRng, StdRng};
/// # fn main() -> keel_layers::Result<()> {
/// let mut dense = Dense::new(2, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// dense.weight.grad.data_mut().copy_from_slice(&[3.0, -0.5]);
/// clip_grad_value(&mut dense, 1.0)?;
/// assert_eq!(dense.weight.grad.data(), &[1.0, -0.5]);
/// # Ok(())
/// # }
/// ```
pub fn clip_grad_value(model: &mut dyn Layer, clip: f32) -> Result<()> {
    // Checked once up front, so a model without trainable parameters rejects it too.
    clip_value_kernel(&mut [], clip).map_err(|e| LayerError::argument("clip_grad_value", e))?;
    let mut outcome = Ok(());
    model.visit_params(&mut |_, param| {
        if !param.frozen && outcome.is_ok() {
            outcome = clip_value_kernel(&mut [param.grad.data_mut()], clip);
        }
    });
    Ok(outcome?)
}
