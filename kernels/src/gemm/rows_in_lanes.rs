//! Products with few rows or few columns of C on AVX-512, with C's **rows along the vector
//! lanes** instead of its columns: each tile keeps one accumulator per column of C (a
//! vector of 16 of its rows, or two), fed by broadcasts of op(B) read in place.
//!
//! ```text
//!   for p in 0..k:  a_v = Ã[p, 16v..16v + 16]      acc[v][j] += a_v · op(B)[p, j0 + j]
//! ```
//!
//! Two in-register 16x16 transposes per vector turn the accumulators (columns of C) into
//! rows for the store (`α·acc + β·C`). Each element of C is one chain of FMAs over all of
//! k, whatever the thread count (threads take whole tiles), so the bits do not depend on it.
//!
//! - **Few rows** (13 to 16, B as stored): one vector, tiles of 24 columns, `op(A)` packed
//!   whole as Ã (`k` steps of 16 floats), B read once, in place, 24 contiguous floats of a
//!   row per step. The packed loop nest would pack all of B for a handful of rows of A (for
//!   16x6400x150, LeNet's conv2 as a GEMM, the copy of B dominates).
//! - **Few columns** (at most 12, short k): two vectors, tiles of 32 rows by all of C's
//!   columns, Ã packed per 32 rows (16x16 transposes), op(B) read in place as stored or
//!   transposed. The packed loop nest would run 16-lane tiles for 10 columns (an MLP's
//!   head: 256x10x64), 62% of their lanes, and pack Bᵀ.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::buffers::{return_buffer, take_buffer, PACKED_A};
use super::line_aligned::{floats_past, LINE_FLOATS};
use super::pack::{pack_a, Operand};
use super::parts::{run_parts, SharedMut};
use super::tuning::{
    B_PREFETCH_ROWS, DIRECT_B_MAX_SPAN, FEW_COLUMNS_DEPTH, FEW_ROWS_MIN, FEW_ROWS_MIN_DEPTH,
};
use super::{GemmShape, Transpose};
use crate::isa::Isa;

/// Accumulators per tile (its columns times its vectors of rows): with the Ã vectors and
/// the broadcasts, within the 32 registers.
const TILE_ACCUMULATORS: usize = 24;
/// Few rows: at most one vector's worth (the tile's one vector of rows; the thresholds of
/// the path are in `tuning.rs`).
const FEW_ROWS_MAX: usize = 16;
/// Few columns: at most this many (two vectors of rows, 24 accumulators).
const FEW_COLUMNS_MAX: usize = TILE_ACCUMULATORS / 2;

/// Whether the product `shape` takes the few-rows path on `isa`: AVX-512, 13 to 16 rows, B
/// as stored, and B's rows close enough together that reading a tile's part of each row is
/// not latency-bound (the span rule of `DIRECT_B_MAX_SPAN`).
pub(super) fn takes_few_rows(isa: Isa, shape: &GemmShape) -> bool {
    isa == Isa::Avx512
        && (FEW_ROWS_MIN..=FEW_ROWS_MAX).contains(&shape.m)
        && shape.transb == Transpose::No
        && shape.n >= 2 * TILE_ACCUMULATORS
        && shape.k >= FEW_ROWS_MIN_DEPTH
        && shape.k.saturating_mul(shape.ldb) <= DIRECT_B_MAX_SPAN
}

/// Whether the product `shape` takes the few-columns path on `isa`: AVX-512, at most 12
/// columns, at least two vectors of rows, k in [`FEW_COLUMNS_DEPTH`]; either transpose.
pub(super) fn takes_few_columns(isa: Isa, shape: &GemmShape) -> bool {
    isa == Isa::Avx512 && shape.n <= FEW_COLUMNS_MAX && shape.m >= 32 && FEW_COLUMNS_DEPTH.contains(&shape.k)
}

/// Calls `each` on at most `threads` contiguous ranges that cover `0..items` (`items >= 1`),
/// as parts run by [`run_parts`].
fn for_each_range(items: usize, threads: usize, each: impl Fn(std::ops::Range<usize>) + Sync + Send) {
    let per_part = items.div_ceil(threads.max(1));
    run_parts(items.div_ceil(per_part), |part| each(part * per_part..((part + 1) * per_part).min(items)));
}

