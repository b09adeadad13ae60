//! Matrix-vector products: the GEMMs whose C is one row (`m = 1`) or one column (`n = 1`),
//! such as a dense layer or an RNN step on a batch of one.
//!
//! The packed loop nest suits them badly: a one-row tile keeps 2 accumulators, so the
//! microkernel waits on the FMA latency, and a transposed operand would be packed for one
//! use. Here every operand is read where it lies, in one of two forms:
//!
//! - **rows**: `y = Σ_p x[p]·M[p, ..]`, a combination of the rows of a matrix M (`k` rows,
//!   contiguous, `ld` apart), for `m = 1` with B as stored (M = B) and for `n = 1` with Aᵀ
//!   (M = the stored A). Up to [`STREAM_MIN_OUTPUTS`] outputs go 8 vectors at a time (128
//!   floats with AVX-512), each a chain of `k` FMAs in a register, so 8 chains hide the FMA
//!   latency. More outputs go in panels of [`STREAM_PANEL`] sums kept in L1, past which the
//!   rows stream 4 at a time, whole: reading 128 floats of each row in turn jumps a row
//!   (often a page) every 512 bytes, which the hardware prefetchers do not follow, while 4
//!   long runs they do;
//! - **dots**: `y[i] = M[i, ..]·x`, dot products of the rows of M with a contiguous x, for
//!   `n = 1` with A as stored (M = A) and for `m = 1` with Bᵀ (M = the stored B). Rows go
//!   4 at a time, each with 2 vector accumulators over k (8 chains), reduced across lanes at
//!   the end.
//!
//! Then `y = α·y + β·y₀` (y₀ not read when `β = 0`). Outputs are split across threads in
//! chunks; every output is computed by the same operations wherever its chunk starts (a
//! lane of the rows form follows the same chain in a block of any width, in a masked last
//! vector or not; a dot the same in a group of 4 rows or alone), so the bits do not depend
//! on the thread count.
//!
//! Few outputs stay in the register blocks: streaming a few hundred outputs pays less than
//! the panel's extra loads and stores of the sums.

use rayon::prelude::*;

use super::tuning::{DOTS_GROUP_ROWS, ROWS_BLOCK_VECTORS, STREAM_MIN_OUTPUTS, STREAM_PANEL, STREAM_ROWS};
use super::{GemmShape, Transpose};
use crate::isa::Isa;
use crate::parallel::MIN_PARALLEL_MULADDS;
use crate::simd::{dispatch, Kernel, SimdF32, MAX_LANES};

/// The sums of one block of the rows form, aligned to cache lines (so that no vector is
/// stored across two).
#[repr(align(64))]
struct Block([f32; ROWS_BLOCK_VECTORS * MAX_LANES]);

/// The sums of one panel of the streamed rows form, aligned to cache lines.
#[repr(align(64))]
struct Panel([f32; STREAM_PANEL]);

/// A vector `len` long whose element `i` is `data[i·stride]`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    stride: usize,
}

/// A product with one row or column of C, as the form that computes it.
enum Gemv<'a> {
    /// `y[j] = Σ_p x[p]·matrix[p·ld + j]` for `j < len`, `p < depth`.
    Rows { x: Strided<'a>, matrix: &'a [f32], ld: usize },
    /// `y[i] = Σ_p matrix[i·ld + p]·x[p]` for `i < len`, `p < depth`.
    Dots { x: &'a [f32], matrix: &'a [f32], ld: usize },
}

/// Which operand is the matrix and which the vector, for a product with a matrix-vector form.
#[derive(Clone, Copy)]
enum Layout {
    /// `n = 1`, A as stored, op(B)'s column contiguous: dots of A's rows with it.
    DotsA,
    /// `m = 1`, Bᵀ, op(A)'s row contiguous: dots of B's rows with it.
    DotsB,
    /// `m = 1`, B as stored: a combination of B's rows.
    RowsB,
    /// `n = 1`, Aᵀ: a combination of A's rows.
    RowsA,
}

