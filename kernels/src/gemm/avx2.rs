//! The AVX2+FMA microkernel: a 6 x 16 tile of C in 12 ymm accumulators.
//!
//! Register budget (16 ymm): 12 accumulators (6 rows x 2 vectors of 8 lanes), 2 vectors of
//! the current row of B̃, 1 broadcast of A — 15 in use. Same data flow as the AVX-512
//! kernel (see `avx512.rs`), at half the width, epilogue included; edge tiles go through a
//! scratch tile (`via_scratch`), which applies the epilogue in scalar code.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::epilogue::{opaque_slope, Activation, TileBias, TileEpilogue};
#[cfg(target_arch = "x86_64")]
use super::line_aligned::rows_off_lines;
use super::microkernel::{via_scratch, Microkernel};
use super::tuning::B_PREFETCH_STEPS;
use crate::isa::Isa;

/// The AVX2+FMA kernel (see the module docs).
pub(crate) struct Avx2;

impl Microkernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;
    const ISA: Isa = Isa::Avx2;
    const EXACT_EDGES: bool = false;

    unsafe fn tile(
        kc: usize,
        alpha: f32,
        a: *const f32,
        a_rs: usize,
        a_cs: usize,
        b: *const f32,
        b_rs: usize,
        beta: f32,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        epilogue: &TileEpilogue,
    ) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees the pointer ranges of the trait contract and that the
        // CPU has AVX2 and FMA; an edge tile goes through a full scratch tile.
        unsafe {
            let packed = a_rs == 1 && a_cs == Self::MR;
            let run = |beta, c, ldc, epilogue| match packed {
                true => tile_avx2::<true>(kc, alpha, a, a_rs, a_cs, b, b_rs, beta, c, ldc, epilogue),
                false => tile_avx2::<false>(kc, alpha, a, a_rs, a_cs, b, b_rs, beta, c, ldc, epilogue),
            };
            if rows == Self::MR && cols == Self::NR {
                run(beta, c, ldc, epilogue)
            } else {
                let full = |scratch| run(0.0, scratch, Self::NR, &TileEpilogue::NONE);
                via_scratch(Self::MR, Self::NR, full, beta, c, ldc, rows, cols, epilogue)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "Isa::Avx2 is never selected off x86_64: {kc} {alpha} {a:?} {a_rs} {a_cs} {b:?} {b_rs} {beta} {c:?} {ldc} {rows} {cols} {epilogue:?}"
        )
    }
}

/// The full 6 x 16 tile update, epilogue included; Ã's row and column strides are
/// constants for a packed Ã (`PACKED_A`).
///
/// # Safety
/// The trait contract for a full tile (`rows = 6`, `cols = 16`), on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx2<const PACKED_A: bool>(
    kc: usize,
    alpha: f32,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
    beta: f32,
    c: *mut f32,
    ldc: usize,
    epilogue: &TileEpilogue,
) {
    const MR: usize = 6;
    let (a_rs, a_cs) = if PACKED_A { (1, MR) } else { (a_rs, a_cs) };
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    // As in the AVX-512 kernel: C's rows are fetched before the k loop (it is read, or written
    // after more than one step), and B̃'s rows `B_PREFETCH_STEPS` ahead, with the second line
    // of a row of B read in place off a cache line (both lines of a straddling row: the
    // first alone leaves the second to miss).
    if beta != 0.0 || kc >= 2 {
        for i in 0..MR {
            _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc + 15) as *const i8);
        }
    }
    let rows_straddle = rows_off_lines(b, b_rs);
    for p in 0..kc {
        // Prefetches never fault, whatever the address (past the panel's end).
        let ahead = b.wrapping_add((p + B_PREFETCH_STEPS) * b_rs);
        _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
        if rows_straddle {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(15) as *const i8);
        }
        // SAFETY: p < kc, so B̃ row p and Ã column p lie inside the contract's panels.
        unsafe {
            let b_row = b.add(p * b_rs);
            let b0 = _mm256_loadu_ps(b_row);
            let b1 = _mm256_loadu_ps(b_row.add(8));
            let a_col = a.add(p * a_cs);
            for (i, acc_row) in acc.iter_mut().enumerate() {
                let a_i = _mm256_set1_ps(*a_col.add(i * a_rs));
                acc_row[0] = _mm256_fmadd_ps(a_i, b0, acc_row[0]);
                acc_row[1] = _mm256_fmadd_ps(a_i, b1, acc_row[1]);
            }
        }
    }
    let alpha_v = _mm256_set1_ps(alpha);
    let beta_v = _mm256_set1_ps(beta);
    for (i, acc_row) in acc.iter().enumerate() {
        for (half, &sum) in acc_row.iter().enumerate() {
            // SAFETY: row i < MR and lanes 8·half..8·half+8 < NR = 16 of the tile, whose
            // bias covers its 6 rows or 16 columns.
            unsafe {
                let out = c.add(i * ldc + 8 * half);
                let scaled = _mm256_mul_ps(alpha_v, sum);
                let value =
                    if beta == 0.0 { scaled } else { _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(out), scaled) };
                let biased = match epilogue.bias {
                    TileBias::None => value,
                    TileBias::Row(bias) => _mm256_add_ps(value, _mm256_set1_ps(*bias.add(i))),
                    TileBias::Column(bias) => _mm256_add_ps(value, _mm256_loadu_ps(bias.add(8 * half))),
                };
                _mm256_storeu_ps(out, activate(biased, epilogue.activation));
            }
        }
    }
}

/// [`Activation`] on 8 lanes, as its scalar form computes it: the comparison `x < 0` is
/// false for NaN, which passes through unchanged.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn activate(x: __m256, activation: Activation) -> __m256 {
    let zero = _mm256_setzero_ps();
    match activation {
        Activation::Identity => x,
        Activation::Relu => _mm256_blendv_ps(x, zero, _mm256_cmp_ps::<_CMP_LT_OQ>(x, zero)),
        Activation::LeakyRelu(slope) => {
            let scaled = _mm256_mul_ps(x, _mm256_set1_ps(opaque_slope(slope)));
            _mm256_blendv_ps(x, scaled, _mm256_cmp_ps::<_CMP_LT_OQ>(x, zero))
        }
    }
}