/// `C = α·op(A)·B + β·C` for a product that [`takes_few_rows`], over at most `threads`
/// threads (whole tiles of columns each).
///
/// # Safety
/// `shape` must pass [`GemmShape::check`] for the lengths of `a`, `b` and `c`, the product
/// must [`takes_few_rows`] on AVX-512, and the CPU must have AVX-512F.
pub(super) unsafe fn sgemm_few_rows(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    threads: usize,
) {
    let GemmShape { m, n, k, lda, ldb, ldc, transa, .. } = *shape;
    let mut packed = take_buffer(&PACKED_A, k * FEW_ROWS_MAX, k * FEW_ROWS_MAX);
    let packed_a = &mut packed[..k * FEW_ROWS_MAX];
    // One panel of 16 rows: step p holds column p of op(A), zeros past row m.
    pack_a(Operand { data: a, ld: lda, trans: transa }, 0, m, 0, k, FEW_ROWS_MAX, Isa::Avx512, packed_a);
    let packed_a = &*packed_a;
    let tile = Tile { k, b_rs: ldb, b_cs: 1, alpha, beta, ldc, rows: m };
    let c_shared = SharedMut(c.as_mut_ptr());
    let column_tiles = ColumnTiles::new(n, b.as_ptr(), ldb);
    for_each_range(column_tiles.count(), threads, |tiles| {
        for columns in tiles.map(|t| column_tiles.columns(t)) {
            let (col0, cols) = (columns.start, columns.len());
            // SAFETY: the tile's columns col0..col0 + cols <= n of rows p < k of B lie inside
            // `b` (checked shape: (k - 1)·ldb + n <= b.len()), and of rows i < m of C inside
            // `c`; parts take disjoint tiles; the CPU has AVX-512F (caller's contract).
            unsafe { tile.run(1, cols, packed_a.as_ptr(), b.as_ptr().add(col0), c_shared.get().add(col0)) };
        }
    });
    return_buffer(&PACKED_A, packed);
}

/// The few-rows path's tiles of columns, laid on B's cache lines: a tile's 24 floats of a
/// row of B (96 bytes) touch two lines when the tile starts on a 32-byte boundary, but every
/// other tile touches three when B's rows start between boundaries (a `Vec` from the system
/// allocator starts 16 bytes past one), and the third line is neither prefetched nor
/// shared with a neighbour. So when the rows all share an offset (`ldb` a multiple of 8),
/// the first tile is narrowed to end on a boundary.
struct ColumnTiles {
    n: usize,
    /// Width of the first tile; the others are `TILE_ACCUMULATORS` wide, the last ragged.
    first: usize,
}

impl ColumnTiles {
    /// Tiles over the `n` columns (`n >= TILE_ACCUMULATORS`) of B at `b`, rows `ldb` apart.
    fn new(n: usize, b: *const f32, ldb: usize) -> Self {
        const BOUNDARY_FLOATS: usize = LINE_FLOATS / 2;
        let past_boundary = floats_past(b, BOUNDARY_FLOATS);
        let first = if past_boundary == 0 || !ldb.is_multiple_of(BOUNDARY_FLOATS) {
            TILE_ACCUMULATORS
        } else {
            // 17 to 23 columns: at least two thirds of a tile.
            TILE_ACCUMULATORS - past_boundary
        };
        debug_assert!(n >= TILE_ACCUMULATORS);
        ColumnTiles { n, first }
    }

    fn count(&self) -> usize {
        1 + (self.n - self.first).div_ceil(TILE_ACCUMULATORS)
    }

    /// The columns of tile `t < count()`.
    fn columns(&self, t: usize) -> std::ops::Range<usize> {
        if t == 0 {
            return 0..self.first;
        }
        let start = self.first + (t - 1) * TILE_ACCUMULATORS;
        start..(start + TILE_ACCUMULATORS).min(self.n)
    }
}

/// `C = α·op(A)·op(B) + β·C` for a product that [`takes_few_columns`], over at most
/// `threads` threads (whole panels of 32 rows each).
///
/// # Safety
/// `shape` must pass [`GemmShape::check`] for the lengths of `a`, `b` and `c`, the product
/// must [`takes_few_columns`] on AVX-512, and the CPU must have AVX-512F.
pub(super) unsafe fn sgemm_few_columns(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    threads: usize,
) {
    const PANEL_ROWS: usize = 32;
    let GemmShape { m, n, k, lda, ldb, ldc, transa, transb } = *shape;
    let a_op = Operand { data: a, ld: lda, trans: transa };
    // op(B)[p, j] = b[p·b_rs + j·b_cs].
    let (b_rs, b_cs) = if transb == Transpose::No { (ldb, 1) } else { (1, ldb) };
    let c_shared = SharedMut(c.as_mut_ptr());
    for_each_range(m.div_ceil(PANEL_ROWS), threads, |panels| {
        let mut packed = take_buffer(&PACKED_A, PANEL_ROWS * k, PANEL_ROWS * k);
        let packed_a = &mut packed[..PANEL_ROWS * k];
        for row0 in panels.map(|panel| panel * PANEL_ROWS) {
            let rows = PANEL_ROWS.min(m - row0);
            pack_a(a_op, row0, rows, 0, k, PANEL_ROWS, Isa::Avx512, packed_a);
            let tile = Tile { k, b_rs, b_cs, alpha, beta, ldc, rows };
            // SAFETY: op(B) (k x n, n <= 12) lies inside `b` at p·b_rs + j·b_cs (checked
            // shape), rows row0..row0 + rows < m of C inside `c`; parts take disjoint panels;
            // the CPU has AVX-512F (caller's contract).
            unsafe { tile.run(2, n, packed_a.as_ptr(), b.as_ptr(), c_shared.get().add(row0 * ldc)) };
        }
        return_buffer(&PACKED_A, packed);
    });
}

