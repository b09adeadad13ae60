//! Which code computes a GEMM call: the path plan, as data, and its execution.
//!
//! [`plan`] is a pure function of the shape, `α` and the instruction set; the entry points
//! compute it and run exactly the path it names, so a caller (or a test) can ask which code
//! a product takes.

#[cfg(feature = "blas")]
use super::blas;
use super::driver::{sgemm_packed, BSource};
use super::epilogue::{apply_pass, Epilogue};
use super::gemv::{sgemv, takes_matrix_vector};
use super::parts::threads_for;
use super::rows_in_lanes::{sgemm_few_columns, sgemm_few_rows, takes_few_columns, takes_few_rows};
use super::GemmShape;
use crate::isa::Isa;

/// The code that computes one GEMM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GemmPath {
    /// Nothing to multiply (`m`, `n` or `k` is 0, or `α = 0`): `C = β·C` (zeros, C not
    /// read, when `β = 0`), then the epilogue; A and B are not read.
    ScaleOnly,
    /// C is one row or one column with the operands laid out for a matrix-vector kernel
    /// (`gemv.rs`), which reads every operand in place.
    MatrixVector,
    /// 13 to 16 rows of C, B as stored, `k >= 32`: rows of C along the vector lanes, B read
    /// in place once (AVX-512 only).
    FewRows,
    /// At most 12 columns of C, at least 32 rows, `16 <= k <= 128`: rows of C along the
    /// vector lanes, op(B) read in place (AVX-512 only).
    FewColumns,
    /// The packed loop nest (BLIS's, `driver.rs`) on the instruction set's microkernel.
    Packed,
    /// The system's `cblas_sgemm` (the `blas` feature; dimensions within 32-bit integers).
    Blas,
}

impl GemmPath {
    /// Every path, in the order of this enum.
    pub const ALL: [GemmPath; 6] = [
        GemmPath::ScaleOnly,
        GemmPath::MatrixVector,
        GemmPath::FewRows,
        GemmPath::FewColumns,
        GemmPath::Packed,
        GemmPath::Blas,
    ];

    /// Whether [`native::plan`](super::native::plan) can give this path on `isa`: the
    /// few-rows and few-columns kernels exist for AVX-512 only, and BLAS is never native.
    pub fn is_native_on(self, isa: Isa) -> bool {
        match self {
            GemmPath::FewRows | GemmPath::FewColumns => isa == Isa::Avx512,
            GemmPath::Blas => false,
            GemmPath::ScaleOnly | GemmPath::MatrixVector | GemmPath::Packed => true,
        }
    }
}

/// The path [`sgemm`](super::sgemm) takes for a product of `shape` with this `α` on `isa`:
/// [`GemmPath::Blas`] when the crate is built with the `blas` feature and the dimensions
/// fit BLAS's 32-bit integers (and there is something to multiply), else the native plan
/// ([`native::plan`](super::native::plan)).
///
/// ```
/// use keel_kernels::gemm::{plan, GemmPath, GemmShape};
/// use keel_kernels::isa::Isa;
///
/// // A batch of one through a dense layer: C is one row.
/// let path = plan(&GemmShape::new(1, 256, 784), 1.0, Isa::Portable);
/// assert!(matches!(path, GemmPath::MatrixVector | GemmPath::Blas));
/// ```
pub fn plan(shape: &GemmShape, alpha: f32, isa: Isa) -> GemmPath {
    let native = plan_native(shape, alpha, isa);
    #[cfg(feature = "blas")]
    if native != GemmPath::ScaleOnly && blas::fits(shape) {
        return GemmPath::Blas;
    }
    native
}

/// The native plan (see [`native::plan`](super::native::plan)).
pub(super) fn plan_native(shape: &GemmShape, alpha: f32, isa: Isa) -> GemmPath {
    if shape.m == 0 || shape.n == 0 || shape.k == 0 || alpha == 0.0 {
        GemmPath::ScaleOnly
    } else if takes_matrix_vector(shape) {
        GemmPath::MatrixVector
    } else if takes_few_rows(isa, shape) {
        GemmPath::FewRows
    } else if takes_few_columns(isa, shape) {
        GemmPath::FewColumns
    } else {
        GemmPath::Packed
    }
}

/// Runs `path` for `C = epilogue(α·op(A)·op(B) + β·C)` on `isa`, over the threads
/// [`threads_for`] gives (or 1 when `single_thread`).
///
/// # Safety
/// `shape` must pass [`GemmShape::check`] for the lengths of `a`, `b` and `c`, `epilogue`
/// [`Epilogue::check`] for `(m, n)`, the CPU must support `isa`, and `path` must be what
/// [`plan`] gives for `(shape, alpha, isa)` (or [`plan_native`]).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn execute(
    path: GemmPath,
    isa: Isa,
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
    single_thread: bool,
) {
    let threads = if single_thread { 1 } else { threads_for(shape) };
    // SAFETY: the caller's contract; each path's own conditions are what the plan checked.
    unsafe {
        match path {
            GemmPath::ScaleOnly => scale_c(shape, beta, c),
            GemmPath::MatrixVector => sgemv(isa, shape, alpha, a, b, beta, c, threads),
            GemmPath::FewRows => sgemm_few_rows(shape, alpha, a, b, beta, c, threads),
            GemmPath::FewColumns => sgemm_few_columns(shape, alpha, a, b, beta, c, threads),
            GemmPath::Packed => {
                return sgemm_packed(isa, shape, alpha, a, BSource::Matrix(b), beta, c, epilogue, threads)
            }
            #[cfg(feature = "blas")]
            GemmPath::Blas => blas::sgemm_blas(shape, alpha, a, b, beta, c),
            #[cfg(not(feature = "blas"))]
            GemmPath::Blas => debug_assert!(false, "no BLAS in this build: the plan never gives it"),
        }
    }
    // Every path but the packed one leaves the epilogue to one pass over C.
    apply_pass(shape.m, shape.n, shape.ldc, epilogue, c);
}

/// `C = β·C` (zeros without reading C when `β = 0`) for [`GemmPath::ScaleOnly`].
fn scale_c(shape: &GemmShape, beta: f32, c: &mut [f32]) {
    if shape.n == 0 {
        return;
    }
    for row in c.chunks_mut(shape.ldc).take(shape.m) {
        let row = &mut row[..shape.n];
        if beta == 0.0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|x| *x *= beta);
        }
    }
}
