//! Which code computes a convolution pass: the path plan, as data.
//!
//! [`plan`] is a pure function of the shape, the pass, the instruction set and the
//! workspace length; the entry points compute it and run exactly the path it names.

use super::direct;
use super::gathered;
use super::lanes;
use super::shape::Conv2dShape;
use super::transposed::{direct_data_slot_len, transposed};
use super::winograd;
use crate::isa::Isa;

/// One of the three passes of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvPass {
    /// `y = act(conv(x, weight) + bias)` ([`conv2d_forward`](super::conv2d_forward)).
    Forward,
    /// `dx` from `dy` ([`conv2d_backward_data`](super::conv2d_backward_data)).
    BackwardData,
    /// `dweight`, `dbias` from `x` and `dy` ([`conv2d_backward_weight`](super::conv2d_backward_weight)).
    BackwardWeight,
}

impl ConvPass {
    /// The three passes.
    pub const ALL: [ConvPass; 3] = [ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardWeight];
}

/// The code that computes one convolution pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvPath {
    /// Up to 16 images in the lanes of an AVX-512 vector, or 8 in an AVX2 vector (`lanes/`):
    /// small planes, stride 1, dilation 1, one group, `pad < k`, at least a vector's worth of
    /// images, a workspace with room for one slot of the layouts.
    ImagesInLanes,
    /// Winograd's F(4x4, 3x3) (`winograd/`): 3x3 filters, stride 1, dilation 1, one group,
    /// `pad <= 2`, at least 32 input and output channels, on every instruction set; a GEMM per
    /// point of the transform domain, 4x fewer multiply-adds than the correlation.
    Winograd,
    /// Sums in registers per image (`direct.rs`): the forward of stride-1, dilation-1
    /// convolutions and their backward to the input as the forward of the transposed shape
    /// with the flipped weight (AVX-512 and AVX2); the weight gradient of layers with at most
    /// 16 output channels per group (AVX-512).
    Direct,
    /// A 1x1 convolution with stride 1 and no padding: the input is already the column
    /// matrix, so each image and group is one GEMM.
    Pointwise,
    /// Small output planes (`gathered.rs`): the column matrices of several images side by
    /// side, one GEMM for them all; the forward and backward to the input of one-group
    /// convolutions with planes under 100 positions, at least two images, and a workspace
    /// with room for a slot of the gathered matrices.
    Gathered,
    /// Windows unfolded by im2col (folded back by col2im), then one GEMM per image and group.
    Im2colGemm,
}

impl ConvPath {
    /// Every path, in the order of this enum.
    pub const ALL: [ConvPath; 6] = [
        ConvPath::ImagesInLanes,
        ConvPath::Winograd,
        ConvPath::Direct,
        ConvPath::Pointwise,
        ConvPath::Gathered,
        ConvPath::Im2colGemm,
    ];

    /// Whether [`plan`] can give this path on `isa`: the images-in-lanes and direct kernels
    /// exist for AVX-512 and AVX2.
    pub fn runs_on(self, isa: Isa) -> bool {
        match self {
            ConvPath::ImagesInLanes | ConvPath::Direct => isa != Isa::Portable,
            ConvPath::Winograd | ConvPath::Pointwise | ConvPath::Gathered | ConvPath::Im2colGemm => true,
        }
    }
}

/// The path `pass` of a convolution of `shape` takes on `isa` with a workspace of
/// `workspace_len` floats (the fastest that applies, in the order of [`ConvPath`]; a
/// workspace too short for a fast path's slot leaves the pass to the next). The entry points
/// run it for a batch of at least one image (an empty batch is a no-op).
///
/// ```
/// use keel_kernels::conv::{conv2d_workspace_len, plan, Conv2dShape, ConvPass, ConvPath};
/// use keel_kernels::isa::Isa;
///
/// // A 1x1 convolution is a GEMM on every instruction set.
/// let shape = Conv2dShape::new(8, 16, 7, 7, 32, 1, 1);
/// let path = plan(&shape, ConvPass::Forward, Isa::Portable, conv2d_workspace_len(&shape));
/// assert_eq!(path, ConvPath::Pointwise);
/// ```
pub fn plan(shape: &Conv2dShape, pass: ConvPass, isa: Isa, workspace_len: usize) -> ConvPath {
    let lanes = match pass {
        ConvPass::Forward => {
            lanes::forward_applies(shape, isa) && lanes::forward_fits(shape, isa, workspace_len)
        }
        ConvPass::BackwardData => {
            lanes::backward_applies(shape, isa) && lanes::backward_data_fits(shape, isa, workspace_len)
        }
        ConvPass::BackwardWeight => {
            lanes::backward_applies(shape, isa) && lanes::backward_weight_fits(shape, isa, workspace_len)
        }
    };
    let winograd = winograd::fits(shape, pass, isa, workspace_len);
    let direct = match pass {
        ConvPass::Forward => direct::applies(shape, isa) && workspace_len >= direct::forward_slot_len(shape),
        ConvPass::BackwardData => transposed(shape)
            .is_some_and(|t| direct::applies(&t, isa) && workspace_len >= direct_data_slot_len(&t)),
        ConvPass::BackwardWeight => direct::weight_gradient_applies(shape, isa),
    };
    let gathered = pass != ConvPass::BackwardWeight
        && gathered::applies(shape)
        && workspace_len >= gathered::slot_len(shape);
    if lanes {
        ConvPath::ImagesInLanes
    } else if winograd {
        ConvPath::Winograd
    } else if direct {
        ConvPath::Direct
    } else if shape.is_pointwise() {
        ConvPath::Pointwise
    } else if gathered {
        ConvPath::Gathered
    } else {
        ConvPath::Im2colGemm
    }
}
