//! Products with 13 to 16 rows of C (B not transposed) on AVX-512: the
//! vector runs along the rows of C instead of its columns, so B is read once, in place.
//!
//! The packed loop nest would pack all of B (`k x n`) for a handful of rows of A to use it:
//! for 16x6400x150 (LeNet's conv2 as a GEMM) copying B took 44% of the time, and reading it
//! in place with that kernel read each B panel once per row tile, from rows `ldb` apart.
//! Here `op(A)` is packed as Ã (`k` steps of 16 floats: column p of op(A), zero past row
//! m; 600 floats for that product), and each tile of C, 16 rows by up to 24 columns, keeps
//! one accumulator per column of C:
//!
//! ```text
//!   for p in 0..k:  a = Ã[p] (16 rows)          acc[j] += a · B[p, j0 + j]  (j < 24)
//! ```
//!
//! 24 FMAs per step against one vector load and 24 broadcasts straight from B's row p (24
//! contiguous floats), prefetched a few rows ahead. The accumulators are C's columns; two
//! in-register 16x16 transposes turn them into its rows for the store (`α·acc + β·C`). Each
//! element of C is one chain of FMAs over all of k, whatever the thread count (threads
//! take whole tiles of columns), so the bits do not depend on it.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use rayon::prelude::*;

use super::blocking::DIRECT_B_MAX_SPAN;
use super::driver::{return_buffer, take_buffer, PACKED_A};
use super::native::SharedMut;
use super::{GemmShape, Transpose};
use crate::isa::Isa;

/// Rows of C the path takes at most: one vector of 16 lanes.
const MAX_ROWS: usize = 16;
/// ... and at least: a lane of the vector is wasted per missing row, while the packed path
/// does well up to one row of tiles (12 rows, B read in place). Measured interleaved: 6 rows
/// 0.4x the packed path (6x784x25), 12 rows 1.0x (12x6400x576).
const MIN_ROWS: usize = 13;
/// Depth below which the tile's two transposes (128 shuffles) weigh too much against its
/// `24·k` FMAs.
const MIN_DEPTH: usize = 32;
/// Columns of C per tile: 24 accumulators, the Ã vector and the broadcasts in 32 registers.
const TILE_COLS: usize = 24;
/// How many rows of B ahead the kernel prefetches its tile's part (2 lines per row).
/// Measured interleaved against 16: 1.02x-1.2x on one thread (16x6400x150, 16x1024x1024,
/// 14x2048x256, 16x784x150); 2 and 4 were 0.76x-0.98x of 8, 32 and 48 0.83x-0.99x of 16.
const B_PREFETCH_ROWS: usize = 8;

/// Whether the product `shape` takes this path on `isa`: AVX-512, 13 to 16 rows, B as
/// stored, and B's rows close enough together that reading a tile's part of each row is
/// not latency-bound (the span rule of `DIRECT_B_MAX_SPAN`: 8x25088x1152, which spans
/// 29 Mi floats, ran at 0.5x the packed path).
pub(super) fn takes_small_m(isa: Isa, shape: &GemmShape) -> bool {
    isa == Isa::Avx512
        && (MIN_ROWS..=MAX_ROWS).contains(&shape.m)
        && shape.transb == Transpose::No
        && shape.n >= 2 * TILE_COLS
        && shape.k >= MIN_DEPTH
        && shape.k.saturating_mul(shape.ldb) <= DIRECT_B_MAX_SPAN
}

