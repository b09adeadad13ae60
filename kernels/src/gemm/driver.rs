//! keel's packed GEMM: BLIS's loop nest over packed blocks, generic over the microkernel,
//! with the work split across the rayon pool.
//!
//! Threads: C is cut into one part per thread (whole tiles, along rows or columns, see
//! `split`), each part running the whole loop nest below on its own, except that the operand
//! every part would pack whole (B̃ for row parts, Ã for column parts) is packed once and
//! shared, panel by panel, by whichever part needs a panel first (`shared.rs`).
//!
//! Loop nest (outermost first), for `C = α·op(A)·op(B) + β·C`:
//! - loop 5: `jc` over the columns of C in blocks of NC (B̃'s block, in L2 or L3 by the loop
//!   order below; the block sizes follow the CPU's caches, see `blocking.rs`);
//! - loop 4: `pc` over the depth k in blocks of KC: pack `op(B)[pc.., jc..]` into B̃;
//!   the first block applies β, the others accumulate (β = 1). When a part has few rows
//!   (`<= DIRECT_B_MAX_M`) and B is not transposed (rows at most `DIRECT_B_MAX_LDB` apart
//!   where Ã's micro-panel stays in L1, or, when C has at most MR or `DIRECT_B_FEW_ROWS`
//!   rows, a block's rows spanning at most `DIRECT_B_MAX_SPAN`), B's rows are already what a
//!   B̃ panel holds: the microkernel reads
//!   them in place and only a ragged last panel is packed, since packing would cost as much
//!   as the few rows of A it serves;
//! - loop 3: `ic` over a part's rows in blocks of MC: pack `op(A)[ic.., pc..]` into Ã,
//!   unless A is not transposed and the part is one tile wide (each Ã panel would serve one
//!   microkernel call) or its block of A is small: then the microkernel reads A's rows in
//!   place (see `reads_a_in_place`);
//! - loops 2 and 1: `ir` over the block's rows in steps of MR (one Ã micro-panel) and `jr`
//!   over the part's columns in steps of NR (one B̃ micro-panel), one microkernel call per
//!   tile. Their order is the [`LoopOrder`] of the blocking: the outer one's micro-panel
//!   stays in L1 while the inner one streams the other block's from L2.
//!   - `APanelInL1` (`ir` outer; AVX-512): the L1-resident micro-panel is Ã's (MR x KC, 12
//!     KiB), not B̃'s (KC x NR, 32 KiB, which with the Ã panel streaming past it fills 44 of
//!     the 48 KiB of L1 and loses lines to it); the microkernel prefetches the B̃ rows it
//!     streams, and B̃'s block sits in L2.
//!   - `BPanelInL1` (`jr` outer; AVX2 and portable, whose B̃ micro-panel takes at most half of
//!     L1): BLIS's order. Ã's block sits in L2 and B̃'s in L3, so a wide C repacks op(A)
//!     rarely; B̃ is then packed even where its rows are close (a micro-panel read in place
//!     spreads over few L1 sets and does not stay).
//!
//! The fused epilogue (bias, activation) rides along with the last KC block: its microkernel
//! calls get the tile's part of it, applied in registers before the tile's last store.
//!
//! Every element of C is computed by one microkernel call per KC block, in the same order
//! whatever the thread count (parts start on whole tiles, so every element stays in the
//! same tile shape), so the bits do not depend on the number of threads.

use super::avx2::Avx2;
use super::avx512::Avx512;
use super::blocking::{blocking, Blocking, LoopOrder};
use super::buffers::{return_buffer, take_buffer, PACKED_A, PACKED_B};
use super::epilogue::{Epilogue, TileEpilogue};
use super::line_aligned::LineAligned;
use super::microkernel::Microkernel;
use super::pack::{pack_a, pack_b, Operand};
use super::parts::{run_parts, SharedMut};
use super::portable::Portable;
use super::shared::SharedPanels;
use super::tuning::{
    DIRECT_A_MAX_COLS, DIRECT_B_FEW_ROWS, DIRECT_B_MAX_LDB, DIRECT_B_MAX_M, DIRECT_B_MAX_SPAN, KC,
    MAX_SHARED_FLOATS, PACK_A_COST, PACK_B_COST,
};
use super::{GemmShape, Transpose};
use crate::isa::Isa;

