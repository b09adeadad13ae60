//! Cosine similarity of one vector against every row of a matrix: the scores behind nearest
//! neighbours and analogies.

use rayon::prelude::*;

use super::{load_lanes, rows_of};
use crate::error::{check_len, Result};
use crate::isa::{current_isa, Isa};
use crate::parallel::chunk_len;
use crate::simd::{dispatch, Kernel, SimdF32};

/// `cos(query, row)` for a block of rows, given `‖query‖`.
struct CosineRows<'a> {
    query: &'a [f32],
    query_norm: f32,
    rows: &'a [f32],
    out: &'a mut [f32],
}

impl Kernel for CosineRows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        let dim = self.query.len();
        for (row, out) in self.rows.chunks_exact(dim).zip(self.out.iter_mut()) {
            // q·r and r·r in one pass over the row.
            let (mut dot, mut norm2) = (V::splat(0.0), V::splat(0.0));
            for (q, r) in self.query.chunks(V::LANES).zip(row.chunks(V::LANES)) {
                let (qv, rv) = (load_lanes::<V>(q), load_lanes::<V>(r));
                dot = qv.mul_add(rv, dot);
                norm2 = rv.mul_add(rv, norm2);
            }
            *out = cosine(dot.reduce_add(), self.query_norm, norm2.reduce_add().sqrt());
        }
    }
}

/// `dot/(‖q‖·‖r‖)`, 0 when either norm is 0 (a zero vector is like nothing), NaN stays NaN.
#[inline(always)]
pub(super) fn cosine(dot: f32, query_norm: f32, row_norm: f32) -> f32 {
    let denom = query_norm * row_norm;
    if denom == 0.0 {
        0.0
    } else {
        dot / denom
    }
}

/// `‖query‖` on vectors `V`.
struct Norm<'a>(&'a [f32]);

impl Kernel for Norm<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<V: SimdF32>(self) -> f32 {
        super::dot::<V>(self.0, self.0).sqrt()
    }
}

/// Cosine similarity of `query` with every row of `matrix`:
/// `out[r] = query·m_r / (‖query‖·‖m_r‖)`, taken as 0 where either norm is 0.
///
/// - `query` (dim >= 1); `matrix` (rows, dim) row-major; `out` (rows): **overwritten**.
///
/// Rows are split over the rayon pool above [`crate::parallel::MIN_PARALLEL_ELEMENTS`]
/// values; each row's result does not depend on the split. Errors: `dim = 0`, `matrix` not
/// whole rows, `out` not one value per row.
///
/// ```
/// use keel_kernels::embed::cosine_similarity;
/// # fn main() -> keel_kernels::Result<()> {
/// // query (dim 2), matrix (rows 4, dim 2), out (4).
/// let matrix = [2.0, 0.0, 0.0, 3.0, 1.0, 1.0, 0.0, 0.0];
/// let mut out = [0.0; 4];
/// cosine_similarity(&[1.0, 0.0], &matrix, &mut out)?;
/// let expected = [1.0, 0.0, 0.5f32.sqrt(), 0.0]; // the zero row gives 0
/// assert!(out.iter().zip(&expected).all(|(o, e)| (o - e).abs() < 1e-6));
/// # Ok(())
/// # }
/// ```
pub fn cosine_similarity(query: &[f32], matrix: &[f32], out: &mut [f32]) -> Result<()> {
    let dim = query.len();
    let rows = rows_of("matrix", matrix.len(), dim)?;
    check_len(|| format!("out (one per row of matrix ({rows}, {dim}))"), rows, out.len())?;
    let isa = current_isa();
    let query_norm = dispatch(isa, Norm(query));
    let rows_per_chunk = (chunk_len(matrix.len(), dim) / dim).max(1);
    if rows_per_chunk >= rows {
        run_rows(isa, query, query_norm, matrix, out);
        return Ok(());
    }
    out.par_chunks_mut(rows_per_chunk)
        .zip(matrix.par_chunks(rows_per_chunk * dim))
        .for_each(|(out, rows)| run_rows(isa, query, query_norm, rows, out));
    Ok(())
}

/// One block of rows on `isa`.
fn run_rows(isa: Isa, query: &[f32], query_norm: f32, rows: &[f32], out: &mut [f32]) {
    dispatch(isa, CosineRows { query, query_norm, rows, out });
}
