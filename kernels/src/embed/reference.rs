//! Plain scalar references of the embedding kernels: one loop per formula, in f32, in the
//! order the docs of the fast kernels give. The ground truth of their tests (which agree to
//! rounding: the fast paths sum dot products in vector lanes) and their bench baseline.
//!
//! They take what the checked kernels accept (lengths and indices already right) and panic
//! on anything else.

use super::cosine::cosine;
use super::glove::{bias_step, GloveConfig};
use super::sgns::{sigmoid, softplus};

/// `Σ a[e]·b[e]`, left to right.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| x * y).sum()
}

/// Scalar [`embedding_forward`](super::embedding_forward).
pub fn embedding_forward(weight: &[f32], dim: usize, indices: &[u32], out: &mut [f32]) {
    for (p, &index) in indices.iter().enumerate() {
        for e in 0..dim {
            out[p * dim + e] = weight[index as usize * dim + e];
        }
    }
}

/// Scalar [`embedding_backward`](super::embedding_backward).
pub fn embedding_backward(
    indices: &[u32],
    dout: &[f32],
    dim: usize,
    padding_idx: Option<u32>,
    dweight: &mut [f32],
) {
    for (p, &index) in indices.iter().enumerate() {
        if Some(index) == padding_idx {
            continue;
        }
        for e in 0..dim {
            dweight[index as usize * dim + e] += dout[p * dim + e];
        }
    }
}

/// Scalar [`sgns_step`](super::sgns_step); `work` is overwritten as there.
pub fn sgns_step(center: &mut [f32], out: &mut [f32], targets: &[u32], lr: f32, work: &mut [f32]) -> f32 {
    let dim = center.len();
    work.fill(0.0);
    let mut loss = 0.0;
    for (k, &target) in targets.iter().enumerate() {
        let row = &mut out[target as usize * dim..][..dim];
        let score = dot(center, row);
        let label = if k == 0 { 1.0 } else { 0.0 };
        loss += if k == 0 { softplus(-score) } else { softplus(score) };
        let g = lr * (label - sigmoid(score));
        for e in 0..dim {
            work[e] += g * row[e];
            row[e] += g * center[e];
        }
    }
    for e in 0..dim {
        center[e] += work[e];
    }
    loss
}

/// Scalar [`glove_step`](super::glove_step).
pub fn glove_step(
    cfg: &GloveConfig,
    x: f32,
    word: &mut [f32],
    context: &mut [f32],
    gradsq_word: &mut [f32],
    gradsq_context: &mut [f32],
) -> f32 {
    let dim = word.len() - 1;
    let diff = dot(&word[..dim], &context[..dim]) + word[dim] + context[dim] - x.ln();
    let fdiff = cfg.weight(x) * diff;
    let cost = 0.5 * fdiff * diff;
    for e in 0..dim {
        let t_w = cfg.lr * (fdiff * context[e]).clamp(-cfg.grad_clip, cfg.grad_clip);
        let t_c = cfg.lr * (fdiff * word[e]).clamp(-cfg.grad_clip, cfg.grad_clip);
        word[e] -= t_w / gradsq_word[e].sqrt();
        context[e] -= t_c / gradsq_context[e].sqrt();
        gradsq_word[e] += t_w * t_w;
        gradsq_context[e] += t_c * t_c;
    }
    let (bw, bc) = (&mut word[dim], &mut context[dim]);
    bias_step(cfg.lr, fdiff, bw, bc, &mut gradsq_word[dim], &mut gradsq_context[dim]);
    cost
}

/// Scalar [`cosine_similarity`](super::cosine_similarity).
pub fn cosine_similarity(query: &[f32], matrix: &[f32], out: &mut [f32]) {
    let dim = query.len();
    let query_norm = dot(query, query).sqrt();
    for (row, out) in matrix.chunks_exact(dim).zip(out.iter_mut()) {
        *out = cosine(dot(query, row), query_norm, dot(row, row).sqrt());
    }
}