/// The matrix-vector layout of the product `shape`, if it has one (C one row or one
/// column, and the operands laid out for one of the forms; `k >= 1`).
fn layout(shape: &GemmShape) -> Option<Layout> {
    let GemmShape { transa, transb, m, n, k, .. } = *shape;
    // Whether op(A)'s row 0 and op(B)'s column 0 are contiguous.
    let a_row_contiguous = transa == Transpose::No || shape.lda == 1;
    let b_col_contiguous = transb == Transpose::Yes || shape.ldb == 1;
    if k == 0 || m.min(n) != 1 {
        None
    } else if n == 1 && transa == Transpose::No && b_col_contiguous {
        Some(Layout::DotsA)
    } else if m == 1 && transb == Transpose::Yes && a_row_contiguous {
        Some(Layout::DotsB)
    } else if m == 1 && transb == Transpose::No {
        Some(Layout::RowsB)
    } else if n == 1 && transa == Transpose::Yes {
        Some(Layout::RowsA)
    } else {
        None
    }
}

/// Whether the product `shape` has a matrix-vector form (see the module docs).
pub(super) fn takes_matrix_vector(shape: &GemmShape) -> bool {
    layout(shape).is_some()
}

/// The form computing the product `shape` on the slices `a` and `b`, and the stride of y
/// in C, if it [`takes_matrix_vector`].
fn form<'a>(shape: &GemmShape, a: &'a [f32], b: &'a [f32]) -> Option<(Gemv<'a>, usize)> {
    let GemmShape { transa, transb, k, lda, ldb, ldc, .. } = *shape;
    // op(A)'s row 0 and op(B)'s column 0, as strided vectors.
    let a_row = Strided { data: a, stride: if transa == Transpose::No { 1 } else { lda } };
    let b_col = Strided { data: b, stride: if transb == Transpose::No { ldb } else { 1 } };
    Some(match layout(shape)? {
        Layout::DotsA => (Gemv::Dots { x: b.get(..k)?, matrix: a, ld: lda }, ldc),
        Layout::DotsB => (Gemv::Dots { x: a.get(..k)?, matrix: b, ld: ldb }, 1),
        Layout::RowsB => (Gemv::Rows { x: a_row, matrix: b, ld: ldb }, 1),
        Layout::RowsA => (Gemv::Rows { x: b_col, matrix: a, ld: lda }, ldc),
    })
}

/// Computes `C = α·op(A)·op(B) + β·C` for a product that [`takes_matrix_vector`] (any
/// other does nothing), on `isa`'s vectors, split over at most `threads` threads.
///
/// The slices must cover the shape (as [`GemmShape::check`] verifies); a slice too short
/// panics, it is never read out of bounds.
#[allow(clippy::too_many_arguments)]
pub(super) fn sgemv(
    isa: Isa,
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    threads: usize,
) {
    let Some((form, y_stride)) = form(shape, a, b) else {
        debug_assert!(false, "sgemv called on a product without a matrix-vector form");
        return;
    };
    let (len, depth) = (shape.m.max(shape.n), shape.k);
    // Chunks of outputs per thread: whole vectors of the rows form (of the widest ones),
    // whole groups of the dots form.
    let unit = match form {
        Gemv::Rows { .. } => MAX_LANES,
        Gemv::Dots { .. } => DOTS_GROUP_ROWS,
    };
    let parallel = threads > 1 && len.saturating_mul(depth) >= MIN_PARALLEL_MULADDS;
    let chunk = if parallel { len.div_ceil(threads).div_ceil(unit) * unit } else { len };
    let y_len = (len - 1) * y_stride + 1;
    let run = |(index, y): (usize, &mut [f32])| {
        let first = index * chunk;
        let outputs = first..(first + chunk).min(len);
        dispatch(isa, GemvChunk { form: &form, depth, outputs, alpha, beta, y, y_stride });
    };
    let y = &mut c[..y_len];
    if parallel {
        y.par_chunks_mut(chunk * y_stride).enumerate().for_each(run);
    } else {
        run((0, y));
    }
}

/// The outputs `outputs` of a matrix-vector product, written to `y` (which starts at the
/// first of them, `y_stride` apart).
struct GemvChunk<'a, 'y> {
    form: &'a Gemv<'a>,
    depth: usize,
    outputs: std::ops::Range<usize>,
    alpha: f32,
    beta: f32,
    y: &'y mut [f32],
    y_stride: usize,
}

