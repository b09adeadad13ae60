//! # keel
//!
//! Fast deep learning on CPUs. This facade re-exports the two crates keel is made of:
//!
//! - [`kernels`] (`keel-kernels`): SIMD, multi-threaded numerics on plain `f32` slices:
//!   GEMM, convolution, pooling, activations, losses, recurrent cells, batch norm, dropout,
//!   optimizer updates, word-embedding steps. No tensors, no allocation in hot paths: the
//!   caller owns every buffer. Use it alone to embed keel as a performance backend.
//! - [`layers`] (`keel-layers`): tensors, layers, losses, optimizers, data loading and a
//!   training loop built on the kernels: every number is computed by a kernel, and this
//!   crate owns shapes, buffers and bookkeeping.
//!
//! Where to start: [`layers::Sequential`], [`layers::fit`] and [`layers::evaluate`] to
//! train a model; [`layers::models`] for ready-made networks; [`kernels::gemm::sgemm`] and
//! [`kernels::conv::conv2d_forward`] for the numerics on your own buffers. Each crate's page
//! maps its modules.
//!
//! ```
//! use keel::kernels::activation::relu_forward;
//! use keel::layers::{Dense, Init, Layer, Mode, SeedableRng, StdRng, Tensor};
//!
//! # fn main() -> keel::layers::Result<()> {
//! // A kernel on slices: y = max(x, 0), y overwritten.
//! let mut y = [0.0; 3];
//! relu_forward(&[-1.0, 0.5, 2.0], &mut y)?;
//! assert_eq!(y, [0.0, 0.5, 2.0]);
//!
//! // A layer on a tensor: x (batch 2, in 3) -> y (batch 2, out 4).
//! let mut dense = Dense::new(3, 4, Init::He, &mut StdRng::seed_from_u64(0))?;
//! dense.forward(&Tensor::zeros(&[2, 3]), Mode::Eval)?;
//! assert_eq!(dense.output().shape(), &[2, 4]);
//! # Ok(())
//! # }
//! ```
//!
//! Features: `blas` routes [`kernels::sgemm`] to the system's `cblas_sgemm` (OpenBLAS unless
//! `KEEL_BLAS_LIB` names another; `keel-kernels`' build script links it); `mpi` adds
//! data-parallel training across processes (`keel::layers::distributed`).

pub use keel_kernels as kernels;
pub use keel_layers as layers;

/// The README's programs, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
