//! Attention for sequence models (an encoder-decoder's context): a query attends to a
//! sequence of keys, and the context is the values weighted by the softmax of the scores.
//!
//! - [`ScaledDotProductAttention`] (and the one-shot [`scaled_dot_product_attention`]):
//!   scores `Q·Kᵀ/√d`, no parameters;
//! - [`AdditiveAttention`] (Bahdanau): scores `vᵀ·tanh(W_q·q + W_k·k)`, with its parameters;
//! - [`GlobalAttention`] (Luong): a decoder's layer joining each state with its additive
//!   context over the encoder's states, `tanh(W_c·[c; h] + b_c)`;
//! - [`AttentionMask`]: boolean, additive (`-inf`) or key-padding masks.
//!
//! # Shapes
//! Batch first: query `(batch, q_len, d)`, key `(batch, k_len, d)`, value
//! `(batch, k_len, d_v)`; context `(batch, q_len, d_v)`; attention weights
//! `(batch, q_len, k_len)`, readable after each forward (to draw them).
//!
//! The scores of every attention go through the same tail (`weights.rs`): mask, row
//! softmax (the kernel crate's), zeroing of fully masked rows, and the context GEMM, and
//! backward through them; one concern per file.

mod additive;
mod global;
mod mask;
mod scaled_dot_product;
mod weights;

#[cfg(test)]
mod tests;

pub use additive::AdditiveAttention;
pub use global::GlobalAttention;
pub use mask::AttentionMask;
pub use scaled_dot_product::{scaled_dot_product_attention, ScaledDotProductAttention};
