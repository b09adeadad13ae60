//! # keel
//!
//! Fast CPU deep learning. This facade re-exports the two crates:
//! - [`kernels`] (`keel-kernels`): SIMD, multi-threaded numerics on slices;
//! - [`layers`] (`keel-layers`): tensors, layers, losses, optimizers and training.
//!
//! With the `blas` feature, `kernels::sgemm` calls the system's `cblas_sgemm`, and this
//! package's build script links the provider (see `build.rs`).

pub use keel_kernels as kernels;
pub use keel_layers as layers;
