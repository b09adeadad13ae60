//! Scalar references: convolution by its definition, one output (or gradient) element per
//! innermost sum, accumulated in `f64` so their own rounding is negligible next to the fast
//! paths under test. Same shapes, checks and overwrite/accumulate rules as the fast kernels.

use super::im2col::check_plane_args;
use super::shape::{check_bias, check_weight, check_x, check_y, Conv2dShape};
use crate::error::Result;

/// Visits every (output element, weight tap, input element) triple of the convolution that
/// does not fall in the padding, as flat indices `(y_index, weight_index, x_index)`: the
/// 7 loops (image, output channel, output row, output column, input channel of the group,
/// kernel row, kernel column) shared by the three references.
fn for_each_tap(shape: &Conv2dShape, mut visit: impl FnMut(usize, usize, usize)) {
    let (cg, cog) = (shape.c_in / shape.groups, shape.c_out / shape.groups);
    let (oh, ow) = (shape.out_h(), shape.out_w());
    for i in 0..shape.n {
        for o in 0..shape.c_out {
            let g = o / cog;
            for oy in 0..oh {
                for ox in 0..ow {
                    let y_index = ((i * shape.c_out + o) * oh + oy) * ow + ox;
                    for ci in 0..cg {
                        let c = g * cg + ci;
                        for ki in 0..shape.kh {
                            // Input row oy·stride + ki·dilation - pad, skipped in the padding.
                            let Some(iy) =
                                (oy * shape.stride_h + ki * shape.dilation_h).checked_sub(shape.pad_h)
                            else {
                                continue;
                            };
                            if iy >= shape.h {
                                continue;
                            }
                            for kj in 0..shape.kw {
                                let Some(ix) =
                                    (ox * shape.stride_w + kj * shape.dilation_w).checked_sub(shape.pad_w)
                                else {
                                    continue;
                                };
                                if ix >= shape.w {
                                    continue;
                                }
                                let w_index = ((o * cg + ci) * shape.kh + ki) * shape.kw + kj;
                                let x_index = ((i * shape.c_in + c) * shape.h + iy) * shape.w + ix;
                                visit(y_index, w_index, x_index);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Direct convolution forward: `y[i,o,oy,ox] = bias[o] + Σ_{ci,ki,kj} weight[o,ci,ki,kj] ·
/// x[i, g·c_in/groups + ci, oy·stride_h + ki·dilation_h - pad_h, ox·stride_w + kj·dilation_w -
/// pad_w]` (zero outside the input). `y` is **overwritten**. Shapes and errors as
/// [`super::conv2d_forward`].
pub fn conv2d_forward(
    shape: &Conv2dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    shape.check()?;
    check_x(shape, "x", x.len())?;
    check_weight(shape, "weight", weight.len())?;
    if let Some(bias) = bias {
        check_bias(shape, "bias", bias.len())?;
    }
    check_y(shape, "y", y.len())?;
    let mut acc = vec![0f64; y.len()];
    for_each_tap(shape, |yi, wi, xi| acc[yi] += f64::from(weight[wi]) * f64::from(x[xi]));
    let plane = shape.col_cols();
    for (index, (out, sum)) in y.iter_mut().zip(&acc).enumerate() {
        let b = bias.map_or(0.0, |bias| f64::from(bias[(index / plane) % shape.c_out]));
        *out = (sum + b) as f32;
    }
    Ok(())
}

/// Direct backward to the input: `dx[x_index] = Σ dy[y_index] · weight[w_index]` over the
/// taps that read `x_index`. `dx` is **overwritten**. Shapes and errors as
/// [`super::conv2d_backward_data`].
pub fn conv2d_backward_data(shape: &Conv2dShape, dy: &[f32], weight: &[f32], dx: &mut [f32]) -> Result<()> {
    shape.check()?;
    check_y(shape, "dy", dy.len())?;
    check_weight(shape, "weight", weight.len())?;
    check_x(shape, "dx", dx.len())?;
    let mut acc = vec![0f64; dx.len()];
    for_each_tap(shape, |yi, wi, xi| acc[xi] += f64::from(dy[yi]) * f64::from(weight[wi]));
    for (out, sum) in dx.iter_mut().zip(&acc) {
        *out = *sum as f32;
    }
    Ok(())
}

/// Direct backward to the parameters: `dweight[w_index] += Σ dy[y_index] · x[x_index]` over
/// the taps that use `w_index`, `dbias[o] += Σ dy[i,o,·,·]`. Both **accumulated**. Shapes and
/// errors as [`super::conv2d_backward_weight`].
pub fn conv2d_backward_weight(
    shape: &Conv2dShape,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
    dbias: Option<&mut [f32]>,
) -> Result<()> {
    shape.check()?;
    check_x(shape, "x", x.len())?;
    check_y(shape, "dy", dy.len())?;
    check_weight(shape, "dweight", dweight.len())?;
    if let Some(dbias) = dbias.as_deref() {
        check_bias(shape, "dbias", dbias.len())?;
    }
    let mut acc = vec![0f64; dweight.len()];
    for_each_tap(shape, |yi, wi, xi| acc[wi] += f64::from(dy[yi]) * f64::from(x[xi]));
    for (out, sum) in dweight.iter_mut().zip(&acc) {
        *out = (f64::from(*out) + sum) as f32;
    }
    if let Some(dbias) = dbias {
        let plane = shape.col_cols();
        let mut sums = vec![0f64; shape.c_out];
        for (index, &g) in dy.iter().enumerate() {
            sums[(index / plane) % shape.c_out] += f64::from(g);
        }
        for (out, sum) in dbias.iter_mut().zip(&sums) {
            *out = (f64::from(*out) + sum) as f32;
        }
    }
    Ok(())
}

/// Plain im2col of one group of one image, by the definition: `col[(ci·kh + ki)·kw + kj,
/// oy·out_w + ox] = x[ci, oy·stride_h + ki·dilation_h - pad_h, ox·stride_w + kj·dilation_w -
/// pad_w]`, 0 in the padding. Shapes, errors and overwrite rule as [`super::im2col`].
pub fn im2col(shape: &Conv2dShape, x: &[f32], col: &mut [f32]) -> Result<()> {
    check_plane_args(shape, x.len(), col.len())?;
    for (row, col_row) in col.chunks_exact_mut(shape.col_cols()).enumerate() {
        for (pos, out) in col_row.iter_mut().enumerate() {
            *out = plane_index(shape, row, pos).map_or(0.0, |xi| x[xi]);
        }
    }
    Ok(())
}

/// Plain col2im, the adjoint of [`im2col`]: `x` is **overwritten** with the sum of every
/// column entry copied from each position. Shapes and errors as [`super::col2im`].
pub fn col2im(shape: &Conv2dShape, col: &[f32], x: &mut [f32]) -> Result<()> {
    check_plane_args(shape, x.len(), col.len())?;
    x.fill(0.0);
    for (row, col_row) in col.chunks_exact(shape.col_cols()).enumerate() {
        for (pos, &value) in col_row.iter().enumerate() {
            if let Some(xi) = plane_index(shape, row, pos) {
                x[xi] += value;
            }
        }
    }
    Ok(())
}

/// The index in `x (c, h, w)` that column entry `(row, pos)` copies, or `None` in the padding.
fn plane_index(shape: &Conv2dShape, row: usize, pos: usize) -> Option<usize> {
    let (ci, tap) = (row / (shape.kh * shape.kw), row % (shape.kh * shape.kw));
    let (ki, kj) = (tap / shape.kw, tap % shape.kw);
    let (oy, ox) = (pos / shape.out_w(), pos % shape.out_w());
    let iy =
        (oy * shape.stride_h + ki * shape.dilation_h).checked_sub(shape.pad_h).filter(|&iy| iy < shape.h)?;
    let ix =
        (ox * shape.stride_w + kj * shape.dilation_w).checked_sub(shape.pad_w).filter(|&ix| ix < shape.w)?;
    Some((ci * shape.h + iy) * shape.w + ix)
}
