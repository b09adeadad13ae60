//! The AVX-512F microkernel: a 12 x 32 tile of C in 24 zmm accumulators.
//!
//! Register budget (32 zmm): 24 accumulators (12 rows x 2 vectors of 16 lanes), 2 vectors of
//! the current row of B̃, 1 broadcast of A — 27 in use. Each step of the k loop does 24 FMAs
//! (12 cycles on two FMA pipes) against 2 vector loads and 12 broadcasts, so the loads hide
//! behind the arithmetic, as long as they hit L1: the Ã micro-panel stays there, and the
//! B̃ rows, streamed from L2, are prefetched a few steps ahead.
//!
//! ```text
//!            B̃ row p:  [ b0 (16 lanes) | b1 (16 lanes) ]
//! Ã col p:  a0  ->    acc[0][0] += a0·b0   acc[0][1] += a0·b1
//!           ..         ..
//!           a11 ->    acc[11][0] += a11·b0 acc[11][1] += a11·b1
//! ```
//!
//! Edge tiles need no scratch: the kernel is instantiated for every row count `R <= 12`
//! and for one or two vectors of columns (`V`), so a tile of C cut by the bottom edge
//! broadcasts only its `R` rows, a tile at most 16 columns wide (e.g. `n = 10`) does half
//! the FMAs, and the last vector's lanes past the edge are masked off in the loads of B̃,
//! and in the loads and stores of C (and of a per-column bias). So the kernel reads nothing
//! of Ã and B̃ outside the tile (`EXACT_EDGES`), and ragged panels read in place need no
//! padded copy.
//!
//! Ã is read packed (its layout fixed at compile time) or in place from A (row and column
//! strides given at run time: see `driver.rs`, for products one tile wide), one instance
//! each.
//!
//! The epilogue (bias, activation) is a second pass over the tile, staged in a local array
//! (in L1) between the `α`/`β` scaling and the one store of each vector: no pass over C.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::epilogue::{opaque_slope, Activation, TileBias, TileEpilogue};
#[cfg(target_arch = "x86_64")]
use super::line_aligned::rows_off_lines;
use super::microkernel::Microkernel;
use super::tuning::B_PREFETCH_STEPS;
use crate::isa::Isa;

/// The AVX-512F kernel (see the module docs).
pub(crate) struct Avx512;

const MR: usize = 12;
const NR: usize = 32;

impl Microkernel for Avx512 {
    const MR: usize = MR;
    const NR: usize = NR;
    const ISA: Isa = Isa::Avx512;
    const EXACT_EDGES: bool = true;

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
        // SAFETY: the caller guarantees the pointer ranges of the trait contract for the
        // `rows x cols` tile and that the CPU has AVX-512F; each instance below touches only
        // R = rows rows and V vectors covering `cols` (masked past it, unless the last vector
        // is full), and reads Ã with the strides given (the packed instance: the same
        // strides, as constants).
        unsafe {
            macro_rules! instance {
                ($r:literal, $v:literal, $full:literal, $packed:literal) => {
                    tile_avx512::<$r, $v, $full, $packed>(
                        kc, alpha, a, a_rs, a_cs, b, b_rs, beta, c, ldc, cols, epilogue,
                    )
                };
            }
            macro_rules! by_rows {
                ($($r:literal)*) => {
                    match (rows, cols <= 16, cols % 16 == 0, a_rs == 1 && a_cs == MR) {
                        $(
                            ($r, true, true, true) => instance!($r, 1, true, true),
                            ($r, true, false, true) => instance!($r, 1, false, true),
                            ($r, false, true, true) => instance!($r, 2, true, true),
                            ($r, false, false, true) => instance!($r, 2, false, true),
                            ($r, true, true, false) => instance!($r, 1, true, false),
                            ($r, true, false, false) => instance!($r, 1, false, false),
                            ($r, false, true, false) => instance!($r, 2, true, false),
                            ($r, false, false, false) => instance!($r, 2, false, false),
                        )*
                        _ => unreachable!("tile of {rows} rows: the contract allows 1..={MR}"),
                    }
                };
            }
            by_rows!(1 2 3 4 5 6 7 8 9 10 11 12)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "Isa::Avx512 is never selected off x86_64: {kc} {alpha} {a:?} {a_rs} {a_cs} {b:?} {b_rs} {beta} {c:?} {ldc} {rows} {cols} {epilogue:?}"
        )
    }
}

