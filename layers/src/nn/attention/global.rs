//! [`GlobalAttention`]: Luong's attentional layer for a decoder, `h̃ = tanh(W_c·[c; h] + b_c)`
//! with the context `c` drawn by additive attention from an encoder's states.

use rand::rngs::StdRng;

use super::additive::AdditiveAttention;
use super::mask::AttentionMask;
use crate::error::{LayerError, Result};
use crate::nn::{backward_before_forward, ActivationKind, Dense, Init, Layer, Mode, Param};
use crate::tensor::Tensor;

/// The sizes of one call: `batch` items of `q_len` queries over `k_len` memory states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    batch: usize,
    q_len: usize,
    k_len: usize,
}

/// Global attention (Luong, Pham and Manning 2015), the layer between a decoder's recurrent
/// states and its output head: each decoder state `h_t` (the query) attends over every
/// encoder state (the *memory*, both key and value), and the context joins the state in an
/// *attentional state*:
///
/// ```text
/// c_t = Σ_s a_ts·m_s,  a_t = softmax_s(vᵀ·tanh(W_q·h_t + W_k·m_s))   (AdditiveAttention)
/// h̃_t = tanh(W_c·[c_t; h_t] + b_c)                                   (a Dense with tanh)
/// ```
///
/// The softmax head of the decoder then reads `h̃_t`. With the attention after the decoder's
/// recurrent layer (not feeding its input), a whole target sequence is one pass: teacher
/// forcing trains every step of every sequence at once.
///
/// Parameters, visited in this order: `"attention.w_query"` `(attention, query_size)`,
/// `"attention.w_key"` `(attention, memory_size)`, `"attention.v"` `(attention)` (those of
/// [`AdditiveAttention`]), `"out.weight"` `(out_size, memory_size + query_size)` (the context's
/// columns first) and `"out.bias"` `(out_size)`. Backward **accumulates** their gradients
/// and **overwrites** the input gradients; buffers are owned and resized in place.
///
/// # Shapes
/// - query `(batch, q_len, query_size)`, memory `(batch, k_len, memory_size)`, every size at
///   least 1; mask as [`AttentionMask`] (e.g. key padding `(batch, k_len)`);
/// - [`output`](Self::output) `h̃`: `(batch, q_len, out_size)`;
/// - [`attention_weights`](Self::attention_weights) `a`: `(batch, q_len, k_len)`;
/// - backward's `grad_output` `(batch, q_len, out_size)` gives
///   [`grad_query`](Self::grad_query) `(batch, q_len, query_size)` and
///   [`grad_memory`](Self::grad_memory) `(batch, k_len, memory_size)` (through the keys and
///   the values both).
///
/// ```
/// use keel_layers::{GlobalAttention, Tensor};
/// use rand::SeedableRng;
///
/// // 2 decoder states of 4 over 3 encoder states of 6, attentional states of 5.
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut layer = GlobalAttention::new(4, 6, 8, 5, &mut rng).unwrap();
/// let h = Tensor::from_vec(&[1, 2, 4], (0..8).map(|i| (i as f32 * 0.3).sin()).collect()).unwrap();
/// let memory = Tensor::from_vec(&[1, 3, 6], (0..18).map(|i| (i as f32 * 0.7).cos()).collect()).unwrap();
/// layer.forward(&h, &memory, None).unwrap();
/// assert_eq!(layer.output().shape(), &[1, 2, 5]);
/// let a = layer.attention_weights().data();
/// assert!((a[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// layer.backward(&h, &memory, &Tensor::from_vec(&[1, 2, 5], vec![1.0; 10]).unwrap()).unwrap();
/// assert_eq!(layer.grad_memory().shape(), memory.shape());
/// ```
#[derive(Debug, Clone)]
pub struct GlobalAttention {
    query_size: usize,
    memory_size: usize,
    name: String,
    attention: AdditiveAttention,
    /// `W_c`, `b_c` with the tanh fused.
    out: Dense,
    dims: Option<Dims>,
    /// `[c_t; h_t]` of every query, `(batch·q_len, memory_size + query_size)`.
    joined: Tensor,
    /// `(batch, q_len, out_size)`.
    output: Tensor,
    /// `grad_output` as the rows `out` takes, `(batch·q_len, out_size)`.
    grad_rows: Tensor,
    /// `∂L/∂c`, `(batch, q_len, memory_size)`.
    grad_context: Tensor,
    grad_query: Tensor,
    grad_memory: Tensor,
}

