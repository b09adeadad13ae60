//! Single-precision GEMM: `C = α·op(A)·op(B) + β·C`, row-major with leading dimensions.
//!
//! A [`GemmShape`] describes the product (dimensions, transposes, leading dimensions; see
//! its docs for the shapes). Four checked entry points take it:
//! - [`sgemm`]: the plain product; `C` is overwritten when `β = 0` (and then never read, so
//!   NaN already in `C` does not leak), otherwise scaled by `β` and accumulated into;
//! - [`sgemm_fused`]: `C = act(α·op(A)·op(B) + β·C + bias)` with an [`Epilogue`] (a bias per
//!   row or per column of C and an [`Activation`]), applied to each tile of C in registers
//!   on the packed path (one pass over C on the others);
//! - [`sgemm_strided_batched`]: `batch` such products whose matrices lie [`BatchStrides`]
//!   apart in one slice per operand (a stride of 0 shares a matrix);
//! - [`sgemm_prepacked`]: the packed path with a B packed once beforehand ([`PackedB`]), for a
//!   weight multiplied many times (every step of a recurrent layer).
//!
//! Each checks every argument (all shape arithmetic checked: an overflow is an error, never
//! a wrapped length), resolves the instruction set once ([`crate::isa::current_isa`]),
//! computes the [`plan`] of the call, a [`GemmPath`], and runs that path:
//! - [`GemmPath::ScaleOnly`]: nothing to multiply, `C = β·C`;
//! - [`GemmPath::MatrixVector`]: C one row or one column (a batch of one): kernels that read
//!   every operand in place (`gemv.rs`);
//! - [`GemmPath::FewRows`], [`GemmPath::FewColumns`]: AVX-512 kernels whose vectors run
//!   along the rows of C, reading B in place (`rows_in_lanes.rs`);
//! - [`GemmPath::Packed`]: keel's packed GEMM (BLIS's loop nest, packed panels, one
//!   register-blocked microkernel per instruction set: AVX-512F 12x32 with masked edges,
//!   AVX2+FMA 6x16, portable 4x8), with C split across the rayon pool (`driver.rs`) and
//!   blocks sized from the CPU's caches ([`blocking`]);
//! - [`GemmPath::Blas`]: the system's `cblas_sgemm`, when the crate is built with the `blas`
//!   feature.
//!
//! [`native`] runs keel's own paths whatever the features (the comparison point for the
//! `blas` build); [`reference::sgemm_reference`] is the plain triple loop the tests compare
//! every path with.
//!
//! ```
//! use keel_kernels::gemm::{sgemm, GemmShape};
//! # fn main() -> keel_kernels::Result<()> {
//!
//! // (2, 3) x (3, 2): C = A·B.
//! let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
//! let mut c = [0.0; 4];
//! sgemm(&GemmShape::new(2, 2, 3), 1.0, &a, &b, 0.0, &mut c)?;
//! assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
//! # Ok(())
//! # }
//! ```

mod avx2;
mod avx512;
mod batched;
#[cfg(feature = "blas")]
mod blas;
mod blocking;
mod buffers;
mod driver;
mod epilogue;
mod gemv;
mod line_aligned;
mod microkernel;
pub mod native;
mod pack;
mod parts;
mod plan;
mod portable;
mod prepacked;
pub mod reference;
mod rows_in_lanes;
mod shape;
mod shared;
mod tuning;

use crate::error::{shape_error, Result};
use crate::isa::{current_isa, Isa};

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::activate as activate_avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::activate as activate_avx512;
pub use blocking::{blocking, Blocking, LoopOrder};
pub use epilogue::{Activation, Bias, Epilogue};
pub use plan::{plan, GemmPath};
pub(crate) use prepacked::{packed_b_index, packed_b_len, panel_width, sgemm_prepacked_on};
pub use prepacked::{sgemm_prepacked, PackedB};

/// The system BLAS library `sgemm` calls in this build (`KEEL_BLAS_LIB` at build time,
/// `openblas` by default), by its linker name.
#[cfg(feature = "blas")]
pub const BLAS_LIBRARY: &str = env!("KEEL_BLAS_NAME");
pub use shape::{GemmShape, Transpose};

