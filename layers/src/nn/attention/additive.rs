//! [`AdditiveAttention`]: Bahdanau's `score = vᵀ·tanh(W_q·q + W_k·k)`, with its parameters.

use keel_kernels::activation::{tanh_backward, tanh_forward_inplace};
use keel_kernels::gemm::Transpose;
use rand::rngs::StdRng;

use super::mask::AttentionMask;
use super::weights::{batched_gemm, AttentionWeights};
use crate::error::{LayerError, Result};
use crate::nn::{backward_before_forward, Init, Param};
use crate::tensor::Tensor;

/// The sizes of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    batch: usize,
    q_len: usize,
    k_len: usize,
    d_v: usize,
}

/// Additive attention (Bahdanau, Cho and Bengio 2015), the score of query `i` for key `j`
/// a small network instead of a dot product:
///
/// ```text
/// score[i, j] = vᵀ·tanh(W_q·q_i + W_k·k_j)
/// weights     = softmax(score + mask) per row
/// context     = weights · V
/// ```
///
/// The projections are one GEMM each over all positions, the `tanh` is the kernel's, the
/// score one matrix-vector product over every `(i, j)` pair, and the rest (mask, softmax,
/// fully masked rows giving zeros, context) is what
/// [`ScaledDotProductAttention`](crate::nn::ScaledDotProductAttention) does. In the course's encoder-decoder the query is
/// the decoder state `s_{t-1}` and the keys and values are the encoder states `a⟨t'⟩`.
///
/// Parameters, visited in this order: `"w_query"` `(hidden, query_size)`, `"w_key"`
/// `(hidden, key_size)`, `"v"` `(hidden)`; no biases. Backward **accumulates** their
/// gradients and **overwrites** the input gradients. It keeps
/// `(batch, q_len, k_len, hidden)` activations for backward: memory grows with both lengths.
///
/// # Shapes
/// - query `(batch, q_len, query_size)`, key `(batch, k_len, key_size)`, value
///   `(batch, k_len, d_v)`, every size at least 1; mask as [`AttentionMask`];
/// - [`output`](Self::output), the context: `(batch, q_len, d_v)`;
/// - [`attention_weights`](Self::attention_weights): `(batch, q_len, k_len)`;
/// - backward's `grad_output` `(batch, q_len, d_v)` gives [`grad_query`](Self::grad_query),
///   [`grad_key`](Self::grad_key), [`grad_value`](Self::grad_value) in the shapes of their
///   inputs.
///
/// ```
/// use keel_layers::nn::{AdditiveAttention, AttentionMask, Init};
/// use keel_layers::Tensor;
/// use rand::SeedableRng;
///
/// // A decoder state of 3 attending over 4 encoder states of 5, the last one padding.
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut attention = AdditiveAttention::new(3, 5, 8, Init::Xavier, &mut rng).unwrap();
/// let s = Tensor::from_vec(&[1, 1, 3], vec![0.5, -1.0, 2.0]).unwrap();
/// let a = Tensor::from_vec(&[1, 4, 5], (0..20).map(|i| (i as f32 * 0.7).sin()).collect()).unwrap();
/// let padded = [false, false, false, true];
/// attention.forward(&s, &a, &a, Some(AttentionMask::KeyPadding(&padded))).unwrap();
/// let w = attention.attention_weights().data();
/// assert_eq!(w[3], 0.0);
/// assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// assert_eq!(attention.output().shape(), &[1, 1, 5]);
/// ```
#[derive(Debug, Clone)]
pub struct AdditiveAttention {
    query_size: usize,
    key_size: usize,
    hidden_size: usize,
    /// [`AdditiveAttention::name`], built once (a forward allocates nothing).
    name: String,
    /// `W_q (hidden, query_size)`.
    pub w_query: Param,
    /// `W_k (hidden, key_size)`.
    pub w_key: Param,
    /// `v (hidden)`.
    pub v: Param,
    dims: Option<Dims>,
    /// `Q·W_qᵀ (batch·q_len, hidden)`, then its gradient.
    proj_query: Tensor,
    /// `K·W_kᵀ (batch·k_len, hidden)`, then its gradient.
    proj_key: Tensor,
    /// `tanh(W_q·q_i + W_k·k_j)`, `(batch, q_len, k_len, hidden)`.
    hidden: Tensor,
    /// `∂L/∂hidden`, then `∂L/∂(W_q·q_i + W_k·k_j)`, same shape.
    d_hidden: Tensor,
    d_pre: Tensor,
    weights: AttentionWeights,
    output: Tensor,
    grad_query: Tensor,
    grad_key: Tensor,
    grad_value: Tensor,
}

