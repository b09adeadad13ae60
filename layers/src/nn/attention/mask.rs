//! [`AttentionMask`]: which keys each query may attend to, and its shape check.

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Which keys each query may attend to, in one of PyTorch's three forms. A mask of
/// `(1, q_len, k_len)` is shared by every item of the batch.
///
/// A blocked entry's score becomes `-inf`, so its weight is exactly 0. A query whose every key
/// is blocked (every score `-inf`) gets an all-zero row of weights and a zero context, not the
/// NaN a softmax of `-inf` everywhere would give, and passes no gradient.
///
/// # Shapes
/// - [`AttentionMask::Allow`]: `(batch or 1, q_len, k_len)` booleans, row-major;
/// - [`AttentionMask::Additive`]: a tensor of shape `(batch or 1, q_len, k_len)`;
/// - [`AttentionMask::KeyPadding`]: `(batch, k_len)` booleans, row-major.
#[derive(Debug, Clone, Copy)]
pub enum AttentionMask<'a> {
    /// `true` where the query may attend to the key (PyTorch's boolean `attn_mask` of
    /// `scaled_dot_product_attention`); `false` blocks.
    Allow(&'a [bool]),
    /// Added to the scaled scores before the softmax (PyTorch's float `attn_mask`): 0 keeps,
    /// `-inf` blocks, a finite value biases. It is a constant: no gradient flows into it.
    Additive(&'a Tensor),
    /// `true` marks a padded key that no query of that batch item attends to (PyTorch's
    /// `key_padding_mask`).
    KeyPadding(&'a [bool]),
}

/// The mask's layout, checked against the attention's shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaskDims {
    /// Whether the mask has one slice per batch item (else one shared slice).
    pub per_item: bool,
}

impl AttentionMask<'_> {
    /// Checks the mask against `batch`, `q_len`, `k_len`; the error names `layer`, what was
    /// expected and what came.
    pub(crate) fn check(&self, layer: &str, batch: usize, q_len: usize, k_len: usize) -> Result<MaskDims> {
        let plane = q_len * k_len;
        let error = |expected: String, actual: Vec<usize>| LayerError::Shape {
            layer: format!("{layer} (mask)"),
            expected,
            actual,
        };
        match *self {
            AttentionMask::Allow(allow) => {
                if allow.len() == batch * plane {
                    Ok(MaskDims { per_item: true })
                } else if allow.len() == plane {
                    Ok(MaskDims { per_item: false })
                } else {
                    Err(error(
                        format!(
                            "a boolean mask of ({batch} or 1, {q_len}, {k_len}): {} or {plane} values",
                            batch * plane
                        ),
                        vec![allow.len()],
                    ))
                }
            }
            AttentionMask::Additive(mask) => match *mask.shape() {
                [b, q, k] if (b == batch || b == 1) && q == q_len && k == k_len => {
                    Ok(MaskDims { per_item: b == batch })
                }
                _ => Err(error(
                    format!("an additive mask of ({batch} or 1, {q_len}, {k_len})"),
                    mask.shape().to_vec(),
                )),
            },
            AttentionMask::KeyPadding(padded) => {
                if padded.len() == batch * k_len {
                    Ok(MaskDims { per_item: true })
                } else {
                    Err(error(
                        format!("a key padding mask of ({batch}, {k_len}): {} values", batch * k_len),
                        vec![padded.len()],
                    ))
                }
            }
        }
    }

    /// Applies the mask to `scores` `(batch, q_len, k_len)`: blocked entries become `-inf`,
    /// an additive mask is added. `dims` is what [`AttentionMask::check`] returned.
    pub(crate) fn apply(&self, dims: MaskDims, q_len: usize, k_len: usize, scores: &mut [f32]) {
        let plane = q_len * k_len;
        for (item, item_scores) in scores.chunks_exact_mut(plane).enumerate() {
            let slice = if dims.per_item { item } else { 0 };
            match *self {
                AttentionMask::Allow(allow) => {
                    let allow = &allow[slice * plane..(slice + 1) * plane];
                    for (score, &allowed) in item_scores.iter_mut().zip(allow) {
                        if !allowed {
                            *score = f32::NEG_INFINITY;
                        }
                    }
                }
                AttentionMask::Additive(mask) => {
                    let mask = &mask.data()[slice * plane..(slice + 1) * plane];
                    item_scores.iter_mut().zip(mask).for_each(|(score, &m)| *score += m);
                }
                AttentionMask::KeyPadding(padded) => {
                    let padded = &padded[item * k_len..(item + 1) * k_len];
                    for row in item_scores.chunks_exact_mut(k_len) {
                        for (score, &pad) in row.iter_mut().zip(padded) {
                            if pad {
                                *score = f32::NEG_INFINITY;
                            }
                        }
                    }
                }
            }
        }
    }
}
