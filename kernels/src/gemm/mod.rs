//! Single-precision GEMM: `C = α·op(A)·op(B) + β·C`, row-major with leading dimensions.
//!
//! Shapes (row-major, `ld*` = distance in elements between consecutive rows):
//! - `op(A)` is `(m, k)`: `A` is stored `(m, k)` with `lda >= k` when `transa` is
//!   [`Transpose::No`], or `(k, m)` with `lda >= m` when it is [`Transpose::Yes`];
//! - `op(B)` is `(k, n)`: `B` is stored `(k, n)` with `ldb >= n`, or `(n, k)` with `ldb >= k`;
//! - `C` is `(m, n)` with `ldc >= n`; it is overwritten when `β = 0` (and then never read,
//!   so NaN already in `C` does not leak), otherwise scaled by `β` and accumulated into.
//!
//! [`sgemm`] checks every argument and runs the native path, or `cblas_sgemm` when the crate
//! is built with the `blas` feature. [`sgemm_native`] always runs the native path: keel's
//! own packed GEMM (BLIS's loop nest, packed panels, one register-blocked microkernel per
//! instruction set: AVX-512F 12x32 with masked edges, AVX2+FMA 6x16, portable 4x8) on
//! [`selected_isa`], the best instruction set the CPU has (or the one `KEEL_ISA` forces),
//! with C split across the rayon pool; a product whose C is one row or one column (a batch
//! of one) goes through matrix-vector kernels instead, which read every operand in place,
//! and one with 13 to 16 rows, or at most 12 columns and a short k, through AVX-512 kernels
//! whose vectors run along the rows of C, reading B in place (`rows_in_lanes.rs`).
//! [`sgemm_isa`] runs it on a given instruction set
//! (tests and benches run every one the CPU has). `matrixmultiply` is no longer used here:
//! it is only the `gemm` bench's baseline.
//! [`reference::sgemm_reference`] is the plain triple loop the tests compare every path with.
//!
//! [`sgemm_fused`] (and [`sgemm_fused_isa`]) add an [`Epilogue`]:
//! `C = act(α·op(A)·op(B) + β·C + bias)`, with a bias per row or per column of C and an
//! [`Activation`], applied to each tile of C in registers after its last block of k (on the
//! `blas` path: `cblas_sgemm`, then one pass over C).
//!
//! [`sgemm_strided_batched`] runs `batch` such products whose matrices lie `stride_*`
//! elements apart in one slice per operand (a stride of 0 shares a matrix), in parallel over
//! the batch when each product is small.

mod avx2;
mod avx512;
mod batched;
#[cfg(feature = "blas")]
mod blas;
mod blocking;
mod driver;
mod epilogue;
mod gemv;
mod line_aligned;
mod microkernel;
mod native;
mod pack;
mod portable;
pub mod reference;
mod rows_in_lanes;
mod shared;

use crate::error::{check_min_len, shape_error, Result};
use crate::isa::{selected_isa, Isa};
use driver::threads_for;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::activate as activate_avx512;
pub use epilogue::{Activation, Bias, Epilogue};
pub use native::sgemm_native_unchecked;

/// Whether an operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transpose {
    /// `op(X) = X`.
    No,
    /// `op(X) = Xᵀ`.
    Yes,
}

/// The dimensions of one GEMM call, checked once and shared by every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmShape {
    /// Whether `A` is transposed.
    pub transa: Transpose,
    /// Whether `B` is transposed.
    pub transb: Transpose,
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// Leading dimension of `A` as stored.
    pub lda: usize,
    /// Leading dimension of `B` as stored.
    pub ldb: usize,
    /// Leading dimension of `C`.
    pub ldc: usize,
}

impl GemmShape {
    /// Checks the leading dimensions against the shape and the slice lengths against the
    /// leading dimensions (the last row of each matrix need only be as long as a row).
    pub fn check(&self, a_len: usize, b_len: usize, c_len: usize) -> Result<()> {
        self.check_batched(1, [0; 3], [a_len, b_len, c_len])
    }