impl AdditiveAttention {
    /// Attention from queries of `query_size` and keys of `key_size` through `hidden_size`
    /// units, every parameter drawn by `init` (fan-in the input width, fan-out `hidden_size`;
    /// `v` with fan-in `hidden_size`, fan-out 1); errors ([`LayerError::Argument`]) if a size is
    /// 0.
    pub fn new(
        query_size: usize,
        key_size: usize,
        hidden_size: usize,
        init: Init,
        rng: &mut StdRng,
    ) -> Result<Self> {
        if query_size == 0 || key_size == 0 || hidden_size == 0 {
            return Err(LayerError::Argument {
                owner: "additive_attention".into(),
                what: "(query_size, key_size, hidden_size)".into(),
                expected: "sizes of at least 1".into(),
                actual: format!("({query_size}, {key_size}, {hidden_size})"),
            });
        }
        let param = |rows: usize, cols: usize, fan_in: usize, fan_out: usize, rng: &mut StdRng| {
            let mut value = if rows == 1 { Tensor::zeros(&[cols]) } else { Tensor::zeros(&[rows, cols]) };
            init.fill(value.data_mut(), fan_in, fan_out, rng);
            Param::new(value)
        };
        Ok(AdditiveAttention {
            query_size,
            key_size,
            hidden_size,
            name: format!("additive_attention({query_size}, {key_size} -> {hidden_size})"),
            w_query: param(hidden_size, query_size, query_size, hidden_size, rng),
            w_key: param(hidden_size, key_size, key_size, hidden_size, rng),
            v: param(1, hidden_size, hidden_size, 1, rng),
            dims: None,
            proj_query: Tensor::default(),
            proj_key: Tensor::default(),
            hidden: Tensor::default(),
            d_hidden: Tensor::default(),
            d_pre: Tensor::default(),
            weights: AttentionWeights::default(),
            output: Tensor::default(),
            grad_query: Tensor::default(),
            grad_key: Tensor::default(),
            grad_value: Tensor::default(),
        })
    }

    /// A short description with the sizes, used in error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the three inputs against the layer and each other.
    fn dims_of(&self, query: &Tensor, key: &Tensor, value: &Tensor) -> Result<Dims> {
        let error = |what: &str, expected: String, actual: &Tensor| LayerError::Shape {
            layer: format!("{} ({what})", self.name()),
            expected,
            actual: actual.shape().to_vec(),
        };
        let (batch, q_len) = match *query.shape() {
            [b, q, d] if b >= 1 && q >= 1 && d == self.query_size => (b, q),
            _ => return Err(error("query", format!("(batch >= 1, q_len >= 1, {})", self.query_size), query)),
        };
        let k_len = match *key.shape() {
            [b, k, d] if b == batch && k >= 1 && d == self.key_size => k,
            _ => return Err(error("key", format!("({batch}, k_len >= 1, {})", self.key_size), key)),
        };
        let d_v = match *value.shape() {
            [b, k, dv] if b == batch && k == k_len && dv >= 1 => dv,
            _ => return Err(error("value", format!("({batch}, {k_len}, d_v >= 1)"), value)),
        };
        Ok(Dims { batch, q_len, k_len, d_v })
    }

