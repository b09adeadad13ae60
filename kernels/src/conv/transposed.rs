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

#[cfg(test)]
mod tests {
    use super::*;

    /// Only stride 1, dilation 1 and padding under the kernel on both axes transpose; the
    /// transposed shape swaps the channels and pads by `k - 1 - pad`.
    #[test]
    fn transposes_unit_stride_correlations_only() {
        let s = Conv2dShape::new(2, 3, 10, 12, 5, 3, 5).with_pad(1);
        let t = transposed(&s).unwrap();
        assert_eq!((t.c_in, t.c_out, t.h, t.w, t.pad_h, t.pad_w), (5, 3, 10, 10, 1, 3));
        let strided_rows = Conv2dShape { stride_h: 2, ..s };
        let strided_cols = Conv2dShape { stride_w: 2, ..s };
        let dilated_rows = Conv2dShape { dilation_h: 2, ..s };
        let dilated_cols = Conv2dShape { dilation_w: 2, ..s };
        let wide_pad = Conv2dShape { pad_w: 5, ..s };
        for other in [strided_rows, strided_cols, dilated_rows, dilated_cols, wide_pad] {
            assert!(transposed(&other).is_none(), "{other:?}");
        }
    }
}
