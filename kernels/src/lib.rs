//! # keel-kernels
//!
//! The numerics of keel: SIMD, multi-threaded CPU kernels for deep learning on row-major
//! `f32` slices. Slices in, slices out, shapes documented on every function, no hidden
//! allocation in hot paths (callers pass workspace), PyTorch semantics.
//!
//! Conventions shared by every kernel:
//! - **Checked API**: each public kernel checks slice lengths and shape arguments and returns
//!   a [`KernelError`] naming the argument, what was expected and what came. A kernel never
//!   reads or writes out of bounds on input its checked API accepted.
//! - **Overwrite vs accumulate**: outputs and input gradients are overwritten (never read,
//!   so NaN already in them does not leak); parameter gradients are accumulated (`+=`), so
//!   a training step zeroes them once and several backward passes may add to them.
//! - **References**: each kernel family has a `reference` module of plain scalar loops, the
//!   ground truth its fast path is tested against and a baseline in the benches.
//! - **Threads**: parallel parts run on the caller's rayon pool, only above the thresholds in
//!   [`parallel`]; the same thread count gives the same bits.

pub mod activation;
pub mod conv;
pub mod embed;
pub mod error;
pub mod gemm;
pub mod isa;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod parallel;
pub mod pool;
pub mod rnn;
pub mod simd;
#[cfg(target_arch = "x86_64")]
mod transpose16;

pub use error::{KernelError, Result};
pub use gemm::{sgemm, Transpose};