    /// Computes the context of `query` over `key`, `value` under `mask`; it is then
    /// [`output`](Self::output), the weights [`attention_weights`](Self::attention_weights).
    pub fn forward(
        &mut self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        mask: Option<AttentionMask<'_>>,
    ) -> Result<()> {
        let dims = self.dims_of(query, key, value)?;
        let Dims { batch, q_len, k_len, d_v } = dims;
        let mask = match mask {
            Some(mask) => Some((mask, mask.check(&self.name, batch, q_len, k_len)?)),
            None => None,
        };
        self.dims = None;
        let h = self.hidden_size;
        let no = (Transpose::No, Transpose::No);
        let nt = (Transpose::No, Transpose::Yes);
        // The projections of every position: (batch·len, size)·W(hidden, size)ᵀ.
        self.proj_query.resize(&[batch * q_len, h]);
        let w_query = self.w_query.value.data();
        batched_gemm(
            1,
            (batch * q_len, h, self.query_size),
            nt,
            1.0,
            query.data(),
            w_query,
            0.0,
            self.proj_query.data_mut(),
        )?;
        self.proj_key.resize(&[batch * k_len, h]);
        let w_key = self.w_key.value.data();
        batched_gemm(
            1,
            (batch * k_len, h, self.key_size),
            nt,
            1.0,
            key.data(),
            w_key,
            0.0,
            self.proj_key.data_mut(),
        )?;
        // hidden[b, i, j] = tanh(W_q·q_i + W_k·k_j).
        self.hidden.resize(&[batch, q_len, k_len, h]);
        let pairs = self.hidden.data_mut().chunks_exact_mut(h);
        let (pq, pk) = (self.proj_query.data(), self.proj_key.data());
        for (pair, out) in pairs.enumerate() {
            let (b, i, j) = (pair / (q_len * k_len), pair / k_len % q_len, pair % k_len);
            let (qi, kj) = (&pq[(b * q_len + i) * h..][..h], &pk[(b * k_len + j) * h..][..h]);
            out.iter_mut().zip(qi.iter().zip(kj)).for_each(|(o, (&x, &y))| *o = x + y);
        }
        tanh_forward_inplace(self.hidden.data_mut());
        // score = hidden·v over every pair: (batch·q_len·k_len, hidden)·(hidden, 1).
        self.weights.resize(batch, q_len, k_len);
        let pairs = batch * q_len * k_len;
        let (hidden, v) = (self.hidden.data(), self.v.value.data());
        batched_gemm(1, (pairs, 1, h), no, 1.0, hidden, v, 0.0, self.weights.scores.data_mut())?;
        self.weights.normalize(mask.as_ref().map(|(mask, dims)| (mask, *dims)))?;
        self.output.resize(&[batch, q_len, d_v]);
        self.weights.context(value.data(), d_v, self.output.data_mut())?;
        self.dims = Some(dims);
        Ok(())
    }

