//! 2-D convolution over NCHW batches with PyTorch's `Conv2d` semantics: padding, stride,
//! dilation and channel groups.
//!
//! Shapes (row-major, see [`Conv2dShape`]): `x (n, c_in, h, w)`, weight
//! `(c_out, c_in/groups, kh, kw)`, bias `(c_out)`, `y (n, c_out, out_h, out_w)` with
//! `out_h = floor((h + 2·pad_h - dilation_h·(kh-1) - 1)/stride_h) + 1` (and the same for `w`).
//! In the seed's notation `Z = W ∗ A + b`, one output per filter and position.
//!
//! - [`conv2d_forward`] overwrites `y`; [`conv2d_backward_data`] overwrites `dx`;
//!   [`conv2d_backward_weight`] **accumulates** into `dweight` and `dbias` (parameter
//!   gradients: zero them once per step).
//! - Paths, fastest first, each chosen per pass, shape, instruction set and workspace by
//!   [`plan`] (a [`ConvPath`]), which the entry points compute and run:
//!   - images in lanes (`lanes/`): 16 images per AVX-512 vector, for small planes with
//!     stride 1, dilation 1, one group and at least 16 images;
//!   - Winograd F(4x4, 3x3) (`winograd/`): 3x3 stride-1 layers of 32 channels or more, a GEMM
//!     per point of the transform domain;
//!   - direct (`direct.rs`): stride-1 forwards summed in registers per image, their
//!     backward-data as the forward of the transposed shape with the flipped weight, and
//!     the weight gradient of layers with up to 16 output channels;
//!   - otherwise windows unfolded with [`im2col`] / [`col2im`] and multiplied with
//!     [`crate::gemm::sgemm`]; 1x1 convolutions with stride 1 and no padding skip the
//!     unfolding.
//! - Callers pass the scratch: [`conv2d_workspace_len`] says how much (one column buffer per
//!   thread when the batch is split across the pool).
//! - [`reference`](mod@reference) holds the direct 7-loop convolution and plain im2col/col2im the fast paths
//!   are tested against.

mod bias;
mod conv2d;
mod direct;
mod gathered;
mod im2col;
mod lanes;
mod plan;
pub mod reference;
mod rows;
mod shape;
mod slots;
mod transposed;
mod tuning;
mod vector;
mod winograd;

pub use conv2d::{
    conv2d_backward_data, conv2d_backward_weight, conv2d_forward, conv2d_forward_fused, conv2d_workspace_len,
};
pub use im2col::{col2im, im2col};
pub use plan::{plan, ConvPass, ConvPath};
pub use shape::Conv2dShape;
