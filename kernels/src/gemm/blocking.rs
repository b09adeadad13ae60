//! Cache blocking of the GEMM loop nest, sized for the reference CPU (lscpu: 48 KiB L1d and
//! 2 MiB L2 per core, a large shared L3). MR and NR belong to each microkernel.

/// Depth of one rank-`KC` update. A packed micro-panel of Ã (`MR x KC` floats: 12 KiB for
/// MR = 12) stays in L1 while the NR-column panels of B̃ stream past it from L2 (KC = 128,
/// 192, or 384 with NC = 512 measured no faster at 1024³: more passes over C, or a B̃ block
/// too big for L2).
pub(crate) const KC: usize = 256;

/// Rows of the packed block Ã (`MC x KC` floats: 192 KiB), packed per block of k and read
/// into L1 one micro-panel at a time. A multiple of every MR (12, 6, 4).
pub(crate) const MC: usize = 192;

/// Columns of the packed block B̃ (`KC x NC` floats: 1 MiB), which stays in L2 between
/// being packed and being swept once per micro-panel of Ã (a block sized for L3, 4096
/// columns, measured 5-25% slower on wide im2col products, where B̃ went out to L3 and
/// back). A multiple of every NR (32, 16, 8).
pub(crate) const NC: usize = 1024;

/// C with at most this many rows reads B (when not transposed) in place instead of packing
/// it: packing costs about as much per element of B as `2·m` FLOPs of compute, which only
/// pays off when many rows of A reuse each packed panel.
pub(crate) const DIRECT_B_MAX_M: usize = 256;

/// B is read in place only when its rows are at most this many floats apart (2 KiB): a
/// micro-panel read in place takes one row of B per step of k, and rows further apart (for
/// im2col matrices, often a multiple of 4 KiB) each land on a new page and in the same few
/// L1 sets, so the panel no longer stays in L1 and every step misses the TLB.
pub(crate) const DIRECT_B_MAX_LDB: usize = 512;

/// A C of at most MR rows (one row of tiles, which uses each B̃ panel once) reads B in place
/// whatever its row distance, as long as a panel's rows (one block of k, `ldb` apart) span
/// at most this many floats (4 MiB). Measured interleaved (A/B in one process): in place is
/// 1.3x to 3.7x faster for 6x784x25, 12x784x25, 6x6400x150, 10x1024x1024 and 1x4096x1024
/// (spans up to 1 Mi floats), and packing 5-20% faster for 12x6400x576 and 8x25088x1152
/// (1.2 Mi and 5.8 Mi floats), where reading rows that far apart in the microkernel stalls
/// on misses that a streaming copy overlaps. A taller C cut into parts of MR rows by the
/// thread split keeps packing: 16x6400x150 on two threads was 0.7x with such parts in place.
pub(crate) const DIRECT_B_MAX_SPAN: usize = 1 << 20;

/// A part of C reads its block of A (rows x one block of k) in place when the block holds at
/// most this many floats (256 KiB, within L2): see `reads_a_in_place` in `driver.rs`.
pub(crate) const DIRECT_A_MAX_FLOATS: usize = 1 << 16;

/// ... and when the part is at most this many columns wide (8 tiles of the AVX-512 kernel):
/// a wider part reuses each packed panel enough to pay for the copy.
pub(crate) const DIRECT_A_MAX_COLS: usize = 256;