    /// [`GemmShape::check`] for `batch` products whose matrices start `strides` (of A, B, C)
    /// apart in slices of `lens`: the last matrix of each operand must fit in its slice.
    /// The messages name the strides only when `batch > 1`.
    pub(crate) fn check_batched(&self, batch: usize, strides: [usize; 3], lens: [usize; 3]) -> Result<()> {
        let (a_rows, a_cols) = stored_dims(self.transa, self.m, self.k);
        let (b_rows, b_cols) = stored_dims(self.transb, self.k, self.n);
        check_ld("lda", self.lda, a_cols)?;
        check_ld("ldb", self.ldb, b_cols)?;
        check_ld("ldc", self.ldc, self.n)?;
        // (name, how its dimensions read, rows, cols, leading dimension); formatted only on error.
        let operands = [
            ("a", "stored ", a_rows, a_cols, self.lda),
            ("b", "stored ", b_rows, b_cols, self.ldb),
            ("c", "", self.m, self.n, self.ldc),
        ];
        for ((name, stored, rows, cols, ld), (stride, len)) in
            operands.into_iter().zip(strides.into_iter().zip(lens))
        {
            let what = || {
                let dims = format!("{stored}{rows}x{cols}, ld{name} = {ld}");
                if batch > 1 {
                    format!("{name} ({batch} matrices {dims}, stride_{name} = {stride})")
                } else {
                    format!("{name} ({dims})")
                }
            };
            let span = strided_len(rows, cols, ld);
            // The last matrix starts (batch - 1)·stride in; an empty batch or matrix needs nothing.
            let needed = if batch == 0 || span == 0 {
                Some(0)
            } else {
                (batch - 1).checked_mul(stride).and_then(|start| start.checked_add(span))
            };
            check_min_len(what, needed.unwrap_or(usize::MAX), len)?;
        }
        Ok(())
    }
}

/// `(rows, cols)` of an operand as stored, given the shape of `op(X)`.
fn stored_dims(trans: Transpose, rows: usize, cols: usize) -> (usize, usize) {
    match trans {
        Transpose::No => (rows, cols),
        Transpose::Yes => (cols, rows),
    }
}

fn check_ld(name: &str, ld: usize, cols: usize) -> Result<()> {
    if ld >= cols.max(1) {
        Ok(())
    } else {
        Err(shape_error(name, format!("{name} >= max(1, {cols})"), ld))
    }
}

/// Elements a `(rows, cols)` matrix with leading dimension `ld` spans.
pub(crate) fn strided_len(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

/// `C = α·op(A)·op(B) + β·C` (shapes in the [module docs](self)).
///
/// Runs `cblas_sgemm` when built with the `blas` feature (unless a dimension exceeds BLAS's
/// 32-bit integers), the native path otherwise.
/// With `β = 0`, `C` is not read. Errors name the argument whose length or leading
/// dimension does not fit the shape.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    transa: Transpose,
    transb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) -> Result<()> {
    sgemm_fused(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, &Epilogue::NONE)
}

/// `C = act(α·op(A)·op(B) + β·C + bias)` (shapes in the [module docs](self); the bias and
/// activation of `epilogue`): a GEMM with the bias and activation of a dense layer
/// ([`Bias::PerColumn`], C = `(batch, out)`) or a convolution ([`Bias::PerRow`], C =
/// `(c_out, positions)`) fused in. C is overwritten when `β = 0` (and then never read),
/// otherwise scaled by `β` and accumulated into, before the bias and activation.
///
/// The native path applies the epilogue to each tile of C in registers, right after the
/// tile's last block of k, so it costs no pass over C; the `blas` feature's path runs
/// `cblas_sgemm`, then one pass over C. NaN in A, B, the bias, or C (when `β ≠ 0`)
/// propagates through every [`Activation`]. Errors as [`sgemm`], and on a bias whose length
/// is not `m` (per row) or `n` (per column) or a non-finite leaky slope (the error names
/// `bias` or `negative_slope`).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_fused(
    transa: Transpose,
    transb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    epilogue: &Epilogue,
) -> Result<()> {
    let shape = GemmShape { transa, transb, m, n, k, lda, ldb, ldc };
    shape.check(a.len(), b.len(), c.len())?;
    epilogue.check(m, n)?;
    #[cfg(feature = "blas")]
    if blas::sgemm_blas(&shape, alpha, a, b, beta, c) {
        epilogue::apply_pass(m, n, ldc, epilogue, c);
        return Ok(());
    }
    // SAFETY: `shape.check` verified that every slice covers the matrix its shape and
    // leading dimension describe, `epilogue.check` the bias; `selected_isa` only returns an
    // instruction set the CPU supports.
    unsafe {
        driver::sgemm_isa_unchecked(
            selected_isa(),
            &shape,
            alpha,
            a,
            b,
            beta,
            c,
            epilogue,
            threads_for(&shape),
        )
    };
    Ok(())
}

