//! keel's own GEMM paths, whatever the features: with the `blas` feature, [`sgemm`](super::sgemm)
//! calls `cblas_sgemm`, and these functions are the comparison point (the benches' "keel").

use super::plan::plan_native;
use super::{checked_run, Epilogue, GemmPath, GemmShape};
use crate::error::Result;
use crate::isa::{current_isa, Isa};

/// The native path a product of `shape` with this `α` takes on `isa`:
/// [`GemmPath::ScaleOnly`] when there is nothing to multiply, else
/// [`GemmPath::MatrixVector`] when it has a matrix-vector form, else the few-rows or
/// few-columns kernel when one applies on `isa`, else [`GemmPath::Packed`]. Never
/// [`GemmPath::Blas`].
pub fn plan(shape: &GemmShape, alpha: f32, isa: Isa) -> GemmPath {
    plan_native(shape, alpha, isa)
}

/// [`super::sgemm`] on the path [`plan`] gives, whatever the features.
pub fn sgemm(shape: &GemmShape, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) -> Result<()> {
    checked_run(current_isa(), plan_native, shape, alpha, a, b, beta, c, &Epilogue::NONE)
}

/// [`super::sgemm_fused`] on the path [`plan`] gives, whatever the features (the epilogue in
/// registers on the packed path, where the `blas` build makes a pass over C).
pub fn sgemm_fused(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
) -> Result<()> {
    checked_run(current_isa(), plan_native, shape, alpha, a, b, beta, c, epilogue)
}
