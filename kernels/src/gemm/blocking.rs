//! Cache blocking of the GEMM loop nest, sized for the reference CPU (lscpu: 48 KiB L1d and
//! 2 MiB L2 per core, a large shared L3). MR and NR belong to each microkernel.

/// Depth of one rank-`KC` update. A packed micro-panel of B̃ (`KC x NR` floats: 32 KiB for
/// NR = 32) stays in L1 while the MR-row panels of Ã stream past it.
pub(crate) const KC: usize = 256;

/// Rows of the packed block Ã (`MC x KC` floats: 192 KiB), which stays in L2 while the
/// micro-panels of B̃ are swept over it. A multiple of every MR (12, 6, 4).
pub(crate) const MC: usize = 192;

/// Columns of the packed block B̃ (`KC x NC` floats: 1 MiB), which stays in L2 between
/// being packed and being swept by every MC block of A (a block sized for L3, 4096 columns,
/// measured 5-25% slower on wide im2col products, where B̃ went out to L3 and back). A
/// multiple of every NR (32, 16, 8).
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

/// ... unless the product is this shallow: a panel of at most this many rows spans few
/// enough pages and lines that farther rows are fine too (LeNet-5's first convolution reads
/// its 25 x 784 im2col matrix in place), as long as the rows do not all land in the same
/// L1 sets (a row stride that is a multiple of [`DIRECT_B_ALIASING_LDB`] floats).
pub(crate) const DIRECT_B_SHALLOW_K: usize = 32;

/// Row strides that are a multiple of this many floats (1 KiB) map every row of a panel to
/// the same few L1 sets.
pub(crate) const DIRECT_B_ALIASING_LDB: usize = 256;
