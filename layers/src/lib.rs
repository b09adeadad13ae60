//! # keel-layers
//!
//! Layers, losses, optimizers and training built on `keel-kernels`: every number is
//! computed by a kernel. This crate grows with the layers issue; today it re-exports the
//! kernel crate it stands on.

pub use keel_kernels as kernels;
