//! [`ScaledDotProductAttention`]: `softmax(Q·Kᵀ/√d + mask)·V` on batched sequences.

use keel_kernels::gemm::Transpose;

use super::mask::AttentionMask;
use super::weights::{batched_gemm, AttentionWeights};
use crate::error::{LayerError, Result};
use crate::nn::backward_before_forward;
use crate::tensor::Tensor;

/// The sizes of one call: `batch` items of `q_len` queries and `k_len` keys of width `d`,
/// values of width `d_v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    batch: usize,
    q_len: usize,
    k_len: usize,
    d: usize,
    d_v: usize,
}

/// Scaled dot-product attention (Vaswani et al.; PyTorch's
/// `torch.nn.functional.scaled_dot_product_attention`), forward and backward:
///
/// ```text
/// scores  = scale · Q·Kᵀ (+ mask)      scale = 1/√d unless set
/// weights = softmax(scores) per row     (the attention weights, kept for a picture)
/// context = weights · V
/// ```
///
/// Both products are strided-batched GEMMs over the batch and the softmax is the kernel
/// crate's row softmax. Masked entries get weight exactly 0; a query whose every key is
/// masked gets a zero row of weights and a zero context (not NaN) and passes no gradient
/// (see [`AttentionMask`]). It has no parameters; as a building block it takes three inputs,
/// so it is not a [`Layer`](crate::nn::Layer), but it keeps the layers' rules: outputs and
/// input gradients are **overwritten**, every buffer is owned and resized in place, so a
/// steady-state step (same shapes) allocates nothing.
///
/// # Shapes
/// - query `(batch, q_len, d)`, key `(batch, k_len, d)`, value `(batch, k_len, d_v)`, every
///   size at least 1;
/// - mask (optional): `(batch or 1, q_len, k_len)`, or `(batch, k_len)` for key padding;
/// - [`output`](Self::output), the context: `(batch, q_len, d_v)`;
/// - [`attention_weights`](Self::attention_weights): `(batch, q_len, k_len)`, each row summing
///   to 1 (or all 0 when fully masked);
/// - backward's `grad_output` `(batch, q_len, d_v)` gives [`grad_query`](Self::grad_query),
///   [`grad_key`](Self::grad_key), [`grad_value`](Self::grad_value) in the shapes of their
///   inputs.
///
/// ```
/// use keel_layers::nn::ScaledDotProductAttention;
/// use keel_layers::Tensor;
///
/// // One query attending to two keys of width 2.
/// let q = Tensor::from_vec(&[1, 1, 2], vec![1.0, 0.0]).unwrap();
/// let k = Tensor::from_vec(&[1, 2, 2], vec![1.0, 0.0, -1.0, 0.0]).unwrap();
/// let v = Tensor::from_vec(&[1, 2, 1], vec![10.0, 20.0]).unwrap();
/// let mut attention = ScaledDotProductAttention::new();
/// attention.forward(&q, &k, &v, None).unwrap();
/// let w = attention.attention_weights().data();
/// assert!(w[0] > w[1] && (w[0] + w[1] - 1.0).abs() < 1e-6);
/// assert_eq!(attention.output().shape(), &[1, 1, 1]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScaledDotProductAttention {
    /// The scale of the scores; `None`: `1/√d`.
    scale: Option<f32>,
    /// The sizes of the last forward.
    dims: Option<Dims>,
    weights: AttentionWeights,
    pub(super) output: Tensor,
    grad_query: Tensor,
    grad_key: Tensor,
    grad_value: Tensor,
}

const NAME: &str = "scaled_dot_product_attention";

impl ScaledDotProductAttention {
    /// Attention with the usual scale `1/√d`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same attention with the scores scaled by `scale` instead of `1/√d` (PyTorch's
    /// `scale` argument). It is not checked: a non-finite scale makes the weights NaN.
    pub fn with_scale(self, scale: f32) -> Self {
        ScaledDotProductAttention { scale: Some(scale), ..self }
    }

    /// Checks the three inputs against each other.
    fn dims_of(query: &Tensor, key: &Tensor, value: &Tensor) -> Result<Dims> {
        let error = |what: &str, expected: String, actual: &Tensor| LayerError::Shape {
            layer: format!("{NAME} ({what})"),
            expected,
            actual: actual.shape().to_vec(),
        };
        let (batch, q_len, d) = match *query.shape() {
            [b, q, d] if b >= 1 && q >= 1 && d >= 1 => (b, q, d),
            _ => return Err(error("query", "(batch >= 1, q_len >= 1, d >= 1)".into(), query)),
        };
        let k_len = match *key.shape() {
            [b, k, kd] if b == batch && k >= 1 && kd == d => k,
            _ => return Err(error("key", format!("({batch}, k_len >= 1, {d})"), key)),
        };
        let d_v = match *value.shape() {
            [b, k, dv] if b == batch && k == k_len && dv >= 1 => dv,
            _ => return Err(error("value", format!("({batch}, {k_len}, d_v >= 1)"), value)),
        };
        Ok(Dims { batch, q_len, k_len, d, d_v })
    }

    /// The scale of the scores for keys of width `d`.
    fn scale_for(&self, d: usize) -> f32 {
        self.scale.unwrap_or_else(|| 1.0 / (d as f32).sqrt())
    }

