//! Normalisation and regularisation layers' kernels: batch norm (train / eval / backward)
//! and inverted dropout, with PyTorch's semantics.
//!
//! Batch norm works on `(n, c, spatial)` tensors, row-major: `BatchNorm1d` on `(n, c)` is
//! `spatial = 1` (or `(n, c, l)` with `spatial = l`), `BatchNorm2d` on NCHW is
//! `spatial = h·w`. Training normalises with the batch mean and **biased** variance and
//! updates the running statistics with the **unbiased** variance (`momentum` 0.1 in
//! PyTorch); evaluation uses the running statistics. Channel statistics are reduced in f64
//! in a fixed order, so results do not depend on the thread count.
//!
//! Dropout is inverted (kept units scaled by `1/(1 - p)` in training, identity in
//! evaluation) and draws its mask from a counter-based generator, so the mask is a function
//! of `(seed, offset + index)` alone.
//!
//! In the seed's notation (samples in columns) batch norm is `Z̃ = γ·Z_norm + β` per hidden
//! unit; here a unit is a channel and samples are rows.
//!
//! Evaluation-mode ("frozen") backward: [`batchnorm_backward_eval`] in [`frozen`], with its
//! scalar reference in [`frozen::reference`].
//!
//! [`reference`](mod@reference) holds the scalar loops the fast paths are tested against.

mod batchnorm;
mod dropout;
pub mod frozen;
mod planes;
pub mod reference;

pub use batchnorm::{
    batchnorm_backward, batchnorm_backward_apply, batchnorm_backward_workspace_len,
    batchnorm_channel_squares, batchnorm_channel_sums, batchnorm_forward_eval, batchnorm_forward_train,
    batchnorm_grad_sums,
};
pub use dropout::{dropout_backward, dropout_forward, dropout_keep, dropout_scale};
pub use frozen::batchnorm_backward_eval;
