//! The microkernel contract.
//!
//! Every level of the GEMM above the microkernel (packing, the loop nest, edges, threads) is
//! written once, generic over [`Microkernel`]; adding an instruction set means one new file
//! with one type implementing the trait, and one arm in [`Isa`] (`crate::isa`).

use crate::isa::Isa;

use super::epilogue::TileEpilogue;

/// One register-blocked tile update: `C[0..rows, 0..cols] = epi(α·(Ã·B̃) + β·C)`, for
/// `rows <= MR`, `cols <= NR`, where `epi` adds the tile's bias and applies the activation
/// of a [`TileEpilogue`] ([`TileEpilogue::NONE`]: nothing) on the registers, before the store.
///
/// Contract:
/// - `a` points at a micro-panel of `Ã`, `MR` rows by `kc` columns, `a_rs` apart along the
///   rows and `a_cs` along the columns (`a[i·a_rs + p·a_cs] = A[i, p]`): packed, column after
///   column (`a_rs = 1`, `a_cs = MR`), or read in place from A (`lda, 1`, or `1, lda` for
///   Aᵀ); rows from `rows` on may hold anything (the packing zero-pads them), and need not
///   exist at all for a kernel with [`Microkernel::EXACT_EDGES`];
/// - `b` points at a micro-panel of `B̃`: `kc` rows of `NR` contiguous values, `b_rs` apart
///   (`b[p·b_rs + j] = B[p, j]`): `b_rs = NR` when packed, `ldb` when read in place; columns
///   from `cols` on likewise;
/// - `c` points at the tile's top-left element, rows `ldc` apart; only the `rows x cols`
///   corner is read or written (edge tiles need no scratch, and C may end right after it);
/// - with `β = 0`, `C` is not read (NaN in it does not leak); `kc` may be 0 (then `C = β·C`);
/// - the epilogue's bias pointer is readable for `rows` floats (per row) or `cols` floats
///   (per column), the tile's own part of the bias.
pub(crate) trait Microkernel {
    /// Rows of the tile (values broadcast from `Ã`).
    const MR: usize;
    /// Columns of the tile (vector lanes along a row of `B̃` and `C`).
    const NR: usize;
    /// The instruction set this kernel needs.
    const ISA: Isa;
    /// Whether the kernel reads only the rows `< rows` of Ã and the columns `< cols` of B̃
    /// (masked loads, one instance per row count), so that a ragged last panel read in place
    /// need not be packed and padded first.
    const EXACT_EDGES: bool;

    /// The tile update described in the trait docs.
    ///
    /// # Safety
    /// `a` must be readable at `i·a_rs + p·a_cs` for every `i < MR` (`i < rows` with
    /// [`Self::EXACT_EDGES`]), `p < kc`, `b` for `kc` rows of `NR` floats (`cols` floats
    /// with [`Self::EXACT_EDGES`]) `b_rs`
    /// apart, `c` readable (when `β ≠ 0`) and writable for `rows` rows of `cols` floats
    /// `ldc` apart, `1 <= rows <= MR`, `1 <= cols <= NR`, the epilogue's bias as in the
    /// trait docs, and the CPU must support [`Self::ISA`].
    #[allow(clippy::too_many_arguments)]
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
    );
}

/// The largest `MR x NR` of the kernels that finish edge tiles through [`via_scratch`].
const MAX_SCRATCH_TILE: usize = 6 * 16;

/// The edge handling of the kernels without masked stores (AVX2, portable): `full_tile`
/// writes a whole `mr x nr` tile with `β = 0` into a scratch tile (rows `nr` apart), whose
/// valid `rows x cols` corner is then combined with C as `C = epi(scratch + β·C)`.
///
/// # Safety
/// `c` must be readable (when `β ≠ 0`) and writable for `rows` rows of `cols` floats `ldc`
/// apart, with `rows <= mr`, `cols <= nr`, `mr·nr <= MAX_SCRATCH_TILE`, and the epilogue's
/// bias readable for the `rows x cols` tile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn via_scratch(
    mr: usize,
    nr: usize,
    full_tile: impl FnOnce(*mut f32),
    beta: f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    epilogue: &TileEpilogue,
) {
    let mut scratch = [0.0f32; MAX_SCRATCH_TILE];
    assert!(mr * nr <= MAX_SCRATCH_TILE && rows <= mr && cols <= nr);
    full_tile(scratch.as_mut_ptr());
    for (i, scratch_row) in scratch.chunks_exact(nr).take(rows).enumerate() {
        // SAFETY: row i < rows of the valid corner, `cols` floats long (caller's contract).
        let c_row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), cols) };
        for (j, (out, &value)) in c_row.iter_mut().zip(scratch_row).enumerate() {
            let value = if beta == 0.0 { value } else { value + beta * *out };
            // SAFETY: (i, j) lies in the `rows x cols` tile the epilogue was made for.
            *out = unsafe { epilogue.apply(value, i, j) };
        }
    }
}