/// keel's packed GEMM (the loop nest of the module docs) on the microkernel of `isa`,
/// `C = epilogue(α·op(A)·op(B) + β·C)`, with C split over at most `threads` threads.
///
/// # Safety
/// `shape` must pass [`GemmShape::check`] for the lengths of `a`, `b` and `c`, `epilogue`
/// [`Epilogue::check`] for `(m, n)`, `m, n, k >= 1`, `α ≠ 0`, and the CPU must support `isa`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm_packed(
    isa: Isa,
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: BSource,
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
    threads: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match isa {
            Isa::Avx512 => gemm_packed::<Avx512>(shape, alpha, a, b, beta, c, epilogue, threads),
            Isa::Avx2 => gemm_packed::<Avx2>(shape, alpha, a, b, beta, c, epilogue, threads),
            Isa::Portable => gemm_packed::<Portable>(shape, alpha, a, b, beta, c, epilogue, threads),
        }
    }
}

/// The loop nest of the module docs on microkernel `K`.
///
/// # Safety
/// As [`sgemm_packed`] for `K::ISA`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_packed<K: Microkernel>(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: BSource,
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
    threads: usize,
) {
    debug_assert!(K::ISA.is_supported(), "{:?} kernel run on a CPU without it", K::ISA);
    let GemmShape { m, n, k, .. } = *shape;
    debug_assert!(m >= 1 && n >= 1 && k >= 1 && alpha != 0.0, "a product the plan gives ScaleOnly");
    let a_op = Operand { data: a, ld: shape.lda, trans: shape.transa };
    let (b_data, prepacked) = match b {
        BSource::Matrix(data) => (data, None),
        BSource::Prepacked(panels) => (&[][..], Some(panels)),
    };
    let b_op = Operand { data: b_data, ld: shape.ldb, trans: shape.transb };
    let c_shared = SharedMut(c.as_mut_ptr());
    let (row_part, col_part) = split::<K>(shape, prepacked.is_some(), threads);
    let row_parts = m.div_ceil(row_part);
    let parts = row_parts * n.div_ceil(col_part);
    let shared = match prepacked {
        Some(_) => Shared::None,
        None => shared_operand::<K>(shape, a_op, row_part, col_part, parts),
    };
    let run = |part: usize| {
        let (row0, col0) = ((part % row_parts) * row_part, (part / row_parts) * col_part);
        let (rows, cols) = (row0..(row0 + row_part).min(m), col0..(col0 + col_part).min(n));
        let sweep = Sweep { shared: &shared, part, parts };
        let b = match prepacked {
            Some(panels) => BIn::Prepacked(panels),
            None => BIn::Matrix(b_op),
        };
        // SAFETY: the parts are disjoint rectangles of C; the rest is the caller's contract.
        unsafe { loop_nest::<K>(shape, alpha, a_op, b, beta, c_shared, rows, cols, epilogue, &sweep) };
    };
    run_parts(parts, run);
}

/// Where [`sgemm_packed`] finds B.
#[derive(Debug, Clone, Copy)]
pub(super) enum BSource<'a> {
    /// op(B) as the shape lays it out (`ldb`, `transb`): packed block by block, shared, or
    /// read in place, as the module docs say.
    Matrix(&'a [f32]),
    /// All of B̃ packed beforehand ([`super::PackedB`]'s layout: for each block of
    /// [`kc_step`] rows of k, every NR-wide micro-panel of all n columns, zero-padded).
    Prepacked(&'a [f32]),
}

/// [`BSource`] as a part's loop nest reads it.
#[derive(Clone, Copy)]
enum BIn<'a> {
    Matrix(Operand<'a>),
    Prepacked(&'a [f32]),
}

/// The operand the parts of a call share (see `shared.rs`), if any: packed once instead of
/// once per part.
enum Shared {
    /// Each part packs (or reads in place) its own blocks: one part, B read in place, an
    /// operand over [`MAX_SHARED_FLOATS`], column parts one tile wide, or a block of A small
    /// enough to read in place.
    None,
    /// Row parts share all of B̃.
    B(SharedPanels),
    /// Column parts share all of Ã, when each part is more than one tile wide. A part one
    /// tile wide reads each Ã panel once, straight from the other core's cache, and the
    /// microkernel stalls on it (Ã is not prefetched, as it stays in L1 once read), where
    /// packing its own copy overlaps better.
    A(SharedPanels),
}

/// What a part shares with the others, and where its sweeps over the shared panels start:
/// part `part` of `parts` starts at panel `part·panels / parts` and wraps around, so the
/// parts pack different panels rather than queueing for the same one.
struct Sweep<'a> {
    shared: &'a Shared,
    part: usize,
    parts: usize,
}

impl Sweep<'_> {
    /// The first of `panels` panels this part visits.
    fn first(&self, panels: usize) -> usize {
        self.part * panels / self.parts
    }
}