impl Kernel for GemvChunk<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run<V: SimdF32>(self) {
        let GemvChunk { form, depth, outputs, alpha, beta, y, y_stride } = self;
        let first = outputs.start;
        // Scalar only (see `dot_rows` on closures).
        let mut out = |j: usize, sum: f32| {
            let old = &mut y[(j - first) * y_stride];
            *old = if beta == 0.0 { alpha * sum } else { alpha * sum + beta * *old };
        };
        match *form {
            Gemv::Rows { x, matrix, ld } if outputs.len() >= STREAM_MIN_OUTPUTS => {
                let mut panel = Panel([0.0; STREAM_PANEL]);
                for j in outputs.clone().step_by(STREAM_PANEL) {
                    let sums = &mut panel.0[..STREAM_PANEL.min(outputs.end - j)];
                    stream_rows::<V>(x, matrix, ld, depth, j, sums);
                    for (offset, &sum) in sums.iter().enumerate() {
                        out(j + offset, sum);
                    }
                }
            }
            Gemv::Rows { x, matrix, ld } => {
                let block = ROWS_BLOCK_VECTORS * V::LANES;
                for j in outputs.clone().step_by(block) {
                    let width = block.min(outputs.end - j);
                    let sums = match width.div_ceil(V::LANES) {
                        8 => to_lanes(combine_rows::<V, 8>(x, matrix, ld, depth, j, width)),
                        7 => to_lanes(combine_rows::<V, 7>(x, matrix, ld, depth, j, width)),
                        6 => to_lanes(combine_rows::<V, 6>(x, matrix, ld, depth, j, width)),
                        5 => to_lanes(combine_rows::<V, 5>(x, matrix, ld, depth, j, width)),
                        4 => to_lanes(combine_rows::<V, 4>(x, matrix, ld, depth, j, width)),
                        3 => to_lanes(combine_rows::<V, 3>(x, matrix, ld, depth, j, width)),
                        2 => to_lanes(combine_rows::<V, 2>(x, matrix, ld, depth, j, width)),
                        _ => to_lanes(combine_rows::<V, 1>(x, matrix, ld, depth, j, width)),
                    };
                    for (offset, &sum) in sums.0[..width].iter().enumerate() {
                        out(j + offset, sum);
                    }
                }
            }
            Gemv::Dots { x, matrix, ld } => {
                let mut i = outputs.start;
                while i + DOTS_GROUP_ROWS <= outputs.end {
                    let sums = dot_rows::<V, DOTS_GROUP_ROWS>(x, matrix, ld, i);
                    for (r, &s) in sums.iter().enumerate() {
                        out(i + r, s);
                    }
                    i += DOTS_GROUP_ROWS;
                }
                for i in i..outputs.end {
                    let [sum] = dot_rows::<V, 1>(x, matrix, ld, i);
                    out(i, sum);
                }
            }
        }
    }
}

/// `Σ_p x[p]·matrix[p·ld + j ..][..width]` for `p < depth`, as `W` vectors (`width` in
/// `16·(W - 1) + 1 ..= 16·W`): one chain of FMAs per vector, in registers; the last vector
/// of each row is read masked to `width` (its lanes past it come out 0).
#[inline(always)]
fn combine_rows<V: SimdF32, const W: usize>(
    x: Strided,
    matrix: &[f32],
    ld: usize,
    depth: usize,
    j: usize,
    width: usize,
) -> [V; W] {
    let lanes = V::LANES;
    let mut sums = [V::splat(0.0); W];
    for p in 0..depth {
        let scale = V::splat(x.data[p * x.stride]);
        let row = &matrix[p * ld + j..][..width];
        for v in 0..W - 1 {
            sums[v] = scale.mul_add(V::load(&row[v * lanes..]), sums[v]);
        }
        let last = &row[(W - 1) * lanes..];
        let last = if last.len() == lanes { V::load(last) } else { V::load_prefix(last) };
        sums[W - 1] = scale.mul_add(last, sums[W - 1]);
    }
    sums
}