    /// Computes the context of `query` over `key`, `value` under `mask`; it is then
    /// [`output`](Self::output), and the weights [`attention_weights`](Self::attention_weights).
    /// Errors (before anything is computed) name the input whose shape does not fit.
    pub fn forward(
        &mut self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        mask: Option<AttentionMask<'_>>,
    ) -> Result<()> {
        let dims = Self::dims_of(query, key, value)?;
        let Dims { batch, q_len, k_len, d, d_v } = dims;
        let mask = match mask {
            Some(mask) => Some((mask, mask.check(NAME, batch, q_len, k_len)?)),
            None => None,
        };
        self.dims = None;
        self.weights.resize(batch, q_len, k_len);
        // S_i = scale·Q_i·K_iᵀ: (q_len, k_len) = (q_len, d)·(k_len, d)ᵀ.
        batched_gemm(
            batch,
            (q_len, k_len, d),
            (Transpose::No, Transpose::Yes),
            self.scale_for(d),
            query.data(),
            key.data(),
            0.0,
            self.weights.scores.data_mut(),
        )?;
        self.weights.normalize(mask.as_ref().map(|(mask, dims)| (mask, *dims)))?;
        self.output.resize(&[batch, q_len, d_v]);
        self.weights.context(value.data(), d_v, self.output.data_mut())?;
        self.dims = Some(dims);
        Ok(())
    }

    /// Back-propagates `grad_output` (`∂L/∂context`) through the last forward, which must
    /// have been on these `query`, `key`, `value`: overwrites [`grad_query`](Self::grad_query),
    /// [`grad_key`](Self::grad_key), [`grad_value`](Self::grad_value). The mask is a constant.
    pub fn backward(
        &mut self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        grad_output: &Tensor,
    ) -> Result<()> {
        let dims = Self::dims_of(query, key, value)?;
        if self.dims.is_none() {
            return Err(backward_before_forward(NAME));
        }
        if self.dims != Some(dims) {
            return Err(LayerError::State(format!(
                "{NAME}: backward on inputs of shapes {:?}, {:?}, {:?} without a forward on them",
                query.shape(),
                key.shape(),
                value.shape()
            )));
        }
        let Dims { batch, q_len, k_len, d, d_v } = dims;
        if grad_output.shape() != [batch, q_len, d_v] {
            return Err(LayerError::Shape {
                layer: format!("{NAME} (gradient)"),
                expected: format!("({batch}, {q_len}, {d_v})"),
                actual: grad_output.shape().to_vec(),
            });
        }
        self.grad_value.resize(&[batch, k_len, d_v]);
        self.weights.backward(value.data(), d_v, grad_output.data(), self.grad_value.data_mut())?;
        let scale = self.scale_for(d);
        let d_scores = self.weights.d_scores.data();
        // dQ_i = scale·dS_i·K_i: (q_len, d) = (q_len, k_len)·(k_len, d).
        self.grad_query.resize(&[batch, q_len, d]);
        batched_gemm(
            batch,
            (q_len, d, k_len),
            (Transpose::No, Transpose::No),
            scale,
            d_scores,
            key.data(),
            0.0,
            self.grad_query.data_mut(),
        )?;
        // dK_i = scale·dS_iᵀ·Q_i: (k_len, d) = (q_len, k_len)ᵀ·(q_len, d).
        self.grad_key.resize(&[batch, k_len, d]);
        batched_gemm(
            batch,
            (k_len, d, q_len),
            (Transpose::Yes, Transpose::No),
            scale,
            d_scores,
            query.data(),
            0.0,
            self.grad_key.data_mut(),
        )?;
        Ok(())
    }

    /// The context of the last forward, `(batch, q_len, d_v)`.
    pub fn output(&self) -> &Tensor {
        &self.output
    }

    /// The attention weights of the last forward, `(batch, q_len, k_len)`: row `i` of item
    /// `b` says how much query `i` drew from each key.
    pub fn attention_weights(&self) -> &Tensor {
        &self.weights.weights
    }

    /// `∂L/∂query` from the last backward, `(batch, q_len, d)`.
    pub fn grad_query(&self) -> &Tensor {
        &self.grad_query
    }

    /// `∂L/∂key` from the last backward, `(batch, k_len, d)`.
    pub fn grad_key(&self) -> &Tensor {
        &self.grad_key
    }

    /// `∂L/∂value` from the last backward, `(batch, k_len, d_v)`.
    pub fn grad_value(&self) -> &Tensor {
        &self.grad_value
    }
}

/// One-shot [`ScaledDotProductAttention::forward`] (scale `1/√d`): returns the context
/// `(batch, q_len, d_v)` and the attention weights `(batch, q_len, k_len)`. It allocates
/// both; a training loop keeps a [`ScaledDotProductAttention`] instead.
///
/// # Shapes
/// As [`ScaledDotProductAttention`]: query `(batch, q_len, d)`, key `(batch, k_len, d)`,
/// value `(batch, k_len, d_v)`, mask `(batch or 1, q_len, k_len)` or `(batch, k_len)`.
pub fn scaled_dot_product_attention(
    query: &Tensor,
    key: &Tensor,
    value: &Tensor,
    mask: Option<AttentionMask<'_>>,
) -> Result<(Tensor, Tensor)> {
    let mut attention = ScaledDotProductAttention::new();
    attention.forward(query, key, value, mask)?;
    let ScaledDotProductAttention { output, weights, .. } = attention;
    Ok((output, weights.weights))
}