/// The indices `0..count` starting at `first` and wrapping around.
fn rotated(count: usize, first: usize) -> impl Iterator<Item = usize> {
    (first..count).chain(0..first.min(count))
}

/// The operand that `parts` parts of `row_part` rows (all rows when C is cut by columns)
/// would each pack whole: B̃ when C is cut by rows and B is packed, Ã when it is cut by
/// columns; packed once and shared if it fits [`MAX_SHARED_FLOATS`].
fn shared_operand<K: Microkernel>(
    shape: &GemmShape,
    a_op: Operand,
    row_part: usize,
    col_part: usize,
    parts: usize,
) -> Shared {
    let GemmShape { m, n, k, .. } = *shape;
    if parts <= 1 {
        return Shared::None;
    }
    let kc_step = kc_step(k);
    let by_rows = row_part < m;
    if by_rows && !reads_b_in_place::<K>(shape, row_part) && fits_shared(k, n, K::NR) {
        Shared::B(SharedPanels::new(k, kc_step, n.div_ceil(K::NR), K::NR))
    } else if !by_rows
        && col_part > K::NR
        && fits_shared(k, m, K::MR)
        && !reads_a_in_place::<K>(a_op, m, col_part, kc_step)
    {
        Shared::A(SharedPanels::new(k, kc_step, m.div_ceil(K::MR), K::MR))
    } else {
        Shared::None
    }
}

/// Whether an operand `k` deep and `width` wide, packed in panels of `panel_width`, is small
/// enough to share (see [`MAX_SHARED_FLOATS`]).
fn fits_shared(k: usize, width: usize, panel_width: usize) -> bool {
    width.div_ceil(panel_width).saturating_mul(panel_width).saturating_mul(k) <= MAX_SHARED_FLOATS
}

/// The `(rows, columns)` of the part of C each of `threads` threads computes: C is cut along
/// one side, in whole tiles, whichever side gives the largest part the least work: its
/// tiles' multiply-adds (128 rows of 12-row tiles split 72 + 56, while 64 columns split
/// 32 + 32) plus its packing (a row part packs all of B unless it reads B in place, a
/// column part packs all of A); on a tie, along the longer side. One parallel region per
/// call: each part runs the whole loop nest on its own, with no barrier per block.
///
/// The packing counts the shared operand whole for every part: counting each part's share of
/// it (so that mostly the tiles decide) picks the slower side on small products.
fn split<K: Microkernel>(shape: &GemmShape, prepacked: bool, threads: usize) -> (usize, usize) {
    let GemmShape { m, n, k, .. } = *shape;
    if threads <= 1 {
        return (m, n);
    }
    let (row_tiles, col_tiles) = (m.div_ceil(K::MR), n.div_ceil(K::NR));
    let (rows_each, cols_each) = (row_tiles.div_ceil(threads) * K::MR, col_tiles.div_ceil(threads) * K::NR);
    // Packing work of a part of `rows x cols`: all its rows of A, and all its columns of B
    // unless B is packed already or read in place.
    let packing = |rows: usize, cols: usize| {
        let packs_b = !prepacked && !reads_b_in_place::<K>(shape, rows);
        PACK_A_COST * rows * k + if packs_b { PACK_B_COST * cols * k } else { 0 }
    };
    let by_rows = rows_each * col_tiles * K::NR * k + packing(rows_each, n);
    let by_cols = row_tiles * K::MR * cols_each * k + packing(m, cols_each);
    if by_rows < by_cols || (by_rows == by_cols && m >= n) {
        (rows_each, n)
    } else {
        (m, cols_each)
    }
}

