//! Pooling over NCHW tensors with PyTorch semantics: max pool (with the argmax mask that
//! backward scatters through), average pool (`count_include_pad`), global average pool.
//!
//! Shapes (row-major): `x`, `dx` are `(n, c, h, w)`; `y`, `dy`, `argmax` are
//! `(n, c, out_h, out_w)` with `out = floor((size + 2·pad - kernel) / stride) + 1` per axis
//! (or PyTorch's `ceil_mode` rule), see [`Pool2dShape`]. Windows may overlap
//! (`stride < kernel`) and may reach into the implicit padding (`pad <= kernel / 2`), which
//! max pool treats as `-inf` (never chosen) and average pool as zeros.
//!
//! Every output (`y`, `argmax`) and input gradient (`dx`) is **overwritten** and never read,
//! so whatever it held (NaN included) does not leak. `n = 0` or `c = 0` is a valid no-op on
//! empty slices; a zero image size, kernel or stride is an error.
//!
//! Fast paths: planes `(n, c)` run in parallel on the caller's rayon pool above
//! [`crate::parallel::MIN_PARALLEL_ELEMENTS`], each plane computed the same way whatever the
//! split (so results do not depend on the thread count).
//!
//! - Tiled windows (`k x k`, stride `k`, no padding, none clipped: LeNet's and most CNNs'
//!   2x2 pools) take a tiled path for the instruction set of the call
//!   ([`current_isa`](crate::isa::current_isa): AVX-512F, AVX2, else portable; [`plan`] says
//!   which, a [`PoolPath`]): 2x2 windows gather even and odd columns of two input rows with permutes, 16 (8)
//!   outputs per vector, masked row tails, short rows two per vector; 3x3 windows and the
//!   portable build run plain loops. Windows do not overlap, so the backward passes write
//!   each `dx` element once, without a zero fill (max pool backward through a mask whose
//!   indices leave their windows falls back to the scatter below).
//! - Other shapes: forward passes vectorise across 8 output columns whose windows lie inside
//!   the input (`wide::f32x8`, strided lanes, strides 1 and 2 specialised at compile time);
//!   clipped windows at the edges are scalar. Average pool backward divides 8 gradients at
//!   a time and adds them window by window; max pool backward is a scalar scatter through
//!   the mask (data-dependent addresses).
//!
//! Max and average pool give the same bits as [`reference`](mod@reference) on every path
//! (same operations in the same order); global average pool sums in the vector lanes of
//! [`current_isa`](crate::isa::current_isa) (run-time dispatch: 16 lanes on AVX-512).

mod avg;
mod global;
mod max;
mod path;
mod plan;
pub mod reference;
mod shape;
mod tiled;

pub use avg::{avgpool2d_backward, avgpool2d_forward};
pub use global::{global_avgpool_backward, global_avgpool_forward};
pub use max::{maxpool2d_backward, maxpool2d_forward};
pub use path::PoolPath;
pub use plan::{plan, PoolPass};
pub use shape::Pool2dShape;

use crate::parallel::chunk_len;

/// How many planes of `work_per_plane` elements (read + written) one task takes: all of them
/// (run on the calling thread) below the parallel threshold or on one thread.
pub(crate) fn planes_per_task(planes: usize, work_per_plane: usize) -> usize {
    let work_per_plane = work_per_plane.max(1);
    (chunk_len(planes.saturating_mul(work_per_plane), work_per_plane) / work_per_plane)
        .clamp(1, planes.max(1))
}

/// Output columns one SIMD body computes.
pub(crate) const LANES: usize = 8;

/// Lanes `x[start + l·stride]`, `l = 0..8`: the same window element of 8 consecutive
/// outputs. `STRIDE` is the stride when known at compile time (1 and 2 get contiguous or
/// fixed-step loads), 0 to use the run-time `stride`. Panics if the last lane is out of
/// `x`; callers only gather windows that lie inside the input.
#[inline(always)]
pub(crate) fn gather<const STRIDE: usize>(x: &[f32], start: usize, stride: usize) -> wide::f32x8 {
    let s = if STRIDE == 0 { stride } else { STRIDE };
    let seg = &x[start..=start + (LANES - 1) * s];
    wide::f32x8::new(core::array::from_fn(|l| seg[l * s]))
}

/// Runs `body::<S>()` with the column stride as a compile-time constant for the common
/// strides 1 and 2 (so [`gather`] compiles to plain loads), and `S = 0` (run-time) otherwise.
macro_rules! with_stride {
    ($stride:expr, $body:ident ( $($arg:expr),* )) => {
        match $stride {
            1 => $body::<1>($($arg),*),
            2 => $body::<2>($($arg),*),
            _ => $body::<0>($($arg),*),
        }
    };
}
pub(crate) use with_stride;