/// What every tile of a call shares: the depth, op(B)'s strides (`op(B)[p, j]` at
/// `p·b_rs + j·b_cs` from the tile's first column), `α`, `β`, C's row distance and the
/// rows of C the tile covers.
struct Tile {
    k: usize,
    b_rs: usize,
    b_cs: usize,
    alpha: f32,
    beta: f32,
    ldc: usize,
    rows: usize,
}

impl Tile {
    /// One tile of `vectors` vectors of 16 rows and `cols` columns (`vectors·cols <= 24`):
    /// picks the instance.
    ///
    /// # Safety
    /// As [`tile`], with V = `vectors` and NB = `cols`.
    unsafe fn run(&self, vectors: usize, cols: usize, packed_a: *const f32, b: *const f32, c: *mut f32) {
        #[cfg(target_arch = "x86_64")]
        {
            macro_rules! by_cols {
                ($v:literal, $unit:literal: $($nb:literal)*) => {
                    match cols {
                        // SAFETY: forwarded from the caller, with V = vectors and NB = cols.
                        $($nb => unsafe { tile::<$v, $nb, $unit>(self, packed_a, b, c) },)*
                        _ => unreachable!("a tile of {} vectors has 1 to {} columns, not {cols}", $v, TILE_ACCUMULATORS / $v),
                    }
                };
            }
            match (vectors, self.b_cs == 1) {
                (1, true) => {
                    by_cols!(1, true: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24)
                }
                (2, true) => by_cols!(2, true: 1 2 3 4 5 6 7 8 9 10 11 12),
                (2, false) => by_cols!(2, false: 1 2 3 4 5 6 7 8 9 10 11 12),
                _ => unreachable!("the few-rows path has one vector and B's rows contiguous"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("AVX-512 is never selected off x86_64: {vectors} {cols} {packed_a:?} {b:?} {c:?}")
    }
}

/// The tile update for `V` vectors of 16 rows and `NB` columns (see the module docs);
/// `UNIT_COLS`: op(B)'s columns are adjacent (`b_cs = 1`, a constant, so the broadcasts
/// address B with fixed offsets).
///
/// # Safety
/// The CPU must have AVX-512F; `packed_a` must hold `k` steps of `16·V` floats; `b` must be
/// readable at `p·b_rs + j·b_cs` for `p < k`, `j < NB`, and `c` readable (when `β ≠ 0`) and
/// writable for `rows <= 16·V` rows of `NB` floats `ldc` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const V: usize, const NB: usize, const UNIT_COLS: bool>(
    tile: &Tile,
    packed_a: *const f32,
    b: *const f32,
    c: *mut f32,
) {
    let Tile { k, b_rs, b_cs, alpha, beta, ldc, rows } = *tile;
    let b_cs = if UNIT_COLS { 1 } else { b_cs };
    // acc[j][v]: rows 16v.. of column j of the tile.
    let mut acc = [[_mm512_setzero_ps(); V]; NB];
    for p in 0..k {
        let ahead = b.wrapping_add((p + B_PREFETCH_ROWS) * b_rs);
        _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add((NB - 1) * b_cs) as *const i8);
        // SAFETY: p < k: step p of Ã (16·V floats) and op(B)[p, j < NB] are readable
        // (caller's contract).
        unsafe {
            let mut a = [_mm512_setzero_ps(); V];
            for (v, a_v) in a.iter_mut().enumerate() {
                *a_v = _mm512_loadu_ps(packed_a.add((p * V + v) * 16));
            }
            let b_row = b.add(p * b_rs);
            for (j, acc_j) in acc.iter_mut().enumerate() {
                let b_j = _mm512_set1_ps(*b_row.add(j * b_cs));
                for (sum, &a_v) in acc_j.iter_mut().zip(&a) {
                    *sum = _mm512_fmadd_ps(b_j, a_v, *sum);
                }
            }
        }
    }
    // Up to 16 columns at a time of each vector of rows become rows.
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    for v in 0..V {
        for group in (0..NB).step_by(16) {
            let width = 16.min(NB - group);
            // Indexed by constants once the loops are unrolled, so `acc` stays in registers.
            let mut columns = [_mm512_setzero_ps(); 16];
            for (column, acc_j) in columns.iter_mut().zip(&acc[group..]).take(width) {
                *column = acc_j[v];
            }
            let tile_rows = crate::transpose16::transpose16(columns);
            let mask: __mmask16 = if width == 16 { !0 } else { (1u16 << width) - 1 };
            for (i, &row) in tile_rows.iter().enumerate().take(rows.saturating_sub(16 * v)) {
                // SAFETY: row 16v + i < rows, columns group..group + width < NB of the tile:
                // inside the part of C the caller made readable and writable; other lanes
                // are masked.
                unsafe {
                    let out = c.add((16 * v + i) * ldc + group);
                    let scaled = _mm512_mul_ps(alpha_v, row);
                    let value = if beta == 0.0 {
                        scaled
                    } else {
                        _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(mask, out), scaled)
                    };
                    _mm512_mask_storeu_ps(out, mask, value);
                }
            }
        }
    }
}