impl GlobalAttention {
    /// A layer for queries of `query_size` over memory states of `memory_size`, scoring with
    /// `attention_size` hidden units and giving attentional states of `out_size`; every
    /// weight Xavier-initialised, the bias zero; errors ([`LayerError::Argument`]) if a size
    /// is 0.
    pub fn new(
        query_size: usize,
        memory_size: usize,
        attention_size: usize,
        out_size: usize,
        rng: &mut StdRng,
    ) -> Result<Self> {
        let attention = AdditiveAttention::new(query_size, memory_size, attention_size, Init::Xavier, rng)?;
        let out = Dense::new(memory_size + query_size, out_size, Init::Xavier, rng)?
            .with_activation(ActivationKind::Tanh);
        Ok(GlobalAttention {
            query_size,
            memory_size,
            name: format!("global_attention({query_size}, {memory_size} -> {attention_size} -> {out_size})"),
            attention,
            out,
            dims: None,
            joined: Tensor::default(),
            output: Tensor::default(),
            grad_rows: Tensor::default(),
            grad_context: Tensor::default(),
            grad_query: Tensor::default(),
            grad_memory: Tensor::default(),
        })
    }

    /// A short description with the sizes, used in error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the query and the memory against the layer and each other.
    fn dims_of(&self, query: &Tensor, memory: &Tensor) -> Result<Dims> {
        let error = |what: &str, expected: String, actual: &Tensor| LayerError::Shape {
            layer: format!("{} ({what})", self.name),
            expected,
            actual: actual.shape().to_vec(),
        };
        let (batch, q_len) = match *query.shape() {
            [b, q, d] if b >= 1 && q >= 1 && d == self.query_size => (b, q),
            _ => return Err(error("query", format!("(batch >= 1, q_len >= 1, {})", self.query_size), query)),
        };
        match *memory.shape() {
            [b, k, d] if b == batch && k >= 1 && d == self.memory_size => Ok(Dims { batch, q_len, k_len: k }),
            _ => Err(error("memory", format!("({batch}, k_len >= 1, {})", self.memory_size), memory)),
        }
    }

    /// Computes the attentional states of `query` over `memory` under `mask`; they are then
    /// [`output`](Self::output), the weights [`attention_weights`](Self::attention_weights).
    pub fn forward(
        &mut self,
        query: &Tensor,
        memory: &Tensor,
        mask: Option<AttentionMask<'_>>,
    ) -> Result<()> {
        let dims = self.dims_of(query, memory)?;
        let Dims { batch, q_len, .. } = dims;
        let (m, q) = (self.memory_size, self.query_size);
        self.dims = None;
        self.attention.forward(query, memory, memory, mask)?;
        // Each row [c_t; h_t].
        self.joined.resize(&[batch * q_len, m + q]);
        let contexts = self.attention.output().data().chunks_exact(m);
        for ((row, c), h) in
            self.joined.data_mut().chunks_exact_mut(m + q).zip(contexts).zip(query.data().chunks_exact(q))
        {
            row[..m].copy_from_slice(c);
            row[m..].copy_from_slice(h);
        }
        // h̃ = tanh(W_c·[c; h] + b_c); a Dense does not depend on the mode.
        self.out.forward(&self.joined, Mode::Train)?;
        let out = self.out.output();
        self.output.resize(&[batch, q_len, out.shape()[1]]);
        self.output.data_mut().copy_from_slice(out.data());
        self.dims = Some(dims);
        Ok(())
    }

