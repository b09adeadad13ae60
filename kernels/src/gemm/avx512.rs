//! The AVX-512F microkernel: a 12 x 32 tile of C in 24 zmm accumulators.
//!
//! Register budget (32 zmm): 24 accumulators (12 rows x 2 vectors of 16 lanes), 2 vectors of
//! the current row of B̃, 1 broadcast of A — 27 in use. Each step of the k loop does 24 FMAs
//! (12 cycles on two FMA pipes) against 2 vector loads and 12 broadcasts, so the loads hide
//! behind the arithmetic.
//!
//! ```text
//!            B̃ row p:  [ b0 (16 lanes) | b1 (16 lanes) ]
//! Ã col p:  a0  ->    acc[0][0] += a0·b0   acc[0][1] += a0·b1
//!           ..         ..
//!           a11 ->    acc[11][0] += a11·b0 acc[11][1] += a11·b1
//! ```

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::microkernel::{Isa, Microkernel};

/// The AVX-512F kernel (see the module docs).
pub(crate) struct Avx512;

impl Microkernel for Avx512 {
    const MR: usize = 12;
    const NR: usize = 32;
    const ISA: Isa = Isa::Avx512;

    unsafe fn tile(
        kc: usize,
        alpha: f32,
        a: *const f32,
        b: *const f32,
        b_rs: usize,
        beta: f32,
        c: *mut f32,
        ldc: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees the pointer ranges of the trait contract and that the
        // CPU has AVX-512F.
        unsafe {
            tile_avx512(kc, alpha, a, b, b_rs, beta, c, ldc)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "Isa::Avx512 is never selected off x86_64: {kc} {alpha} {a:?} {b:?} {b_rs} {beta} {c:?} {ldc}"
        )
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512(
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    b_rs: usize,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    const MR: usize = 12;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: p < kc, so B̃ row p (NR floats at b + p·b_rs) and Ã column p (MR floats at
        // a + p·MR) lie inside the panels the contract makes readable.
        unsafe {
            let b_row = b.add(p * b_rs);
            let b0 = _mm512_loadu_ps(b_row);
            let b1 = _mm512_loadu_ps(b_row.add(16));
            let a_col = a.add(p * MR);
            for (i, acc_row) in acc.iter_mut().enumerate() {
                let a_i = _mm512_set1_ps(*a_col.add(i));
                acc_row[0] = _mm512_fmadd_ps(a_i, b0, acc_row[0]);
                acc_row[1] = _mm512_fmadd_ps(a_i, b1, acc_row[1]);
            }
        }
    }
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    for (i, acc_row) in acc.iter().enumerate() {
        for (half, &sum) in acc_row.iter().enumerate() {
            // SAFETY: row i < MR and lanes 16·half..16·half+16 < NR = 32 of the tile, which the
            // contract makes writable (and readable when β ≠ 0).
            unsafe {
                let out = c.add(i * ldc + 16 * half);
                let scaled = _mm512_mul_ps(alpha_v, sum);
                let value =
                    if beta == 0.0 { scaled } else { _mm512_fmadd_ps(beta_v, _mm512_loadu_ps(out), scaled) };
                _mm512_storeu_ps(out, value);
            }
        }
    }
}
