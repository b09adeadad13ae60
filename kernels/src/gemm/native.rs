//! The native GEMM path: `matrixmultiply`'s packed, run-time dispatched kernels, split
//! across the rayon pool in row or column blocks of `C` when the product is big enough.

use rayon::prelude::*;

use super::{GemmShape, Transpose};
use crate::parallel::{current_num_threads, MIN_PARALLEL_MULADDS};

/// Row (or column) blocks of `C` handed to one thread are multiples of this, so that
/// blocks align with the micro-tiles of the kernel underneath.
const BLOCK_ALIGN: usize = 16;

/// [`super::sgemm_native`] without the argument checks.
///
/// # Safety
/// `shape` must pass [`GemmShape::check`] for the lengths of `a`, `b` and `c`.
pub unsafe fn sgemm_native_unchecked(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    let GemmShape { m, n, k, .. } = *shape;
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        scale_c(shape, beta, c);
        return;
    }
    let threads = current_num_threads();
    let muladds = m.saturating_mul(n).saturating_mul(k);
    if threads <= 1 || muladds < MIN_PARALLEL_MULADDS {
        // SAFETY: forwarded from the caller's contract.
        unsafe { gemm_block(shape, alpha, a, b, beta, c, 0, m, 0, n) };
        return;
    }
    // Split the longer side of C into one block per thread; each block is an independent
    // GEMM on disjoint rows (or columns) of C, so the result does not depend on scheduling.
    let split_rows = m >= n || n < 2 * BLOCK_ALIGN;
    let side = if split_rows { m } else { n };
    let block = side.div_ceil(threads).div_ceil(BLOCK_ALIGN) * BLOCK_ALIGN;
    let ldc = shape.ldc;
    // C may be longer than the matrix; only its first `strided_len` elements are C.
    let c = &mut c[..super::strided_len(m, n, ldc)];
    if split_rows {
        c.par_chunks_mut(block * ldc).enumerate().for_each(|(index, c_rows)| {
            let row0 = index * block;
            let rows = block.min(m - row0);
            // SAFETY: rows row0..row0+rows of C lie in this chunk (it starts at row0·ldc);
            // A and B are covered by the caller's contract.
            unsafe { gemm_block(shape, alpha, a, b, beta, c_rows, row0, rows, 0, n) };
        });
    } else {
        // Column blocks of C interleave in memory, so threads share C through a raw pointer
        // and write disjoint column ranges.
        let c_ptr = SharedMut(c.as_mut_ptr());
        let c_len = c.len();
        (0..n.div_ceil(block)).into_par_iter().for_each(|index| {
            let col0 = index * block;
            let cols = block.min(n - col0);
            // SAFETY: every task writes only columns col0..col0+cols of C, disjoint from the
            // other tasks'; the whole of C is `c_len` elements long and alive for the call.
            let c_all = unsafe { std::slice::from_raw_parts_mut(c_ptr.get(), c_len) };
            unsafe { gemm_block(shape, alpha, a, b, beta, c_all, 0, m, col0, cols) };
        });
    }
}

/// A pointer that may be shared between tasks that write disjoint parts of its target.
#[derive(Clone, Copy)]
pub(super) struct SharedMut(pub(super) *mut f32);
// SAFETY: only used for disjoint writes, see the use above.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}
impl SharedMut {
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// The block `rows x cols` of C starting at `(row0, col0)`, where `c` starts at row `row0`
/// of C when splitting by rows (pass `row0` so A is offset) and at row 0 otherwise.
///
/// # Safety
/// As [`sgemm_native_unchecked`], with `c` covering the block.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    row0: usize,
    rows: usize,
    col0: usize,
    cols: usize,
) {
    // Strides of op(A) (rows, cols) and op(B) in elements, as matrixmultiply takes them.
    let (rsa, csa) = strides(shape.transa, shape.lda);
    let (rsb, csb) = strides(shape.transb, shape.ldb);
    // SAFETY: offsets stay inside the matrices checked by `GemmShape::check`: A's row0 is
    // < m, B's col0 is < n; the C block starts at (0, col0) of `c`, which holds whole rows.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            shape.k,
            cols,
            alpha,
            a.as_ptr().add(row0 * rsa),
            rsa as isize,
            csa as isize,
            b.as_ptr().add(col0 * csb),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr().add(col0),
            shape.ldc as isize,
            1,
        );
    }
}

/// Row and column strides of `op(X)` for a row-major `X` with leading dimension `ld`.
fn strides(trans: Transpose, ld: usize) -> (usize, usize) {
    match trans {
        Transpose::No => (ld, 1),
        Transpose::Yes => (1, ld),
    }
}

/// `C = β·C` for the degenerate products (`k = 0` or `α = 0`); `β = 0` writes zeros
/// without reading C.
pub(super) fn scale_c(shape: &GemmShape, beta: f32, c: &mut [f32]) {
    for row in c.chunks_mut(shape.ldc).take(shape.m) {
        let row = &mut row[..shape.n];
        if beta == 0.0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|x| *x *= beta);
        }
    }
}
