//! `gradcheck`: compares a layer's backward with central differences of its forward.
//!
//! The scalar checked is `L = Σ y·u` for a fixed pseudo-random `u` (both signs), so every
//! output element contributes. For each input element and each parameter element `θ`,
//! `g̃ = (L(θ + ε) - L(θ - ε)) / 2ε` (sums in f64), and the report gives the relative error
//! `‖g - g̃‖ / (‖g‖ + ‖g̃‖)` per tensor, as the course defines it (0 when both are 0).

use crate::error::Result;
use crate::nn::{Layer, Mode, Param};
use crate::tensor::Tensor;

/// Relative errors of one gradient check.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// Error of `∂L/∂input`.
    pub input: f64,
    /// Error of each parameter gradient, by parameter name, in visiting order.
    pub params: Vec<(String, f64)>,
}

impl GradcheckReport {
    /// The largest error in the report.
    pub fn max_error(&self) -> f64 {
        self.params.iter().map(|(_, error)| *error).fold(self.input, f64::max)
    }
}

/// `‖a - b‖ / (‖a‖ + ‖b‖)`, 0 when both are 0.
pub fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
    let diff = norm(&mut a.iter().zip(b).map(|(x, y)| x - y));
    let scale = norm(&mut a.iter().copied()) + norm(&mut b.iter().copied());
    if scale == 0.0 {
        0.0
    } else {
        diff / scale
    }
}

/// Checks `layer`'s gradients at `input` in `mode` with step `eps` (1e-2 to 1e-3 suits f32
/// layers: smaller steps drown in rounding). The layer's parameter gradients are zeroed
/// first and hold `∂L/∂θ` afterwards; its parameter values are restored exactly.
///
/// ```
/// use keel_layers::{gradcheck, ActivationKind, Dense, Init, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut layer = Dense::new(3, 2, Init::Xavier, &mut rng)?.with_activation(ActivationKind::Tanh);
/// let x = Tensor::from_vec(&[2, 3], vec![0.1, -0.2, 0.3, 0.4, 0.5, -0.6])?;
/// let report = gradcheck(&mut layer, &x, Mode::Train, 1e-2)?;
/// assert_eq!(report.params.len(), 2); // "weight" and "bias"
/// assert!(report.max_error() < 1e-3, "{report:?}");
/// # Ok(())
/// # }
/// ```
pub fn gradcheck(layer: &mut dyn Layer, input: &Tensor, mode: Mode, eps: f32) -> Result<GradcheckReport> {
    check(layer, input, mode, eps, true)
}

/// [`gradcheck`] of the parameters only, for layers whose input is discrete (the token ids
/// of an [`Embedding`](crate::nn::Embedding), which a step of `eps` would make invalid): the
/// input is never perturbed and the report's `input` error is 0.
///
/// ```
/// use keel_layers::{gradcheck_params, Embedding, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut embedding = Embedding::new(5, 3, None, &mut StdRng::seed_from_u64(0))?;
/// let ids = Tensor::from_vec(&[2, 2], vec![1.0, 3.0, 3.0, 0.0])?;
/// let report = gradcheck_params(&mut embedding, &ids, Mode::Train, 1e-2)?;
/// assert!(report.max_error() < 1e-3, "{report:?}");
/// # Ok(())
/// # }
/// ```
pub fn gradcheck_params(
    layer: &mut dyn Layer,
    input: &Tensor,
    mode: Mode,
    eps: f32,
) -> Result<GradcheckReport> {
    check(layer, input, mode, eps, false)
}

/// The check, with or without the input's gradient.
fn check(
    layer: &mut dyn Layer,
    input: &Tensor,
    mode: Mode,
    eps: f32,
    with_input: bool,
) -> Result<GradcheckReport> {
    layer.forward(input, mode)?;
    let weights = Tensor::from_vec(layer.output().shape(), probe_weights(layer.output().len()))?;
    let loss = |layer: &mut dyn Layer, x: &Tensor| -> Result<f64> {
        layer.forward(x, mode)?;
        Ok(layer.output().data().iter().zip(weights.data()).map(|(&y, &u)| f64::from(y) * f64::from(u)).sum())
    };

    // Analytic gradients.
    layer.visit_params(&mut |_, param| param.zero_grad());
    layer.forward(input, mode)?;
    layer.backward(input, &weights)?;
    let analytic_input: Vec<f64> = layer.grad_input().data().iter().map(|&g| f64::from(g)).collect();
    let mut analytic_params: Vec<(String, Vec<f64>)> = Vec::new();
    layer.visit_params(&mut |name, param| {
        analytic_params.push((name.to_owned(), param.grad.data().iter().map(|&g| f64::from(g)).collect()));
    });

    // Numeric gradient of the input.
    let mut x = input.clone();
    let mut numeric_input = Vec::with_capacity(x.len());
    for index in 0..if with_input { x.len() } else { 0 } {
        let original = x.data()[index];
        x.data_mut()[index] = original + eps;
        let plus = loss(layer, &x)?;
        x.data_mut()[index] = original - eps;
        let minus = loss(layer, &x)?;
        x.data_mut()[index] = original;
        numeric_input.push((plus - minus) / (2.0 * f64::from(eps)));
    }

    // Numeric gradient of each parameter element, perturbed through the visitor.
    let mut params = Vec::with_capacity(analytic_params.len());
    for (name, analytic) in &analytic_params {
        let mut numeric = Vec::with_capacity(analytic.len());
        for index in 0..analytic.len() {
            let mut original = 0.0;
            with_param_element(layer, name, index, &mut |value| original = *value);
            with_param_element(layer, name, index, &mut |value| *value = original + eps);
            let plus = loss(layer, input)?;
            with_param_element(layer, name, index, &mut |value| *value = original - eps);
            let minus = loss(layer, input)?;
            with_param_element(layer, name, index, &mut |value| *value = original);
            numeric.push((plus - minus) / (2.0 * f64::from(eps)));
        }
        params.push((name.clone(), relative_error(analytic, &numeric)));
    }
    // Leave the layer's buffers as a forward at the unperturbed input left them.
    layer.forward(input, mode)?;
    let input = if with_input { relative_error(&analytic_input, &numeric_input) } else { 0.0 };
    Ok(GradcheckReport { input, params })
}

/// Applies `update` to element `index` of the parameter called `name`.
fn with_param_element(layer: &mut dyn Layer, name: &str, index: usize, update: &mut dyn FnMut(&mut f32)) {
    layer.visit_params(&mut |param_name, param: &mut Param| {
        if param_name == name {
            update(&mut param.value.data_mut()[index]);
        }
    });
}

/// Fixed weights in [-1, 1) with both signs (a multiplicative hash, no generator state).
fn probe_weights(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(12_345) >> 8) as f32 / (1u32 << 23) as f32
                - 1.0
        })
        .collect()
}
