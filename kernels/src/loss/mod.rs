//! Losses with their last activation fused in: softmax + cross-entropy (class-index or
//! probability targets), sigmoid + binary cross-entropy on logits, and mean squared error.
//!
//! Conventions:
//! - **Forward** returns the mean loss over the batch (PyTorch's default `reduction='mean'`)
//!   and saves what backward needs (the probabilities, or the residual `pred - target`),
//!   **overwriting** that buffer.
//! - **Backward** turns it into the gradient of that mean in one pass (`(Ŷ - Y)/batch` for
//!   the cross-entropies, `2·(pred - target)/n` for MSE), **overwriting** the gradient; the
//!   upstream gradient of the loss is taken as 1 (scale the result for another).
//! - **Shapes**: the cross-entropies take `(batch, classes)` row-major logits (BCE: any
//!   shape, element-wise), with `batch >= 1` (a mean of nothing is an error, not NaN);
//!   class targets are `u32` indices below `classes`.
//!
//! Numerics: stable for any finite input (log-sum-exp for the cross-entropy,
//! `max(z,0) - z·y + ln(1 + e^{-|z|})` for BCE); a NaN input gives a NaN loss, never 0.
//! The batch sums run over fixed chunks in a fixed tree, in `f64`, so a loss is
//! deterministic for a given thread count. Every kernel runs on the instruction set of
//! [`current_isa`](crate::isa::current_isa).
//! [`reference`](mod@reference) holds the scalar versions the tests compare with.

mod cross_entropy;
mod mse;
pub mod reference;
mod sum;

pub use cross_entropy::{
    bce_with_logits_backward, bce_with_logits_forward, softmax_cross_entropy_backward,
    softmax_cross_entropy_forward, softmax_cross_entropy_soft_backward, softmax_cross_entropy_soft_forward,
};
pub use mse::{mse_backward, mse_forward};