/// Whether a part of C with `rows` rows reads B in place rather than packing it (see the
/// module docs and `tuning.rs`), when B is not packed beforehand.
fn reads_b_in_place<K: Microkernel>(shape: &GemmShape, rows: usize) -> bool {
    let close_rows = shape.ldb <= DIRECT_B_MAX_LDB;
    // When all of C is one row of tiles, or a few (at most DIRECT_B_FEW_ROWS rows), each B̃
    // panel would serve one to three microkernel calls: packing it would cost about as much
    // as the product, unless the panel's rows are so far apart that reading them is
    // latency-bound. (Only for all of C: a part cut from a taller C by the thread split
    // shares B with the other parts, which then each pack their columns.)
    let few_uses = shape.m <= K::MR.max(DIRECT_B_FEW_ROWS)
        && kc_step(shape.k).saturating_mul(shape.ldb) <= DIRECT_B_MAX_SPAN;
    // Close rows count only where B̃ streams from L2 anyway: a micro-panel kept in L1 must be
    // contiguous (rows 1 KiB apart fall in 4 of the 64 sets of a 32 KiB L1d).
    let close = close_rows && blocking(K::ISA).order == LoopOrder::APanelInL1;
    shape.transb == Transpose::No && rows <= DIRECT_B_MAX_M && (close || few_uses)
}

/// The depth of the blocks k is cut into: equal blocks of at most KC (784 = 4 x 196, not
/// 3 x 256 + 16), since a thin last block would pay the C-tile loads and stores for little
/// arithmetic.
pub(super) fn kc_step(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC).max(1)).max(1)
}

/// Loops 5 to 1 over the part `rows x cols` of C, on the calling thread.
///
/// # Safety
/// As [`sgemm_packed`] for `K::ISA`, with `k >= 1` and the part inside C; no other
/// task may touch the part during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn loop_nest<K: Microkernel>(
    shape: &GemmShape,
    alpha: f32,
    a_op: Operand,
    b: BIn,
    beta: f32,
    c: SharedMut,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    epilogue: &Epilogue,
    sweep: &Sweep,
) {
    let GemmShape { n, k, ldc, .. } = *shape;
    let shared_b = match sweep.shared {
        Shared::B(panels) => Some(panels),
        _ => None,
    };
    let (b_op, prepacked) = match b {
        BIn::Matrix(b_op) => (b_op, None),
        BIn::Prepacked(panels) => (Operand { data: &[], ld: 1, trans: Transpose::No }, Some(panels)),
    };
    let Blocking { nc: block_cols, .. } = blocking(K::ISA);
    let direct_b = prepacked.is_none() && reads_b_in_place::<K>(shape, rows.len());
    let packed_panels = if direct_b { 1 } else { block_cols.min(cols.len()).div_ceil(K::NR) };
    // B̃ needs a buffer unless packed beforehand, shared, or read in place by a kernel that
    // needs no padded tail.
    let packs_b = prepacked.is_none() && shared_b.is_none() && !(direct_b && K::EXACT_EDGES);
    let mut packed_b = match packs_b {
        true => take_buffer(&PACKED_B, KC * K::NR * packed_panels, KC * block_cols.div_ceil(K::NR) * K::NR),
        false => LineAligned::default(),
    };
    // Loop 5: blocks of NC columns of C.
    for jc in cols.clone().step_by(block_cols) {
        let nc = block_cols.min(cols.end - jc);
        // Loop 4: blocks of at most KC along the depth.
        let kc_step = kc_step(k);
        for pc in (0..k).step_by(kc_step) {
            let kc = kc_step.min(k - pc);
            let beta_block = if pc == 0 { beta } else { 1.0 };
            let b_block = if let Some(all) = prepacked {
                // Block pc of B̃ holds the panels of all n columns; this block of C starts at
                // panel jc / NR (jc is a whole number of tiles).
                let padded_n = n.div_ceil(K::NR) * K::NR;
                BPanels::Packed(
                    &all[pc * padded_n + jc / K::NR * kc * K::NR..][..nc.div_ceil(K::NR) * kc * K::NR],
                )
            } else if let Some(panels) = shared_b {
                BPanels::Shared { panels, b: b_op, n, isa: K::ISA }
            } else if direct_b {
                // Only the last, ragged panel is packed (zero-padded to NR columns), unless
                // the kernel reads only its valid columns.
                let full = if K::EXACT_EDGES { nc } else { nc / K::NR * K::NR };
                let tail = &mut packed_b[..if full < nc { kc * K::NR } else { 0 }];
                if full < nc {
                    pack_b(b_op, pc, kc, jc + full, nc - full, K::NR, K::ISA, tail);
                }
                BPanels::Direct { b: b_op, full, tail }
            } else {
                let block = &mut packed_b[..nc.div_ceil(K::NR) * kc * K::NR];
                pack_b(b_op, pc, kc, jc, nc, K::NR, K::ISA, block);
                BPanels::Packed(block)
            };
            let part = Part { rows: rows.clone(), cols: 0..nc };
            // The epilogue goes with the last block of k, when the tiles are final.
            let block_epilogue = if pc + kc == k { Some(epilogue) } else { None };
            let block = Block { b: &b_block, pc, kc, jc, epilogue: block_epilogue };
            // SAFETY: rows x (jc..jc + nc) lies inside this call's part of C; A and B are
            // covered by the caller's contract.
            unsafe { run_part::<K>(a_op, &block, &part, alpha, beta_block, c, ldc, sweep) };
        }
    }
    if packs_b {
        return_buffer(&PACKED_B, packed_b);
    }
}

