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
///
/// ```
/// use keel_kernels::gemm::{native, GemmPath, GemmShape};
/// use keel_kernels::isa::Isa;
///
/// // (64, 64) x (64, 64): the packed GEMM, with or without the `blas` feature.
/// assert_eq!(native::plan(&GemmShape::new(64, 64, 64), 1.0, Isa::Portable), GemmPath::Packed);
/// // α = 0: nothing to multiply.
/// assert_eq!(native::plan(&GemmShape::new(64, 64, 64), 0.0, Isa::Portable), GemmPath::ScaleOnly);
/// ```
pub fn plan(shape: &GemmShape, alpha: f32, isa: Isa) -> GemmPath {
    plan_native(shape, alpha, isa)
}

/// [`super::sgemm`] on the path [`plan`] gives, whatever the features: the same shapes,
/// arguments and errors; `C` is overwritten when `β = 0` (never read), otherwise scaled by `β`
/// and accumulated into.
///
/// ```
/// use keel_kernels::gemm::{native, GemmShape, Transpose};
/// # fn main() -> keel_kernels::Result<()> {
/// // C (2, 1) = op(A)·B with A stored transposed, (k 3, m 2): op(A) = [[1, 2, 3], [4, 5, 6]].
/// let a = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
/// let shape = GemmShape::new(2, 1, 3).transposed(Transpose::Yes, Transpose::No);
/// let mut c = [0.0; 2];
/// native::sgemm(&shape, 1.0, &a, &[1.0, 1.0, 1.0], 0.0, &mut c)?;
/// assert_eq!(c, [6.0, 15.0]);
/// # Ok(())
/// # }
/// ```
pub fn sgemm(shape: &GemmShape, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) -> Result<()> {
    checked_run(current_isa(), plan_native, shape, alpha, a, b, beta, c, &Epilogue::NONE)
}

/// [`super::sgemm_fused`] on the path [`plan`] gives, whatever the features (the epilogue in
/// registers on the packed path, where the `blas` build makes a pass over C). Shapes, the
/// overwrite/accumulate rule and errors as [`super::sgemm_fused`] (see its example).
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