/// `sums[q] = Σ_p x[p]·matrix[p·ld + j + q]` for `p < depth`, `q < sums.len()`: the rows
/// pass over the sums [`STREAM_ROWS`] at a time. Each sum is the same chain of FMAs, in the
/// same order, as a lane of [`combine_rows`], so the two give the same bits.
#[inline(always)]
fn stream_rows<V: SimdF32>(x: Strided, matrix: &[f32], ld: usize, depth: usize, j: usize, sums: &mut [f32]) {
    sums.fill(0.0);
    let mut p = 0;
    while p + STREAM_ROWS <= depth {
        add_rows::<V, STREAM_ROWS>(x, matrix, ld, p, j, sums);
        p += STREAM_ROWS;
    }
    for p in p..depth {
        add_rows::<V, 1>(x, matrix, ld, p, j, sums);
    }
}

/// `sums[q] += x[p + r]·matrix[(p + r)·ld + j + q]` for `r = 0, 1, .., R - 1` in turn: one
/// load and store of each sum per `R` rows.
#[inline(always)]
fn add_rows<V: SimdF32, const R: usize>(
    x: Strided,
    matrix: &[f32],
    ld: usize,
    p: usize,
    j: usize,
    sums: &mut [f32],
) {
    let (lanes, width) = (V::LANES, sums.len());
    let mut scales = [0.0; R];
    let mut rows: [&[f32]; R] = [&[]; R];
    for r in 0..R {
        scales[r] = x.data[(p + r) * x.stride];
        rows[r] = &matrix[(p + r) * ld + j..][..width];
    }
    let whole = width / lanes * lanes;
    for q in (0..whole).step_by(lanes) {
        let mut sum = V::load(&sums[q..]);
        for r in 0..R {
            sum = V::splat(scales[r]).mul_add(V::load(&rows[r][q..]), sum);
        }
        sum.store(&mut sums[q..]);
    }
    for q in whole..width {
        for r in 0..R {
            sums[q] = scales[r].mul_add(rows[r][q], sums[q]);
        }
    }
}

/// The lanes of `W` vectors, in order, in a buffer of one block.
#[inline(always)]
fn to_lanes<V: SimdF32, const W: usize>(sums: [V; W]) -> Block {
    let mut lanes = Block([0.0; ROWS_BLOCK_VECTORS * MAX_LANES]);
    for (v, sum) in sums.into_iter().enumerate() {
        sum.store(&mut lanes.0[v * V::LANES..]);
    }
    lanes
}

/// The dot products of rows `i..i + R` of `matrix` (`ld` apart) with `x`: per row, two
/// accumulators over alternate vectors of k (and the odd last vector in the first), added
/// and reduced across lanes, then the last `k mod LANES` products added one by one.
#[inline(always)]
fn dot_rows<V: SimdF32, const R: usize>(x: &[f32], matrix: &[f32], ld: usize, i: usize) -> [f32; R] {
    let (depth, lanes) = (x.len(), V::LANES);
    let rows: [&[f32]; R] = std::array::from_fn(|r| &matrix[(i + r) * ld..][..depth]);
    let mut even = [V::splat(0.0); R];
    let mut odd = [V::splat(0.0); R];
    let mut p = 0;
    while p + 2 * lanes <= depth {
        let (x0, x1) = (V::load(&x[p..]), V::load(&x[p + lanes..]));
        for r in 0..R {
            even[r] = V::load(&rows[r][p..]).mul_add(x0, even[r]);
            odd[r] = V::load(&rows[r][p + lanes..]).mul_add(x1, odd[r]);
        }
        p += 2 * lanes;
    }
    if p + lanes <= depth {
        let x0 = V::load(&x[p..]);
        for r in 0..R {
            even[r] = V::load(&rows[r][p..]).mul_add(x0, even[r]);
        }
        p += lanes;
    }
    // A loop, not `array::from_fn`: vector methods called in a closure are compiled without
    // the target features of the caller (see `crate::simd`).
    let mut sums = [0.0; R];
    for r in 0..R {
        sums[r] = (even[r] + odd[r]).reduce_add();
        for q in p..depth {
            sums[r] += rows[r][q] * x[q];
        }
    }
    sums
}