/// Where the microkernel finds the B̃ micro-panels of one (jc, pc) block.
enum BPanels<'a> {
    /// All packed, panel after panel.
    Packed(&'a [f32]),
    /// Read in place from B (not transposed), except the columns from `full` on (relative
    /// to jc), packed in `tail` (all of them in place for a kernel with exact edges).
    Direct { b: Operand<'a>, full: usize, tail: &'a [f32] },
    /// Packed once for all parts, each panel by the first part that needs it; `n` is the
    /// width of op(B).
    Shared { panels: &'a SharedPanels, b: Operand<'a>, n: usize, isa: Isa },
}

impl BPanels<'_> {
    /// The micro-panel for columns `jr..jr + NR` (relative to jc) of rows `pc..pc + kc`:
    /// its first element and its row stride.
    fn panel(&self, jr: usize, pc: usize, kc: usize, jc: usize, nr: usize) -> (*const f32, usize) {
        match self {
            BPanels::Packed(block) => (block[(jr / nr) * kc * nr..][..kc * nr].as_ptr(), nr),
            BPanels::Direct { b, full, tail } if jr >= *full => (tail[..kc * nr].as_ptr(), nr),
            BPanels::Direct { b, full, .. } => {
                // Rows pc..pc + kc and columns jc + jr.. of B exist up to the panel's width or
                // `full` (jr < full), and the kernel reads no further (see `Microkernel`).
                let (panel, b_rs, _) = b.in_place(pc, kc, jc + jr, nr.min(full - jr));
                (panel.as_ptr(), b_rs)
            }
            BPanels::Shared { panels, b, n, isa } => {
                let col0 = jc + jr;
                let pack = |out: &mut [f32]| pack_b(*b, pc, kc, col0, nr.min(n - col0), nr, *isa, out);
                (panels.panel(pc, kc, col0 / nr, pack).as_ptr(), nr)
            }
        }
    }
}

/// One (jc, pc) block of the loop nest: its B̃ panels, its place in k and in the columns of C,
/// and the epilogue when it is the last block of k.
struct Block<'a> {
    b: &'a BPanels<'a>,
    pc: usize,
    kc: usize,
    jc: usize,
    epilogue: Option<&'a Epilogue<'a>>,
}

