//! `grad_scale`: multiplies a gradient by a factor in place, the second pass of a gradient
//! clipping by total norm done one parameter at a time (first pass: each parameter's norm
//! from [`clip_grad_norm`](super::clip_grad_norm) with `max_norm = ∞`; then this with the
//! shared coefficient `max_norm/(total + 1e-6)`).

use crate::error::{argument_error, Result};
use crate::isa::current_isa;
use crate::simd::{map_inplace, Scale};

/// Multiplies every element of `grad` (any length, **updated in place**) by `factor`, in
/// parallel chunks above the threshold, on the instruction set of
/// [`current_isa`] (one correctly rounded product per element, so
/// the same bits on any instruction set and thread count).
///
/// Errors: `factor` not finite. An empty `grad` is a no-op.
///
/// ```
/// use keel_kernels::optim::grad_scale;
/// # fn main() -> keel_kernels::Result<()> {
/// let mut grad = [1.0, -2.0];
/// grad_scale(&mut grad, 0.5)?;
/// assert_eq!(grad, [0.5, -1.0]);
/// # Ok(())
/// # }
/// ```
pub fn grad_scale(grad: &mut [f32], factor: f32) -> Result<()> {
    if !factor.is_finite() {
        return Err(argument_error("factor", "a finite factor", factor));
    }
    map_inplace(current_isa(), grad, &Scale(factor));
    Ok(())
}

/// Scalar reference for [`grad_scale`].
pub mod reference {
    /// `grad[i] *= factor`.
    pub fn grad_scale(grad: &mut [f32], factor: f32) {
        grad.iter_mut().for_each(|g| *g *= factor);
    }
}
