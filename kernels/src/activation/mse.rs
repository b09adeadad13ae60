//! Mean squared error (PyTorch's `MSELoss`, `reduction='mean'`): forward saves the residual
//! `pred - target`, backward turns it into `2·(pred - target)/n` in one pass.
//!
//! The sum runs in `f32x8` lanes over blocks of 1024 elements, each block total
//! added in `f64`, over fixed chunks in a fixed tree (as the BCE loss), so the loss is
//! deterministic for a given thread count.

use wide::f32x8;

use super::softmax::{load, load_tail, store, store_tail, LANES};
use super::sum::sum_over_chunks;
use crate::error::{check_len, shape_error, Result};
use crate::parallel;
use crate::simd::{map_unary, Scale};

/// Elements summed in `f32` lanes before the running total takes them in `f64`.
const MSE_BLOCK: usize = 1024;

/// Writes `d = p - t` over one block and returns `Σ d²` (padding lanes are 0 - 0 = 0).
fn mse_block(p: &[f32], t: &[f32], d: &mut [f32]) -> f32 {
    let mut acc = f32x8::ZERO;
    let (mut ps, mut ts, mut ds) = (p.chunks_exact(LANES), t.chunks_exact(LANES), d.chunks_exact_mut(LANES));
    for ((p, t), d) in (&mut ps).zip(&mut ts).zip(&mut ds) {
        let diff = load(p) - load(t);
        acc += diff * diff;
        store(d, diff);
    }
    let (p, t, d) = (ps.remainder(), ts.remainder(), ds.into_remainder());
    if !p.is_empty() {
        let diff = load_tail(p, 0.0) - load_tail(t, 0.0);
        acc += diff * diff;
        store_tail(d, diff);
    }
    acc.reduce_add()
}

/// Mean squared error `loss = (1/n)·Σ_i (pred_i - target_i)²` (PyTorch's `MSELoss`).
///
/// `pred`, `target` and `diff` have the same length `n >= 1` (any shape flattened); `diff`
/// is **overwritten** with `pred - target`, what [`mse_backward`] needs. NaN in either input
/// gives a NaN loss.
pub fn mse_forward(pred: &[f32], target: &[f32], diff: &mut [f32]) -> Result<f32> {
    let n = pred.len();
    if n == 0 {
        return Err(shape_error("n = pred.len()", "n >= 1 (the loss is a mean over it)", n));
    }
    check_len(|| "target (same length as pred)".to_string(), n, target.len())?;
    check_len(|| "diff (same length as pred)".to_string(), n, diff.len())?;
    let chunk = parallel::chunk_len(n, MSE_BLOCK);
    let total = sum_over_chunks(diff, 1, chunk, 0, &|first, diff: &mut [f32]| {
        let (p, t) = (&pred[first..first + diff.len()], &target[first..first + diff.len()]);
        let blocks = p.chunks(MSE_BLOCK).zip(t.chunks(MSE_BLOCK)).zip(diff.chunks_mut(MSE_BLOCK));
        blocks.map(|((p, t), d)| f64::from(mse_block(p, t, d))).sum()
    });
    Ok((total / n as f64) as f32)
}

/// `dpred = 2·diff/n`, the gradient of [`mse_forward`]'s mean loss from its saved
/// `diff = pred - target`; both of length `n >= 1`, `dpred` **overwritten**. (`∂loss/∂target`
/// is `-dpred`.)
pub fn mse_backward(diff: &[f32], dpred: &mut [f32]) -> Result<()> {
    let n = diff.len();
    if n == 0 {
        return Err(shape_error("n = diff.len()", "n >= 1 (the loss is a mean over it)", n));
    }
    check_len(|| "dpred (same length as diff)".to_string(), n, dpred.len())?;
    map_unary(diff, dpred, &Scale((2.0 / n as f64) as f32));
    Ok(())
}

/// Scalar references for [`mse_forward`] and [`mse_backward`] (plain loops, `f64` sum).
pub mod reference {
    /// `diff = pred - target`, returns `Σ diff²/n` (summed in `f64`).
    pub fn mse_forward(pred: &[f32], target: &[f32], diff: &mut [f32]) -> f32 {
        let mut total = 0.0f64;
        for ((d, &p), &t) in diff.iter_mut().zip(pred).zip(target) {
            *d = p - t;
            total += f64::from(*d) * f64::from(*d);
        }
        (total / pred.len() as f64) as f32
    }

    /// `dpred = 2·diff/n`.
    pub fn mse_backward(diff: &[f32], dpred: &mut [f32]) {
        let scale = (2.0 / diff.len() as f64) as f32;
        for (g, &d) in dpred.iter_mut().zip(diff) {
            *g = d * scale;
        }
    }
}