    /// Back-propagates `grad_output` (`∂L/∂h̃`) through the last forward, which must have been
    /// on this `query` and `memory`: **accumulates** the parameter gradients, **overwrites**
    /// [`grad_query`](Self::grad_query) and [`grad_memory`](Self::grad_memory).
    pub fn backward(&mut self, query: &Tensor, memory: &Tensor, grad_output: &Tensor) -> Result<()> {
        let dims = self.dims_of(query, memory)?;
        if self.dims.is_none() {
            return Err(backward_before_forward(&self.name));
        }
        if self.dims != Some(dims) {
            return Err(LayerError::State(format!(
                "{}: backward on a query {:?} and a memory {:?} without a forward on them",
                self.name,
                query.shape(),
                memory.shape()
            )));
        }
        let Dims { batch, q_len, .. } = dims;
        let (m, q) = (self.memory_size, self.query_size);
        let out_size = self.output.shape()[2];
        if grad_output.shape() != [batch, q_len, out_size] {
            return Err(LayerError::Shape {
                layer: format!("{} (gradient)", self.name),
                expected: format!("({batch}, {q_len}, {out_size})"),
                actual: grad_output.shape().to_vec(),
            });
        }
        self.grad_rows.resize(&[batch * q_len, out_size]);
        self.grad_rows.data_mut().copy_from_slice(grad_output.data());
        self.out.backward(&self.joined, &self.grad_rows)?;
        // Split ∂L/∂[c; h]: the context's part goes back through the attention, the query's
        // part is its direct gradient.
        self.grad_context.resize(&[batch, q_len, m]);
        self.grad_query.resize(query.shape());
        let joined_grads = self.out.grad_input().data().chunks_exact(m + q);
        for ((g, dc), dh) in joined_grads
            .zip(self.grad_context.data_mut().chunks_exact_mut(m))
            .zip(self.grad_query.data_mut().chunks_exact_mut(q))
        {
            dc.copy_from_slice(&g[..m]);
            dh.copy_from_slice(&g[m..]);
        }
        self.attention.backward(query, memory, memory, &self.grad_context)?;
        let through_scores = self.attention.grad_query().data();
        self.grad_query.data_mut().iter_mut().zip(through_scores).for_each(|(g, &a)| *g += a);
        // The memory is both key and value.
        self.grad_memory.resize(memory.shape());
        let (dk, dv) = (self.attention.grad_key().data(), self.attention.grad_value().data());
        for ((g, &k), &v) in self.grad_memory.data_mut().iter_mut().zip(dk).zip(dv) {
            *g = k + v;
        }
        Ok(())
    }

    /// Calls `visit` with each parameter and its name (see the type's docs for the order).
    pub fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        visit("attention.w_query", &mut self.attention.w_query);
        visit("attention.w_key", &mut self.attention.w_key);
        visit("attention.v", &mut self.attention.v);
        visit("out.weight", &mut self.out.weight);
        visit("out.bias", &mut self.out.bias);
    }

    /// The attentional states `h̃` of the last forward, `(batch, q_len, out_size)`.
    pub fn output(&self) -> &Tensor {
        &self.output
    }

    /// The attention weights of the last forward, `(batch, q_len, k_len)`: row `t` of item
    /// `b` says how much decoder step `t` drew from each memory state.
    pub fn attention_weights(&self) -> &Tensor {
        self.attention.attention_weights()
    }

    /// `∂L/∂query` from the last backward, `(batch, q_len, query_size)`.
    pub fn grad_query(&self) -> &Tensor {
        &self.grad_query
    }

    /// `∂L/∂memory` from the last backward, `(batch, k_len, memory_size)`.
    pub fn grad_memory(&self) -> &Tensor {
        &self.grad_memory
    }
}