/// A rectangle of the current `m x nc` block of C: rows, and columns relative to `jc`.
struct Part {
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

/// Loops 3 to 1 over one part of C.
///
/// # Safety
/// The part must lie inside C, no other task may touch it during the call, and the CPU must
/// support `K::ISA`.
#[allow(clippy::too_many_arguments)]
unsafe fn run_part<K: Microkernel>(
    a_op: Operand,
    block: &Block,
    part: &Part,
    alpha: f32,
    beta: f32,
    c: SharedMut,
    ldc: usize,
    sweep: &Sweep,
) {
    let Block { b: b_block, pc, kc, jc, epilogue } = *block;
    let source = match sweep.shared {
        Shared::A(panels) => ASource::Shared(panels),
        _ if reads_a_in_place::<K>(a_op, part.rows.len(), part.cols.len(), kc) => ASource::Direct,
        _ => ASource::Packed,
    };
    // Ã needs a buffer when packed, or for a ragged last panel read in place by a kernel
    // that needs it padded.
    let packs_a = match source {
        ASource::Packed => true,
        ASource::Shared(_) => false,
        ASource::Direct => !K::EXACT_EDGES,
    };
    let Blocking { mc, order, .. } = blocking(K::ISA);
    let mut packed_a = match packs_a {
        true => take_buffer(&PACKED_A, mc.div_ceil(K::MR) * K::MR * kc, mc.div_ceil(K::MR) * K::MR * KC),
        false => LineAligned::default(),
    };
    // Only a packed Ã is made block by block; otherwise one block holds all the part's rows.
    let block_rows = if matches!(source, ASource::Packed) { mc } else { part.rows.len() };
    let col_tiles = part.cols.len().div_ceil(K::NR);
    let first_col_tile = if matches!(b_block, BPanels::Shared { .. }) { sweep.first(col_tiles) } else { 0 };
    // Loop 3: blocks of MC rows.
    for ic in part.rows.clone().step_by(block_rows) {
        let mc = block_rows.min(part.rows.end - ic);
        if matches!(source, ASource::Packed) {
            pack_a(a_op, ic, mc, pc, kc, K::MR, K::ISA, &mut packed_a);
        }
        let row_tiles = mc.div_ceil(K::MR);
        let first_row_tile = if let ASource::Shared(_) = source { sweep.first(row_tiles) } else { 0 };
        // A ragged last panel read in place is packed once (zero-padded to MR rows) for a
        // kernel that reads all MR rows.
        let ragged = mc % K::MR != 0 && matches!(source, ASource::Direct) && !K::EXACT_EDGES;
        if ragged {
            let row0 = ic + (row_tiles - 1) * K::MR;
            pack_a(a_op, row0, mc % K::MR, pc, kc, K::MR, K::ISA, &mut packed_a[..kc * K::MR]);
        }
        // The Ã micro-panel of row tile `tile`: its rows, first element and strides.
        let a_panel = |tile: usize| {
            let ir = tile * K::MR;
            let (row0, rows) = (ic + ir, K::MR.min(mc - ir));
            let (panel, a_rs, a_cs) = match source {
                ASource::Shared(panels) => {
                    let pack = |out: &mut [f32]| pack_a(a_op, row0, rows, pc, kc, K::MR, K::ISA, out);
                    (panels.panel(pc, kc, row0 / K::MR, pack), 1, K::MR)
                }
                ASource::Direct if rows == K::MR || K::EXACT_EDGES => a_op.in_place(row0, rows, pc, kc),
                ASource::Direct => (&packed_a[..kc * K::MR], 1, K::MR),
                ASource::Packed => (&packed_a[tile * kc * K::MR..][..kc * K::MR], 1, K::MR),
            };
            (ir, rows, panel.as_ptr(), a_rs, a_cs)
        };
        // One microkernel call: row tile `tile` by the columns from `jr` (relative to jc).
        let call = |tile: usize, jr: usize| {
            let (ir, rows, a_panel, a_rs, a_cs) = a_panel(tile);
            let cols = K::NR.min(part.cols.end - jr);
            let (b_panel, b_rs) = b_block.panel(jr, pc, kc, jc, K::NR);
            let tile_epilogue = match epilogue {
                Some(epilogue) => epilogue.tile(ic + ir, jc + jr, rows, cols),
                None => TileEpilogue::NONE,
            };
            // SAFETY: (ic + ir, jc + jr) is inside C and the tile's `rows x cols` valid
            // part too; the part belongs to this task alone.
            let c_tile = unsafe { c.get().add((ic + ir) * ldc + jc + jr) };
            // SAFETY: the Ã panel holds MR rows of kc floats a_rs and a_cs apart (packed,
            // or sliced by `Operand::in_place`), the B̃ panel kc rows of NR floats b_rs
            // apart (`BPanels::panel` sliced them); the `rows x cols` tile lies inside C,
            // and `Epilogue::tile` sliced the tile's bias.
            unsafe {
                K::tile(
                    kc,
                    alpha,
                    a_panel,
                    a_rs,
                    a_cs,
                    b_panel,
                    b_rs,
                    beta,
                    c_tile,
                    ldc,
                    rows,
                    cols,
                    &tile_epilogue,
                )
            };
        };
        let column = |tile: usize| part.cols.start + tile * K::NR;
        match order {
            // Loop 2 over the Ã micro-panels, each staying in L1 while loop 1 streams the
            // B̃ block past it from L2 (the microkernel prefetches B̃'s rows ahead).
            LoopOrder::APanelInL1 => {
                for ir in rotated(row_tiles, first_row_tile) {
                    for jr in rotated(col_tiles, first_col_tile) {
                        call(ir, column(jr));
                    }
                }
            }
            // Loop 2 over the B̃ micro-panels, each staying in L1 while loop 1 streams the
            // Ã block past it from L2.
            LoopOrder::BPanelInL1 => {
                for jr in rotated(col_tiles, first_col_tile) {
                    for ir in rotated(row_tiles, first_row_tile) {
                        call(ir, column(jr));
                    }
                }
            }
        }
    }
    if packs_a {
        return_buffer(&PACKED_A, packed_a);
    }
}

/// Where the microkernel finds the Ã micro-panels of a part.
enum ASource<'a> {
    /// Packed block by block (MC rows) into a buffer of the spares.
    Packed,
    /// Packed once for all the column parts of the call (see [`Shared::A`]).
    Shared(&'a SharedPanels),
    /// Read in place from A (see [`reads_a_in_place`]), except a ragged last panel, which is
    /// packed for a kernel without exact edges.
    Direct,
}

/// Whether a part of `rows x cols` reads its block of A (`rows x kc`) in place rather than
/// packing it; the kernel then broadcasts from MR rows of A, each read sequentially. Only A
/// not transposed (Aᵀ in place would read one line per step of k, `lda` apart), and:
/// - when the part is one tile wide, each Ã panel serves one microkernel call per block of
///   k, and packing it would be a copy for nothing (as for B when C is one row of tiles);
/// - when the block of A holds at most [`Blocking::direct_a_max_floats`], the part is at most
///   [`DIRECT_A_MAX_COLS`] wide, and A's rows are not a multiple of 4 KiB apart (rows that
///   far apart all fall in one L1 set): the copy then costs more than the in-place panel's
///   address arithmetic (constants in the packed kernel).
fn reads_a_in_place<K: Microkernel>(a: Operand, rows: usize, cols: usize, kc: usize) -> bool {
    let small_block = rows * kc <= blocking(K::ISA).direct_a_max_floats
        && cols <= DIRECT_A_MAX_COLS
        && !a.ld.is_multiple_of(1024);
    a.trans == Transpose::No && (cols <= K::NR || small_block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(m: usize, n: usize, k: usize) -> GemmShape {
        GemmShape::new(m, n, k)
    }

    /// The split takes the side whose largest part has the least tiles' and packing work:
    /// a tall C (1024 x 64) is cut by rows into whole 12-row tiles, a wide one (64 x 1024) by
    /// columns into whole 32-column tiles; one thread keeps C whole.
    #[test]
    fn split_cuts_the_side_with_the_least_work_in_whole_tiles() {
        assert_eq!(split::<Avx512>(&shape(1024, 64, 256), false, 2), (516, 64));
        assert_eq!(split::<Avx512>(&shape(64, 1024, 256), false, 2), (64, 512));
        assert_eq!(split::<Avx512>(&shape(1024, 64, 256), false, 1), (1024, 64));
        // 128 x 64 reads B in place (its rows are close): only A's packing and the tiles
        // count, and cutting 11 row tiles 6 + 5 beats cutting A's packing in two.
        assert_eq!(split::<Avx512>(&shape(128, 64, 256), false, 2), (72, 64));
    }

    /// Part `p` of `parts` starts its sweep at panel `p·panels / parts`, so the parts start on
    /// different panels spread evenly, and every sweep visits every panel once.
    #[test]
    fn sweeps_start_spread_out_and_visit_every_panel() {
        let shared = Shared::None;
        let firsts: Vec<_> = (0..3).map(|part| Sweep { shared: &shared, part, parts: 3 }.first(9)).collect();
        assert_eq!(firsts, [0, 3, 6]);
        for first in firsts {
            let mut seen: Vec<_> = rotated(9, first).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..9).collect::<Vec<_>>());
        }
    }

