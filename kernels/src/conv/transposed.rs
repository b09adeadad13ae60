//! The backward to the input of a stride-1 convolution as the forward of another: the
//! transposed shape and the flipped weight.

use super::direct;
use super::shape::Conv2dShape;

/// The convolution whose forward is the backward to the input of `shape`, where that is a
/// correlation: stride 1, dilation 1 and `pad < k` on both axes. It reads `dy` as `c_out`
/// channels of `out_h x out_w`, padded by `k - 1 - pad`, and writes `c_in` channels of
/// `h x w`, with the weight [`flip_weight`] makes: `dx[ci, iy, ix] = Σ dy[co, iy + ki - pad',
/// ix + kj - pad'] · weight[co, ci, kh - 1 - ki, kw - 1 - kj]`.
pub(super) fn transposed(shape: &Conv2dShape) -> Option<Conv2dShape> {
    let unit = shape.stride_h == 1 && shape.stride_w == 1 && shape.dilation_h == 1 && shape.dilation_w == 1;
    (unit && shape.pad_h < shape.kh && shape.pad_w < shape.kw).then(|| Conv2dShape {
        c_in: shape.c_out,
        h: shape.out_h(),
        w: shape.out_w(),
        c_out: shape.c_in,
        pad_h: shape.kh - 1 - shape.pad_h,
        pad_w: shape.kw - 1 - shape.pad_w,
        ..*shape
    })
}

/// The weight of [`transposed`]`(shape)`, `flipped (c_in, c_out/groups, kh, kw)` **overwritten**
/// from `weight (c_out, c_in/groups, kh, kw)`: within each group, input and output channels
/// swapped and both kernel axes reversed.
pub(super) fn flip_weight(shape: &Conv2dShape, weight: &[f32], flipped: &mut [f32]) {
    let (cg, cog) = (shape.c_in / shape.groups, shape.c_out / shape.groups);
    let (kh, kw) = (shape.kh, shape.kw);
    let taps = kh * kw;
    // flipped[g·cg + ci, co, ki, kj] = weight[g·cog + co, ci, kh - 1 - ki, kw - 1 - kj].
    for (row, out) in flipped[..shape.weight_len()].chunks_exact_mut(taps).enumerate() {
        let (co, ci_all) = (row % cog, row / cog);
        let (g, ci) = (ci_all / cg, ci_all % cg);
        let source = &weight[((g * cog + co) * cg + ci) * taps..][..taps];
        for (value, &w) in out.iter_mut().zip(source.iter().rev()) {
            *value = w;
        }
    }
}

/// A backward-data slot on the direct path, for the [`transposed`] shape `t`: the flipped
/// weight and the direct forward's scratch.
pub(super) fn direct_data_slot_len(t: &Conv2dShape) -> usize {
    t.weight_len().saturating_add(direct::scratch_len(t))
}
