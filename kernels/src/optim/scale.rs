//! `grad_scale`: multiplies a gradient by a factor in place, the second pass of a gradient
//! clipping by total norm done one parameter at a time (first pass: each parameter's norm
//! from [`clip_grad_norm`](super::clip_grad_norm) with `max_norm = ∞`; then this with the
//! shared coefficient `max_norm/(total + 1e-6)`).

use rayon::prelude::*;
use wide::f32x8;

use crate::error::{argument_error, Result};
use crate::parallel::chunk_len;

/// `grad[i] *= factor` over one chunk, `f32x8` bodies and a scalar tail (the same product).
fn scale_chunk(grad: &mut [f32], factor: f32) {
    let mut vectors = grad.chunks_exact_mut(8);
    for v in &mut vectors {
        let x = f32x8::new(core::array::from_fn(|j| v[j])) * f32x8::splat(factor);
        v.copy_from_slice(&x.to_array());
    }
    for v in vectors.into_remainder() {
        *v *= factor;
    }
}

/// Multiplies every element of `grad` (any length, **updated in place**) by `factor`, in
/// parallel chunks above the threshold (element-wise, so the same bits on any thread count).
///
/// Errors: `factor` not finite. An empty `grad` is a no-op.
pub fn grad_scale(grad: &mut [f32], factor: f32) -> Result<()> {
    if !factor.is_finite() {
        return Err(argument_error("factor", "a finite factor", factor));
    }
    let chunk = chunk_len(grad.len(), 8);
    if chunk >= grad.len() {
        scale_chunk(grad, factor);
    } else {
        grad.par_chunks_mut(chunk).for_each(|g| scale_chunk(g, factor));
    }
    Ok(())
}

/// Scalar reference for [`grad_scale`].
pub mod reference {
    /// `grad[i] *= factor`.
    pub fn grad_scale(grad: &mut [f32], factor: f32) {
        grad.iter_mut().for_each(|g| *g *= factor);
    }
}
