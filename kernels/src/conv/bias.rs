//! The bias gradient of a convolution: the sum of each output channel's gradient plane.

use super::shape::Conv2dShape;

/// `dbias[c] += Σ_positions dy[c, ·]` for one image `dy (c_out, out_h·out_w)`.
pub(super) fn add_bias_gradient(shape: &Conv2dShape, dy: &[f32], dbias: &mut [f32]) {
    for (db, row) in dbias.iter_mut().zip(dy.chunks_exact(shape.col_cols())) {
        *db += lane_sum(row);
    }
}

/// `Σ row` in 16 interleaved partial sums (so it vectorises), added up at the end: a fixed
/// order, so the same bits on every run.
fn lane_sum(row: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}
