//! The portable microkernel: a 4 x 8 tile in plain Rust, vectorised by the compiler for
//! whatever the build targets (SSE2 on a default x86_64 build). It runs anywhere, under Miri
//! too, and is the path every other kernel is measured against in the tests.

use super::epilogue::TileEpilogue;
use super::microkernel::{via_scratch, Microkernel};
use crate::isa::Isa;

/// The portable kernel (see the module docs).
pub(crate) struct Portable;

const MR: usize = 4;
const NR: usize = 8;

impl Microkernel for Portable {
    const MR: usize = MR;
    const NR: usize = NR;
    const ISA: Isa = Isa::Portable;
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
        if rows < MR || cols < NR {
            // SAFETY: the full tile is written into the scratch (rows NR apart), then the
            // corner the caller's contract covers is combined with C.
            unsafe {
                let full = |scratch| {
                    Self::tile(
                        kc,
                        alpha,
                        a,
                        a_rs,
                        a_cs,
                        b,
                        b_rs,
                        0.0,
                        scratch,
                        NR,
                        MR,
                        NR,
                        &TileEpilogue::NONE,
                    )
                };
                via_scratch(MR, NR, full, beta, c, ldc, rows, cols, epilogue)
            };
            return;
        }
        let mut acc = [[0.0f32; NR]; MR];
        for p in 0..kc {
            // SAFETY: p < kc: the contract makes row p of B̃ (NR floats at b + p·b_rs) and
            // Ã's column p (MR floats at a + p·a_cs, a_rs apart) readable.
            let (b_row, a_col) = unsafe {
                let b_row = std::slice::from_raw_parts(b.add(p * b_rs), NR);
                (b_row, std::array::from_fn::<f32, MR, _>(|i| *a.add(i * a_rs + p * a_cs)))
            };
            for (acc_row, &a_i) in acc.iter_mut().zip(&a_col) {
                for (sum, &b_j) in acc_row.iter_mut().zip(b_row) {
                    // A separate multiply and add: `mul_add` is a libm call where the target lacks FMA.
                    *sum += a_i * b_j;
                }
            }
        }
        for (i, acc_row) in acc.iter().enumerate() {
            // SAFETY: row i < MR of the tile holds NR writable floats (readable when β ≠ 0).
            let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), NR) };
            for (j, (out, &sum)) in row.iter_mut().zip(acc_row).enumerate() {
                let value = if beta == 0.0 { alpha * sum } else { beta * *out + alpha * sum };
                // SAFETY: (i, j) lies in the full MR x NR tile the epilogue was made for.
                *out = unsafe { epilogue.apply(value, i, j) };
            }
        }
    }
}