/// `C = α·op(A)·B + β·C` for a product that [`takes_small_m`], over at most `threads`
/// threads (whole tiles of columns each).
///
/// # Safety
/// `shape` must pass [`GemmShape::check`] for the lengths of `a`, `b` and `c`, and take this
/// path ([`takes_small_m`], so the CPU has AVX-512F).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm_small_m(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    threads: usize,
) {
    let GemmShape { m, n, k, lda, ldb, ldc, transa, .. } = *shape;
    let mut packed = take_buffer(&PACKED_A, k * MAX_ROWS, k * MAX_ROWS);
    let packed_a = &mut packed[..k * MAX_ROWS];
    for (p, step) in packed_a.chunks_exact_mut(MAX_ROWS).enumerate() {
        for (i, value) in step.iter_mut().enumerate() {
            *value = match (i < m, transa) {
                (false, _) => 0.0,
                (true, Transpose::No) => a[i * lda + p],
                (true, Transpose::Yes) => a[p * lda + i],
            };
        }
    }
    let tiles = n.div_ceil(TILE_COLS);
    let tiles_per_part = tiles.div_ceil(threads.max(1));
    let c_shared = SharedMut(c.as_mut_ptr());
    let packed_a = &*packed_a;
    let run = |part: usize| {
        for tile in part * tiles_per_part..((part + 1) * tiles_per_part).min(tiles) {
            let col0 = tile * TILE_COLS;
            let cols = TILE_COLS.min(n - col0);
            // SAFETY: the tile's columns col0..col0 + cols < n of rows p < k of B lie inside
            // `b` (checked shape: (k - 1)·ldb + n <= b.len()), and of rows i < m of C inside
            // `c`; parts take disjoint tiles; the CPU has AVX-512F (caller's contract).
            unsafe {
                tile_by_cols(
                    k,
                    packed_a.as_ptr(),
                    b.as_ptr().add(col0),
                    ldb,
                    alpha,
                    beta,
                    c_shared.get().add(col0),
                    ldc,
                    m,
                    cols,
                )
            };
        }
    };
    let parts = tiles.div_ceil(tiles_per_part);
    if parts == 1 {
        run(0);
    } else {
        (0..parts).into_par_iter().for_each(run);
    }
    return_buffer(&PACKED_A, packed);
}

/// One tile of `rows` rows and `cols` (<= 24) columns: picks the instance for `cols`.
///
/// # Safety
/// As [`tile`].
#[allow(clippy::too_many_arguments)]
unsafe fn tile_by_cols(
    k: usize,
    packed_a: *const f32,
    b: *const f32,
    ldb: usize,
    alpha: f32,
    beta: f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! by_cols {
            ($($n:literal)*) => {
                match cols {
                    // SAFETY: forwarded from the caller, with NB = cols.
                    $($n => unsafe { tile::<$n>(k, packed_a, b, ldb, alpha, beta, c, ldc, rows) },)*
                    _ => unreachable!("a tile has 1 to {TILE_COLS} columns, not {cols}"),
                }
            };
        }
        by_cols!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("AVX-512 is never selected off x86_64: {k} {packed_a:?} {b:?} {ldb} {alpha} {beta} {c:?} {ldc} {rows} {cols}")
}

/// The tile update for `NB` columns (see the module docs).
///
/// # Safety
/// The CPU must have AVX-512F; `packed_a` must hold `k` steps of 16 floats; `b` must be
/// readable for `k` rows of `NB` floats `ldb` apart, and `c` readable (when `β ≠ 0`) and
/// writable for `rows <= 16` rows of `NB` floats `ldc` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const NB: usize>(
    k: usize,
    packed_a: *const f32,
    b: *const f32,
    ldb: usize,
    alpha: f32,
    beta: f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
) {
    let mut acc = [_mm512_setzero_ps(); NB];
    for p in 0..k {
        let ahead = b.wrapping_add((p + B_PREFETCH_ROWS) * ldb);
        _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(NB - 1) as *const i8);
        // SAFETY: p < k: step p of Ã (16 floats) and row p of the tile's part of B (NB
        // floats) are readable (caller's contract).
        unsafe {
            let a = _mm512_loadu_ps(packed_a.add(p * 16));
            let b_row = b.add(p * ldb);
            for (j, sum) in acc.iter_mut().enumerate() {
                *sum = _mm512_fmadd_ps(_mm512_set1_ps(*b_row.add(j)), a, *sum);
            }
        }
    }
    // acc[j] is column j of the tile; 16 columns at a time become rows.
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    for group in (0..NB).step_by(16) {
        let width = 16.min(NB - group);
        // Indexed by constants once the loops are unrolled, so `acc` stays in registers.
        let mut columns = [_mm512_setzero_ps(); 16];
        for (j, column) in columns.iter_mut().enumerate() {
            if j < width {
                *column = acc[group + j];
            }
        }
        let tile_rows = crate::transpose16::transpose16(columns);
        let mask: __mmask16 = if width == 16 { !0 } else { (1u16 << width) - 1 };
        for (i, &row) in tile_rows.iter().enumerate().take(rows) {
            // SAFETY: row i < rows, columns group..group + width < NB of the tile: inside
            // the part of C the caller made readable and writable; other lanes are masked.
            unsafe {
                let out = c.add(i * ldc + group);
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