    /// Back-propagates `grad_output` (`∂L/∂context`) through the last forward, which must
    /// have been on these `query`, `key`, `value`: **accumulates** the gradients of
    /// `w_query`, `w_key`, `v`, **overwrites** [`grad_query`](Self::grad_query),
    /// [`grad_key`](Self::grad_key), [`grad_value`](Self::grad_value).
    pub fn backward(
        &mut self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        grad_output: &Tensor,
    ) -> Result<()> {
        let dims = self.dims_of(query, key, value)?;
        if self.dims.is_none() {
            return Err(backward_before_forward(&self.name));
        }
        if self.dims != Some(dims) {
            return Err(LayerError::State(format!(
                "{}: backward on inputs of shapes {:?}, {:?}, {:?} without a forward on them",
                self.name(),
                query.shape(),
                key.shape(),
                value.shape()
            )));
        }
        let Dims { batch, q_len, k_len, d_v } = dims;
        if grad_output.shape() != [batch, q_len, d_v] {
            return Err(LayerError::Shape {
                layer: format!("{} (gradient)", self.name()),
                expected: format!("({batch}, {q_len}, {d_v})"),
                actual: grad_output.shape().to_vec(),
            });
        }
        let h = self.hidden_size;
        let pairs = batch * q_len * k_len;
        let no = (Transpose::No, Transpose::No);
        let tn = (Transpose::Yes, Transpose::No);
        self.grad_value.resize(&[batch, k_len, d_v]);
        self.weights.backward(value.data(), d_v, grad_output.data(), self.grad_value.data_mut())?;
        let d_scores = self.weights.d_scores.data();
        // dv += hiddenᵀ·dS: (hidden, 1) = (pairs, hidden)ᵀ·(pairs, 1).
        let hidden = self.hidden.data();
        batched_gemm(1, (h, 1, pairs), tn, 1.0, hidden, d_scores, 1.0, self.v.grad.data_mut())?;
        // ∂L/∂hidden = dS·vᵀ (an outer product), then through tanh: ⊙ (1 - hidden²).
        self.d_hidden.resize(&[batch, q_len, k_len, h]);
        let v = self.v.value.data();
        batched_gemm(1, (pairs, h, 1), no, 1.0, d_scores, v, 0.0, self.d_hidden.data_mut())?;
        self.d_pre.resize(&[batch, q_len, k_len, h]);
        tanh_backward(hidden, self.d_hidden.data(), self.d_pre.data_mut())?;
        // The pre-activation is W_q·q_i + W_k·k_j: its gradient sums over j into the query's
        // projection and over i into the key's (the projections' buffers now hold these).
        let (d_pq, d_pk) = (self.proj_query.data_mut(), self.proj_key.data_mut());
        d_pq.fill(0.0);
        d_pk.fill(0.0);
        for (pair, g) in self.d_pre.data().chunks_exact(h).enumerate() {
            let (b, i, j) = (pair / (q_len * k_len), pair / k_len % q_len, pair % k_len);
            let qi = &mut d_pq[(b * q_len + i) * h..][..h];
            qi.iter_mut().zip(g).for_each(|(sum, &x)| *sum += x);
            let kj = &mut d_pk[(b * k_len + j) * h..][..h];
            kj.iter_mut().zip(g).for_each(|(sum, &x)| *sum += x);
        }
        let (d_pq, d_pk) = (self.proj_query.data(), self.proj_key.data());
        // dW_q += dPqᵀ·Q: (hidden, query_size); dW_k += dPkᵀ·K.
        let (dq_rows, dk_rows) = (batch * q_len, batch * k_len);
        batched_gemm(
            1,
            (h, self.query_size, dq_rows),
            tn,
            1.0,
            d_pq,
            query.data(),
            1.0,
            self.w_query.grad.data_mut(),
        )?;
        batched_gemm(
            1,
            (h, self.key_size, dk_rows),
            tn,
            1.0,
            d_pk,
            key.data(),
            1.0,
            self.w_key.grad.data_mut(),
        )?;
        // dQ = dPq·W_q, dK = dPk·W_k.
        self.grad_query.resize(&[batch, q_len, self.query_size]);
        let w_query = self.w_query.value.data();
        batched_gemm(
            1,
            (dq_rows, self.query_size, h),
            no,
            1.0,
            d_pq,
            w_query,
            0.0,
            self.grad_query.data_mut(),
        )?;
        self.grad_key.resize(&[batch, k_len, self.key_size]);
        let w_key = self.w_key.value.data();
        batched_gemm(1, (dk_rows, self.key_size, h), no, 1.0, d_pk, w_key, 0.0, self.grad_key.data_mut())?;
        Ok(())
    }

    /// Calls `visit` with each parameter and its name: `"w_query"`, `"w_key"`, `"v"`.
    pub fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        visit("w_query", &mut self.w_query);
        visit("w_key", &mut self.w_key);
        visit("v", &mut self.v);
    }

    /// The context of the last forward, `(batch, q_len, d_v)`.
    pub fn output(&self) -> &Tensor {
        &self.output
    }

    /// The attention weights of the last forward, `(batch, q_len, k_len)`.
    pub fn attention_weights(&self) -> &Tensor {
        &self.weights.weights
    }

    /// `∂L/∂query` from the last backward, `(batch, q_len, query_size)`.
    pub fn grad_query(&self) -> &Tensor {
        &self.grad_query
    }

    /// `∂L/∂key` from the last backward, `(batch, k_len, key_size)`.
    pub fn grad_key(&self) -> &Tensor {
        &self.grad_key
    }

    /// `∂L/∂value` from the last backward, `(batch, k_len, d_v)`.
    pub fn grad_value(&self) -> &Tensor {
        &self.grad_value
    }
}