    /// B is read in place when its rows are close (and Ã's micro-panel stays in L1), or when all of C is one row of tiles or
    /// at most `DIRECT_B_FEW_ROWS` rows and the block's rows span at most
    /// `DIRECT_B_MAX_SPAN`; never transposed, never for a part taller than `DIRECT_B_MAX_M`.
    #[test]
    fn b_is_read_in_place_when_close_or_used_once() {
        assert!(reads_b_in_place::<Avx512>(&shape(64, 256, 256), 64));
        assert!(!reads_b_in_place::<Avx512>(&shape(512, 256, 256), 512));
        let far = shape(8, 2000, 256).with_ld(256, 2000, 2000);
        assert!(reads_b_in_place::<Avx512>(&far, 8), "one row of tiles, rows 2000 apart");
        // Few rows on AVX2 (MR = 6): LeNet's conv2 as one GEMM, three tiles of rows.
        let lenet = shape(16, 6400, 150).with_ld(150, 6400, 6400);
        assert!(reads_b_in_place::<Avx2>(&lenet, 16), "16 rows, rows 6400 apart");
        let lenet_taller = shape(17, 6400, 150).with_ld(150, 6400, 6400);
        assert!(!reads_b_in_place::<Avx2>(&lenet_taller, 17));
        let lenet_deeper = shape(16, 6400, 256).with_ld(256, 6400, 6400);
        assert!(!reads_b_in_place::<Avx2>(&lenet_deeper, 16), "a block spanning 1.6 Mi floats");
        // Close rows of a 64-row C are packed where B̃'s micro-panel stays in L1.
        let close_in_place = reads_b_in_place::<Avx2>(&shape(64, 256, 256), 64);
        assert_eq!(close_in_place, blocking(Isa::Avx2).order == LoopOrder::APanelInL1);
        let far_tall = shape(64, 2000, 256).with_ld(256, 2000, 2000);
        assert!(!reads_b_in_place::<Avx512>(&far_tall, 64));
        let transposed = GemmShape { transb: Transpose::Yes, ..shape(64, 256, 256).with_ld(256, 256, 256) };
        assert!(!reads_b_in_place::<Avx512>(&transposed, 64));
    }

