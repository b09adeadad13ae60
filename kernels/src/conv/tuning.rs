//! Tuning constants of the convolution family, in one table: when the images-in-lanes and
//! direct paths run, and how much work one of their passes takes. The measurements behind
//! each value are in `docs/tuning.md` (section Convolution). The register blocks of the
//! kernels (output channels, positions, taps per block) belong to each kernel.

/// Lane groups one weight-gradient sweep sums: their layouts (4 x 366 KiB on LeNet-5 conv1) stay in L2.
pub(crate) const GROUPS_PER_PASS: usize = 4;
/// Largest lane group's input and output layouts, in floats (1 MiB): past it they leave L2.
pub(crate) const MAX_GROUP_FLOATS: usize = 1 << 18;
/// The forward takes the lanes path where the direct loops fill less than this share of their lanes.
pub(crate) const DIRECT_MIN_FILL_PERCENT: usize = 80;
/// Outputs of a row one strip of the direct loops computes at least (an AVX-512 vector, two AVX2
/// vectors): the width the fill share above is taken of.
pub(crate) const DIRECT_ROW_LANES: usize = 16;
/// Output channels per group up to which the weight gradient runs direct: wider layers are efficient GEMMs.
pub(crate) const GRAD_MAX_CHANNELS: usize = 16;
/// Output row width from which the forward runs direct on any channel count (wide strips of 16-lane vectors).
pub(crate) const DIRECT_MIN_OUT_W: usize = 17;
/// The same on AVX2 (strips of two 8-lane vectors): 1.03x-1.06x over im2col + GEMM at rows of 14.
pub(crate) const DIRECT_MIN_OUT_W_AVX2: usize = 9;
/// Weights of one register block of the direct forward summed per sweep over the strips, in
/// floats (16 KiB: a third of a 48 KiB L1, beside the strips' input rows).
pub(crate) const DIRECT_WEIGHT_BLOCK_FLOATS: usize = 4096;
/// Input channels per group up to which the direct loops beat im2col + GEMM on any row width (first layers).
pub(crate) const FEW_IN_CHANNELS: usize = 8;
/// Output planes smaller than this many positions gather several images into one GEMM (ResNet's 7x7 = 49).
pub(crate) const GATHER_MAX_POSITIONS: usize = 100;
/// Columns a gathered GEMM aims for (images times positions).
pub(crate) const GATHER_COLUMNS: usize = 512;
/// Column floats of one band of output rows of an im2col + GEMM forward or weight gradient
/// (1 MiB, half of a 2 MiB L2): the band is unfolded and multiplied while it is in L2.
pub(crate) const COLUMN_BAND_FLOATS: usize = 1 << 18;
/// Channels (in and out) from which 3x3 stride-1 layers take the Winograd path: its transforms
/// cost a fixed amount per channel and tile, which its 4x fewer multiply-adds repay on layers
/// this wide (at 16 input channels the direct loops' forward is faster).
pub(crate) const WINOGRAD_MIN_CHANNELS: usize = 32;
/// Tiles one Winograd block of a forward transforms and multiplies together (whole tile rows of
/// one image, or whole images): the rows of each point's GEMM.
pub(crate) const WINOGRAD_BLOCK_TILES: usize = 32;
/// The same for the weight gradient, where the tiles are the depth of each point's GEMM (`dU_ξ
/// += V_ξᵀ Z_ξ`): deeper blocks read and write `dU` fewer times.
pub(crate) const WINOGRAD_GRADIENT_BLOCK_TILES: usize = 128;