/// The element strides between consecutive matrices of each operand of
/// [`sgemm_strided_batched`]: `A_i` starts at `a[i·a]`, `B_i` at `b[i·b]`, `C_i` at `c[i·c]`
/// (see its example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchStrides {
    /// Elements from `A_i` to `A_{i+1}` (0: one A shared by the batch).
    pub a: usize,
    /// Elements from `B_i` to `B_{i+1}` (0: one B shared by the batch).
    pub b: usize,
    /// Elements from `C_i` to `C_{i+1}`: at least the span of one C, `(m - 1)·ldc + n`.
    pub c: usize,
}

/// `C = α·op(A)·op(B) + β·C` (shapes in [`GemmShape`]) on the path [`plan`] gives.
///
/// `C` is overwritten when `β = 0` (never read), otherwise scaled by `β` and accumulated
/// into. Errors (before anything is written) name the argument whose length or leading
/// dimension does not fit the shape.
///
/// ```
/// use keel_kernels::gemm::{sgemm, GemmShape, Transpose};
/// # fn main() -> keel_kernels::Result<()> {
///
/// // A dense layer's Y = X·Wᵀ: X (batch 2, in 3), W (out 2, in 3).
/// let x = [1.0, 2.0, 3.0, 0.0, 1.0, 0.0];
/// let w = [1.0, 1.0, 1.0, 0.0, 0.0, 2.0];
/// let mut y = [0.0; 4];
/// let shape = GemmShape::new(2, 2, 3).transposed(Transpose::No, Transpose::Yes);
/// sgemm(&shape, 1.0, &x, &w, 0.0, &mut y)?;
/// assert_eq!(y, [6.0, 6.0, 1.0, 0.0]);
/// # Ok(())
/// # }
/// ```
pub fn sgemm(shape: &GemmShape, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) -> Result<()> {
    sgemm_fused(shape, alpha, a, b, beta, c, &Epilogue::NONE)
}

/// `C = act(α·op(A)·op(B) + β·C + bias)` (shapes in [`GemmShape`]; the bias and activation
/// of `epilogue`): a GEMM with the bias and activation of a dense layer
/// ([`Bias::PerColumn`], C = `(batch, out)`) or a convolution ([`Bias::PerRow`], C =
/// `(c_out, positions)`) fused in. C is overwritten when `β = 0` (and then never read),
/// otherwise scaled by `β` and accumulated into, before the bias and activation.
///
/// The packed path applies the epilogue to each tile of C in registers, right after the
/// tile's last block of k, so it costs no pass over C; the other paths make one pass over C
/// after the product. NaN in A, B, the bias, or C (when `β ≠ 0`) propagates through every
/// [`Activation`]. Errors as [`sgemm`], and on a bias whose length is not `m` (per row) or
/// `n` (per column) or a non-finite leaky slope (the error names `bias` or
/// `negative_slope`).
///
/// ```
/// use keel_kernels::gemm::{sgemm_fused, Activation, Bias, Epilogue, GemmShape};
/// # fn main() -> keel_kernels::Result<()> {
///
/// // A dense layer's Y = relu(X·W + b): X (batch 2, in 2), W (in 2, out 2), b (out 2).
/// let x = [1.0, 2.0, 3.0, 4.0];
/// let w = [1.0, 0.0, 0.0, 1.0];
/// let bias = [-2.0, 0.5];
/// let epilogue = Epilogue { bias: Bias::PerColumn(&bias), activation: Activation::Relu };
/// let mut y = [f32::NAN; 4]; // β = 0: never read
/// sgemm_fused(&GemmShape::new(2, 2, 2), 1.0, &x, &w, 0.0, &mut y, &epilogue)?;
/// // X·W + b = [[-1, 2.5], [1, 4.5]], then ReLU.
/// assert_eq!(y, [0.0, 2.5, 1.0, 4.5]);
/// # Ok(())
/// # }
/// ```
pub fn sgemm_fused(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
) -> Result<()> {
    sgemm_fused_on(current_isa(), shape, alpha, a, b, beta, c, epilogue)
}