    /// A is read in place, never transposed, when the part is one tile wide or its block is
    /// small (at most `direct_a_max_floats`, at most `DIRECT_A_MAX_COLS` wide, rows not a
    /// multiple of 4 KiB apart).
    #[test]
    fn a_is_read_in_place_when_one_tile_wide_or_small() {
        let a = |ld, trans| Operand { data: &[], ld, trans };
        assert!(reads_a_in_place::<Avx512>(a(300, Transpose::No), 4096, 32, 256), "one tile wide");
        // 12 x 256 is the smallest limit any L2 gives (`Blocking::for_caches`).
        assert!(reads_a_in_place::<Avx512>(a(300, Transpose::No), 12, 64, 256), "a small block");
        assert!(!reads_a_in_place::<Avx512>(a(300, Transpose::No), 1 << 16, 64, 256), "a large block");
        assert!(!reads_a_in_place::<Avx512>(a(300, Transpose::No), 12, 512, 256), "too wide");
        assert!(!reads_a_in_place::<Avx512>(a(1024, Transpose::No), 12, 64, 256), "rows 4 KiB apart");
        assert!(!reads_a_in_place::<Avx512>(a(300, Transpose::Yes), 12, 32, 256), "transposed");
    }

    /// Row parts share B̃ when B is packed and fits; column parts more than one tile wide
    /// share Ã when it fits and is not read in place; otherwise nothing is shared.
    #[test]
    fn shared_operand_follows_the_cut() {
        let a = |ld| Operand { data: &[], ld, trans: Transpose::No };
        // Cut by rows, B transposed (so packed), 256 x 256: B̃ shared.
        let by_rows = GemmShape { transb: Transpose::Yes, ..shape(1024, 256, 256).with_ld(256, 256, 256) };
        assert!(matches!(shared_operand::<Avx512>(&by_rows, a(256), 516, 256, 2), Shared::B(_)));
        // Cut by rows with B read in place: nothing to share, and A is never shared by rows.
        // (Parts of 256 rows read B of 64 columns in place.)
        assert!(matches!(shared_operand::<Avx512>(&shape(512, 64, 256), a(256), 256, 64, 2), Shared::None));
        // Cut by columns, 64 wide parts, a block of A too large to read in place: Ã shared.
        let by_cols = shape(2048, 1024, 256);
        assert!(matches!(shared_operand::<Avx512>(&by_cols, a(256), 2048, 512, 2), Shared::A(_)));
        // Column parts one tile wide pack their own Ã.
        assert!(matches!(shared_operand::<Avx512>(&by_cols, a(256), 2048, 32, 2), Shared::None));
        // One part shares nothing.
        assert!(matches!(shared_operand::<Avx512>(&by_cols, a(256), 2048, 1024, 1), Shared::None));
    }
}
