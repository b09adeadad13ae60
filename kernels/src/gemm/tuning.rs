//! Tuning constants of the GEMM family, in one table: the depth of the packed loop nest's
//! blocks, the thresholds between its paths and the prefetch distances. The blocks that
//! follow the L2 (MC, NC, the largest block of A read in place) are computed from the CPU's
//! caches in `blocking.rs`. The measurements behind each value are in `docs/tuning.md`
//! (section GEMM), taken on an AVX-512 Xeon with 48 KiB of L1d and 2 MiB of L2 per core. The
//! register tiles (MR, NR, a tile's accumulators) belong to each microkernel.

// Cache blocking of the packed loop nest (`driver.rs`).

/// Depth of one rank-KC update: an Ã micro-panel (`MR x KC`, 12 KiB for MR = 12) stays in L1.
pub(crate) const KC: usize = 256;
/// Columns of the B̃ block when it lives in L3 (`LoopOrder::BPanelInL1`; 4 MiB, as BLIS's 4080
/// on Zen and Haswell): op(A) is packed once per this many columns of C.
pub(crate) const NC_IN_L3: usize = 4096;

// Operands read in place rather than packed (`driver.rs`, `rows_in_lanes.rs`).

/// C of at most this many rows reads B as stored in place: packing costs about `2·m` FLOPs per float.
pub(crate) const DIRECT_B_MAX_M: usize = 256;
/// ... if B's rows are at most this many floats (2 KiB) apart: farther rows each miss the TLB and L1.
pub(crate) const DIRECT_B_MAX_LDB: usize = 512;
/// One row of tiles (or few rows) reads B in place while a block of k spans at most this many floats (4 MiB).
pub(crate) const DIRECT_B_MAX_SPAN: usize = 1 << 20;
/// ... and so does C of at most this many rows (three tiles of rows on AVX2): 16x6400x150 runs
/// 1.26x faster on one AVX2 thread and 1.67x on two than with B packed (`docs/tuning.md`).
pub(crate) const DIRECT_B_FEW_ROWS: usize = 16;
/// A part reads its block of A in place when the block is small (`Blocking::direct_a_max_floats`)
/// and the part is at most this many columns (8 AVX-512 tiles): wider parts reuse a packed Ã enough.
pub(crate) const DIRECT_A_MAX_COLS: usize = 256;

// Splitting C across threads (`driver.rs`, `shared.rs`).

/// Cost of packing one float of A, in microkernel multiply-adds (interleaving: twice B's cost).
pub(crate) const PACK_A_COST: usize = 36;
/// Cost of packing one float of B, in microkernel multiply-adds (row copies or 16x16 transposes).
pub(crate) const PACK_B_COST: usize = 16;
/// Largest operand the parts of a call share, in floats (8 MiB): past it a second copy costs < 0.1%.
pub(crate) const MAX_SHARED_FLOATS: usize = 1 << 21;

// Packing and the microkernels (`pack.rs`, `avx512.rs`, `avx2.rs`).

/// Rows of B packed together, so that 8 rows' reads are in flight at once.
pub(crate) const PACK_B_ROWS: usize = 8;
/// Steps of k the microkernels prefetch B̃ ahead: 16 steps, about 200 cycles, cover a read from L2.
pub(crate) const B_PREFETCH_STEPS: usize = 16;

// Matrix-vector products (`gemv.rs`).

/// Vectors per block of the rows form: 8 chains of FMAs in flight hide the FMA latency.
pub(crate) const ROWS_BLOCK_VECTORS: usize = 8;
/// Rows per group of the dots form: 2 accumulators each, so 8 chains of FMAs in flight.
pub(crate) const DOTS_GROUP_ROWS: usize = 4;
/// Outputs of a chunk from which the rows form streams whole rows past sums in L1.
pub(crate) const STREAM_MIN_OUTPUTS: usize = 512;
/// Sums per panel of the streamed rows form (8 KiB, in L1 beside the rows' lines).
pub(crate) const STREAM_PANEL: usize = 2048;
/// Rows per pass over a panel of sums: 4 long runs the hardware prefetchers follow.
pub(crate) const STREAM_ROWS: usize = 4;

// Few rows or few columns with C's rows in the lanes (`rows_in_lanes.rs`, AVX-512).

/// Fewest rows of the few-rows path: with fewer, the packed path (B read in place) wastes fewer lanes.
pub(crate) const FEW_ROWS_MIN: usize = 13;
/// Shallowest k of the few-rows path: below it a tile's two transposes outweigh its `24·k` FMAs.
pub(crate) const FEW_ROWS_MIN_DEPTH: usize = 32;
/// Depths of the few-columns path: where it beats the packed path (not at k = 256).
pub(crate) const FEW_COLUMNS_DEPTH: std::ops::RangeInclusive<usize> = 16..=128;
/// Rows of B the few-rows/columns tiles prefetch ahead (2 lines per row).
pub(crate) const B_PREFETCH_ROWS: usize = 8;