/// [`sgemm_fused`] on the instruction set `isa` that the calling kernel resolved (a CPU
/// that has it): for kernels that run GEMMs from their own rayon tasks.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_fused_on(
    isa: Isa,
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
) -> Result<()> {
    checked_run(isa, plan, shape, alpha, a, b, beta, c, epilogue)
}

/// Checks the arguments, plans the call with `planner` and runs the plan.
#[allow(clippy::too_many_arguments)]
fn checked_run(
    isa: Isa,
    planner: fn(&GemmShape, f32, Isa) -> GemmPath,
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
) -> Result<()> {
    isa.check_supported()?;
    shape.check(a.len(), b.len(), c.len())?;
    epilogue.check(shape.m, shape.n)?;
    let path = planner(shape, alpha, isa);
    // SAFETY: the slices cover the shape and the bias fits it (checked above), the CPU
    // supports `isa` (checked above), and `path` is the plan of this call.
    unsafe { plan::execute(path, isa, shape, alpha, a, b, beta, c, epilogue, false) };
    Ok(())
}

/// `C_i = act(α·op(A_i)·op(B_i) + β·C_i + bias)` for `i < batch`: [`sgemm_fused`] on a
/// batch of products whose matrices lie `strides` apart (each matrix has the shape and
/// leading dimension `shape` gives). A stride of 0 shares one matrix across the batch (one
/// weight for every image), for A and B; each `C_i` is overwritten when `β = 0` (never
/// read), otherwise scaled and accumulated into, and the epilogue (bias shared by every
/// product) applied to it. `Epilogue::NONE` gives the plain batched GEMM.
///
/// Always keel's native paths, whatever the features. Products too small to split run in
/// parallel over the batch, one product per task; bigger ones one after the other, each
/// split across the pool; the bits do not depend on the thread count. `batch = 0` is a
/// no-op. Errors as [`sgemm_fused`], when a slice is shorter than its last matrix needs
/// (`(batch - 1)·stride + span`, naming the operand and its stride), and when `strides.c`
/// is less than the span of one C, `(m - 1)·ldc + n` (for `batch > 1`), so that no two
/// `C_i` overlap.
///
/// ```
/// use keel_kernels::gemm::{sgemm_strided_batched, BatchStrides, Epilogue, GemmShape};
/// # fn main() -> keel_kernels::Result<()> {
///
/// // Two (2, 2) A_i, 4 elements apart, times one shared B (stride 0) that swaps columns.
/// let a = [1.0, 2.0, 3.0, 4.0, /* A_1: */ 5.0, 6.0, 7.0, 8.0];
/// let b = [0.0, 1.0, 1.0, 0.0];
/// let mut c = [0.0; 8]; // C_0, C_1: (2, 2) each, overwritten (β = 0)
/// let strides = BatchStrides { a: 4, b: 0, c: 4 };
/// let shape = GemmShape::new(2, 2, 2);
/// sgemm_strided_batched(&shape, 2, strides, 1.0, &a, &b, 0.0, &mut c, &Epilogue::NONE)?;
/// assert_eq!(c, [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 7.0]);
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn sgemm_strided_batched(
    shape: &GemmShape,
    batch: usize,
    strides: BatchStrides,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
) -> Result<()> {
    shape.check_batched(batch, [strides.a, strides.b, strides.c], [a.len(), b.len(), c.len()])?;
    let c_span = shape::strided_len(shape.m, shape.n, shape.ldc).unwrap_or(usize::MAX);
    if batch > 1 && strides.c < c_span {
        return Err(shape_error(
            "stride_c",
            format!("stride_c >= (m - 1)·ldc + n = {c_span} (no two C_i may overlap)"),
            strides.c,
        ));
    }
    epilogue.check(shape.m, shape.n)?;
    let isa = current_isa();
    // SAFETY: every check the function requires passed above; `current_isa` only returns an
    // instruction set the CPU has.
    unsafe { batched::sgemm_batched_unchecked(isa, shape, alpha, a, b, beta, c, batch, strides, epilogue) };
    Ok(())
}