/// The tile update for `R` rows and `V` vectors of 16 columns, of which the first `cols`
/// are valid (`16·(V - 1) < cols <= 16·V`, `cols = 16·V` when `FULL_LAST`: then the loads
/// of B̃ need no mask), epilogue included; Ã's row and column strides are constants for a
/// packed Ã (`PACKED_A`). (Ã comes as separate pointer and strides: passed as one tuple, it
/// leaves the accumulators in memory, stored on every step of k.)
///
/// # Safety
/// The trait contract for a `R x cols` tile, on a CPU with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512<const R: usize, const V: usize, const FULL_LAST: bool, const PACKED_A: bool>(
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
    cols: usize,
    epilogue: &TileEpilogue,
) {
    let (a_rs, a_cs) = if PACKED_A { (1, MR) } else { (a_rs, a_cs) };
    // Lanes of the last vector inside the tile (all 16 for a full tile): B̃ and C are read
    // and C written only there.
    let last_lanes = cols - 16 * (V - 1);
    let last_mask: __mmask16 = if last_lanes >= 16 { !0 } else { (1u16 << last_lanes) - 1 };
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    if beta != 0.0 || kc >= 2 {
        // C is read (β ≠ 0) or written after the k loop: start fetching its rows now, so the
        // loads and stores at the end hit L1 (prefetches never fault, whatever the address).
        // For β = 0 it pays where the tile's stores weigh most, at small k, but not at k = 1
        // (nothing to overlap with).
        for i in 0..R {
            for v in 0..V {
                _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc + 16 * v) as *const i8);
            }
        }
    }
    // A row of B̃ starts on a cache line (packed buffers are line-aligned, rows 16·V floats
    // apart), so its V vectors lie in V lines. A row of B read in place may start anywhere in
    // a line (a `Vec` from the allocator starts 16 bytes past one), and then spans V + 1
    // lines: the last one is fetched too.
    let rows_straddle = rows_off_lines(b, b_rs);
    for p in 0..kc {
        // The B̃ micro-panel streams from L2 (see `driver.rs`): fetch the row
        // `B_PREFETCH_STEPS` ahead into L1 (past the panel's end, the start of the next
        // panel; prefetches never fault, whatever the address).
        let ahead = b.wrapping_add((p + B_PREFETCH_STEPS) * b_rs);
        for v in 0..V {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(16 * v) as *const i8);
        }
        if rows_straddle {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(16 * V - 1) as *const i8);
        }
        // SAFETY: p < kc, so B̃ row p (`cols` floats at b + p·b_rs, the last vector masked
        // to them) and Ã column p (R = rows floats at a + p·a_cs, a_rs apart) lie inside the
        // panels the contract makes readable.
        unsafe {
            let b_row = b.add(p * b_rs);
            let mut b_vec = [_mm512_setzero_ps(); V];
            for (v, b_v) in b_vec.iter_mut().enumerate().take(V - 1) {
                *b_v = _mm512_loadu_ps(b_row.add(16 * v));
            }
            let last = b_row.add(16 * (V - 1));
            b_vec[V - 1] =
                if FULL_LAST { _mm512_loadu_ps(last) } else { _mm512_maskz_loadu_ps(last_mask, last) };
            let a_col = a.add(p * a_cs);
            for (i, acc_row) in acc.iter_mut().enumerate() {
                let a_i = _mm512_set1_ps(*a_col.add(i * a_rs));
                for (sum, &b_v) in acc_row.iter_mut().zip(&b_vec) {
                    *sum = _mm512_fmadd_ps(a_i, b_v, *sum);
                }
            }
        }
    }
    // Two short passes rather than one that does everything: the compiler unrolls short
    // loops whole, so the accumulators stay in registers, while a loop with the whole
    // epilogue in its body indexes them at run time, which keeps them in an array on the
    // stack, zeroed by a call to `memset` (1.5 KiB) before the k loop. The first pass stores
    // `α·acc + β·C` to C, or, with an epilogue, to a staging array (not zeroed) that the
    // second pass finishes from: reloading the stored tile from C would stall each masked
    // load on the masked store before it.
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    let mut staged = std::mem::MaybeUninit::<[[__m512; V]; R]>::uninit();
    let staged = staged.as_mut_ptr().cast::<__m512>();
    let plain = epilogue.is_none();
    for (i, acc_row) in acc.iter().enumerate() {
        for (v, &sum) in acc_row.iter().enumerate() {
            let mask = if v + 1 == V { last_mask } else { !0 };
            // SAFETY: row i < R = rows, and the lanes the mask keeps are columns < cols of
            // the tile, which the contract makes writable (readable when β ≠ 0); masked-off
            // lanes are neither read nor written. `staged` has R·V vectors.
            unsafe {
                let out = c.add(i * ldc + 16 * v);
                let scaled = _mm512_mul_ps(alpha_v, sum);
                let value = if beta == 0.0 {
                    scaled
                } else {
                    _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(mask, out), scaled)
                };
                if plain {
                    _mm512_mask_storeu_ps(out, mask, value);
                } else {
                    staged.add(i * V + v).write(value);
                }
            }
        }
    }
    if plain {
        return;
    }
    for i in 0..R {
        for v in 0..V {
            let mask = if v + 1 == V { last_mask } else { !0 };
            // SAFETY: as above; the first pass wrote all R·V staged vectors, and the bias
            // covers rows < R and columns < cols.
            unsafe {
                let value = staged.add(i * V + v).read();
                let biased = match epilogue.bias {
                    TileBias::None => value,
                    TileBias::Row(bias) => _mm512_add_ps(value, _mm512_set1_ps(*bias.add(i))),
                    TileBias::Column(bias) => {
                        _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, bias.add(16 * v)))
                    }
                };
                _mm512_mask_storeu_ps(c.add(i * ldc + 16 * v), mask, activate(biased, epilogue.activation));
            }
        }
    }
}

/// [`Activation`] on 16 lanes, as its scalar form computes it: the comparison `x < 0` is
/// false for NaN, which passes through unchanged.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) fn activate(x: __m512, activation: Activation) -> __m512 {
    let zero = _mm512_setzero_ps();
    match activation {
        Activation::Identity => x,
        Activation::Relu => _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero), zero),
        Activation::LeakyRelu(slope) => {
            let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero);
            _mm512_mask_mul_ps(x, negative, x, _mm512_set1_ps(opaque_slope(slope)))
        }
    }
}