/// [`sgemm`] on the native path, whatever the features: the comparison point for the
/// `blas` build and what the benches call "keel".
#[allow(clippy::too_many_arguments)]
pub fn sgemm_native(
    transa: Transpose,
    transb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) -> Result<()> {
    let shape = GemmShape { transa, transb, m, n, k, lda, ldb, ldc };
    shape.check(a.len(), b.len(), c.len())?;
    // SAFETY: checked above, as in `sgemm`.
    unsafe { sgemm_native_unchecked(&shape, alpha, a, b, beta, c) };
    Ok(())
}

/// `C = α·op(A)·op(B) + β·C` (shapes in the [module docs](self)) by keel's own packed GEMM
/// on the instruction set `isa` (tests and benches run every path the CPU has; pass
/// [`selected_isa()`] for the best). Errors if the CPU cannot run `isa`, or on the same
/// argument errors as [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub fn sgemm_isa(
    isa: Isa,
    transa: Transpose,
    transb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) -> Result<()> {
    sgemm_fused_isa(isa, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, &Epilogue::NONE)
}

/// [`sgemm_fused`] by keel's packed GEMM on the instruction set `isa` (tests and benches run
/// every path the CPU has). Errors if the CPU cannot run `isa`, or as [`sgemm_fused`].
#[allow(clippy::too_many_arguments)]
pub fn sgemm_fused_isa(
    isa: Isa,
    transa: Transpose,
    transb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    epilogue: &Epilogue,
) -> Result<()> {
    isa.check_supported()?;
    let shape = GemmShape { transa, transb, m, n, k, lda, ldb, ldc };
    shape.check(a.len(), b.len(), c.len())?;
    epilogue.check(m, n)?;
    // SAFETY: checked above, and the CPU supports `isa`.
    unsafe { driver::sgemm_isa_unchecked(isa, &shape, alpha, a, b, beta, c, epilogue, threads_for(&shape)) };
    Ok(())
}

/// `C_i = act(α·op(A_i)·op(B_i) + β·C_i + bias)` for `i < batch`: [`sgemm_fused`] on a
/// batch of products whose matrices lie `stride_a`, `stride_b`, `stride_c` elements apart
/// (`A_i` starts at `a[i·stride_a]`, and so on; each matrix has the shape and leading
/// dimension of the [module docs](self)). A stride of 0 shares one matrix across the batch
/// (one weight for every image), for A and B; each `C_i` is overwritten when `β = 0` (never
/// read), otherwise scaled and accumulated into, and the epilogue (bias shared by every
/// product) applied to it. `Epilogue::NONE` gives the plain batched GEMM.
///
/// Always keel's native path (on [`selected_isa`]), whatever the features. Products too
/// small to split run in parallel over the batch, one product per task; bigger ones one
/// after the other, each split across the pool; the bits do not depend on the thread count.
/// `batch = 0` is a no-op. Errors as [`sgemm_fused`], when a slice is shorter than its last
/// matrix needs (`(batch - 1)·stride + span`, naming the operand and its stride), and when
/// `stride_c` is less than the span of one C, `(m - 1)·ldc + n` (for `batch > 1`), so that
/// no two `C_i` overlap.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_strided_batched(
    transa: Transpose,
    transb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    stride_a: usize,
    b: &[f32],
    ldb: usize,
    stride_b: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    stride_c: usize,
    batch: usize,
    epilogue: &Epilogue,
) -> Result<()> {
    let shape = GemmShape { transa, transb, m, n, k, lda, ldb, ldc };
    let strides = [stride_a, stride_b, stride_c];
    shape.check_batched(batch, strides, [a.len(), b.len(), c.len()])?;
    let c_span = strided_len(m, n, ldc);
    if batch > 1 && stride_c < c_span {
        return Err(shape_error(
            "stride_c",
            format!("stride_c >= (m - 1)·ldc + n = {c_span} (no two C_i may overlap)"),
            stride_c,
        ));
    }
    epilogue.check(m, n)?;
    let strides = batched::Strides { a: stride_a, b: stride_b, c: stride_c };
    // SAFETY: every check the function requires passed above.
    unsafe { batched::sgemm_batched_unchecked(&shape, alpha, a, b, beta, c, batch, strides, epilogue) };
    Ok(())
}
