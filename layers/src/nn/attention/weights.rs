//! [`AttentionWeights`]: what every attention shares once its scores are computed: the mask,
//! the row softmax into weights, the context `weights·V`, and backward through both.

use keel_kernels::activation::{softmax_backward, softmax_forward};
use keel_kernels::gemm::{sgemm_strided_batched, BatchStrides, Epilogue, GemmShape, Transpose};

use super::mask::{AttentionMask, MaskDims};
use crate::error::Result;
use crate::tensor::Tensor;

/// `C_i = α·op(A_i)·op(B_i) + β·C_i` for `i < batch`, every matrix dense and the matrices of
/// each operand packed one after the other (`op(A_i)` is `(m, k)`, `op(B_i)` `(k, n)`,
/// `C_i` `(m, n)`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn batched_gemm(
    batch: usize,
    (m, n, k): (usize, usize, usize),
    (transa, transb): (Transpose, Transpose),
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) -> Result<()> {
    let shape = GemmShape::new(m, n, k).transposed(transa, transb);
    let strides = BatchStrides { a: m * k, b: k * n, c: m * n };
    sgemm_strided_batched(&shape, batch, strides, alpha, a, b, beta, c, &Epilogue::NONE)?;
    Ok(())
}

/// The scores, weights and their gradients of one attention, `(batch, q_len, k_len)` each,
/// owned and resized in place.
#[derive(Debug, Clone, Default)]
pub(crate) struct AttentionWeights {
    pub batch: usize,
    pub q_len: usize,
    pub k_len: usize,
    /// The scores before the softmax, masked; the caller fills them.
    pub scores: Tensor,
    /// `softmax(scores)` per row, all-zero rows where every score is `-inf`.
    pub weights: Tensor,
    /// `∂L/∂weights`.
    d_weights: Tensor,
    /// `∂L/∂scores` (after the mask, so blocked entries hold 0).
    pub d_scores: Tensor,
}

impl AttentionWeights {
    /// Sizes the buffers for `(batch, q_len, k_len)`; the scores are then the caller's to fill.
    pub fn resize(&mut self, batch: usize, q_len: usize, k_len: usize) {
        (self.batch, self.q_len, self.k_len) = (batch, q_len, k_len);
        self.scores.resize(&[batch, q_len, k_len]);
        self.weights.resize(&[batch, q_len, k_len]);
    }

    /// Masks the scores (checked `mask`), and overwrites the weights with their row softmax.
    /// A row whose scores are all `-inf` (every key blocked) gets zeros, not NaN.
    pub fn normalize(&mut self, mask: Option<(&AttentionMask<'_>, MaskDims)>) -> Result<()> {
        let (rows, k_len) = (self.batch * self.q_len, self.k_len);
        if let Some((mask, dims)) = mask {
            mask.apply(dims, self.q_len, k_len, self.scores.data_mut());
        }
        softmax_forward(rows, k_len, self.scores.data(), self.weights.data_mut())?;
        // The softmax of a row of -inf is 0/0: such a row attends to nothing.
        for (scores, weights) in
            self.scores.data().chunks_exact(k_len).zip(self.weights.data_mut().chunks_exact_mut(k_len))
        {
            if scores.iter().all(|&s| s == f32::NEG_INFINITY) {
                weights.fill(0.0);
            }
        }
        Ok(())
    }

    /// `context (batch, q_len, d_v) = weights · values (batch, k_len, d_v)`, overwritten.
    pub fn context(&self, values: &[f32], d_v: usize, context: &mut [f32]) -> Result<()> {
        let (b, q, k) = (self.batch, self.q_len, self.k_len);
        batched_gemm(
            b,
            (q, d_v, k),
            (Transpose::No, Transpose::No),
            1.0,
            self.weights.data(),
            values,
            0.0,
            context,
        )
    }

    /// Backward through `context = weights · values`, then the softmax: overwrites
    /// `grad_values (batch, k_len, d_v) = weightsᵀ·d_context` and the score gradient
    /// [`AttentionWeights::d_scores`] (0 wherever the weight is 0, so at blocked entries).
    pub fn backward(
        &mut self,
        values: &[f32],
        d_v: usize,
        d_context: &[f32],
        grad_values: &mut [f32],
    ) -> Result<()> {
        let (b, q, k) = (self.batch, self.q_len, self.k_len);
        // dV_i = W_iᵀ·dC_i: (k, d_v) = (q, k)ᵀ·(q, d_v).
        batched_gemm(
            b,
            (k, d_v, q),
            (Transpose::Yes, Transpose::No),
            1.0,
            self.weights.data(),
            d_context,
            0.0,
            grad_values,
        )?;
        // dW_i = dC_i·V_iᵀ: (q, k) = (q, d_v)·(k, d_v)ᵀ.
        self.d_weights.resize(&[b, q, k]);
        batched_gemm(
            b,
            (q, k, d_v),
            (Transpose::No, Transpose::Yes),
            1.0,
            d_context,
            values,
            0.0,
            self.d_weights.data_mut(),
        )?;
        // dS = W ⊙ (dW - Σ_k dW·W) per row: 0 where the weight is 0.
        self.d_scores.resize(&[b, q, k]);
        softmax_backward(b * q, k, self.weights.data(), self.d_weights.data(), self.d_scores.data_mut())?;
        Ok(())
    }
}
