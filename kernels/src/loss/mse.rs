//! Mean squared error (PyTorch's `MSELoss`, `reduction='mean'`): forward saves the residual
//! `pred - target`, backward turns it into `2·(pred - target)/n` in one pass.
//!
//! The sum runs in vector lanes (on the instruction set of
//! [`crate::isa::current_isa`]) over blocks of 1024 elements, each block total
//! added in `f64`, over fixed chunks in a fixed tree (as the BCE loss), so the loss is
//! deterministic for a given thread count.

use super::sum::{sum_over_chunks, SUM_BLOCK};
use crate::error::{check_len, shape_error, Result};
use crate::isa::current_isa;
use crate::parallel;
use crate::simd::{dispatch, load_padded, map_unary, store_partial, Kernel, Scale, SimdF32};

/// Writes `d = p - t` over the blocks of one parallel chunk and returns `Σ d²` (each block
/// summed in `f32` lanes, the block totals in `f64`; padding lanes are 0 - 0 = 0).
struct MseChunk<'a, 'b> {
    p: &'a [f32],
    t: &'a [f32],
    d: &'b mut [f32],
}

impl Kernel for MseChunk<'_, '_> {
    type Output = f64;
    #[inline(always)]
    fn run<V: SimdF32>(self) -> f64 {
        // A plain loop, not a closure: a closure is compiled without the dispatched
        // instruction set, so the intrinsics in its body would become out-of-line calls.
        let blocks = self.p.chunks(SUM_BLOCK).zip(self.t.chunks(SUM_BLOCK)).zip(self.d.chunks_mut(SUM_BLOCK));
        let mut sum = 0.0f64;
        for ((p, t), d) in blocks {
            sum += f64::from(mse_block::<V>(p, t, d));
        }
        sum
    }
}

/// Writes `d = p - t` over one block and returns `Σ d²`.
#[inline(always)]
fn mse_block<V: SimdF32>(p: &[f32], t: &[f32], d: &mut [f32]) -> f32 {
    let mut acc = V::splat(0.0);
    let (mut ps, mut ts, mut ds) =
        (p.chunks_exact(V::LANES), t.chunks_exact(V::LANES), d.chunks_exact_mut(V::LANES));
    for ((p, t), d) in (&mut ps).zip(&mut ts).zip(&mut ds) {
        let diff = V::load(p) - V::load(t);
        acc = acc + diff * diff;
        diff.store(d);
    }
    let (p, t, d) = (ps.remainder(), ts.remainder(), ds.into_remainder());
    if !p.is_empty() {
        let diff = load_padded::<V>(p, 0.0) - load_padded(t, 0.0);
        acc = acc + diff * diff;
        store_partial(diff, d);
    }
    acc.reduce_add()
}

/// Mean squared error `loss = (1/n)·Σ_i (pred_i - target_i)²` (PyTorch's `MSELoss`).
///
/// `pred`, `target` and `diff` have the same length `n >= 1` (any shape flattened); `diff`
/// is **overwritten** with `pred - target`, what [`mse_backward`] needs. NaN in either input
/// gives a NaN loss.
///
/// ```
/// use keel_kernels::loss::mse_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // pred, target, diff: (n 4). Squared errors 0, 4, 9, 0: mean 13/4.
/// let mut diff = [0.0; 4];
/// let loss = mse_forward(&[1.0, 2.0, 3.0, 4.0], &[1.0, 0.0, 0.0, 4.0], &mut diff)?;
/// assert_eq!(loss, 3.25);
/// assert_eq!(diff, [0.0, 2.0, 3.0, 0.0]);
/// # Ok(())
/// # }
/// ```
pub fn mse_forward(pred: &[f32], target: &[f32], diff: &mut [f32]) -> Result<f32> {
    let n = pred.len();
    if n == 0 {
        return Err(shape_error("n = pred.len()", "n >= 1 (the loss is a mean over it)", n));
    }
    check_len(|| "target (same length as pred)".to_string(), n, target.len())?;
    check_len(|| "diff (same length as pred)".to_string(), n, diff.len())?;
    let chunk = parallel::chunk_len(n, SUM_BLOCK);
    let isa = current_isa();
    let total = sum_over_chunks(diff, 1, chunk, 0, &|first, d: &mut [f32]| {
        let (p, t) = (&pred[first..first + d.len()], &target[first..first + d.len()]);
        dispatch(isa, MseChunk { p, t, d })
    });
    Ok((total / n as f64) as f32)
}

/// `dpred = 2·diff/n`, the gradient of [`mse_forward`]'s mean loss from its saved
/// `diff = pred - target`; both of length `n >= 1`, `dpred` **overwritten**. (`∂loss/∂target`
/// is `-dpred`.)
///
/// ```
/// use keel_kernels::loss::mse_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // diff = pred - target (saved by the forward), dpred: (n 4).
/// let mut dpred = [f32::NAN; 4]; // overwritten, never read
/// mse_backward(&[0.0, 2.0, 3.0, 0.0], &mut dpred)?;
/// assert_eq!(dpred, [0.0, 1.0, 1.5, 0.0]); // 2·diff/4
/// # Ok(())
/// # }
/// ```
pub fn mse_backward(diff: &[f32], dpred: &mut [f32]) -> Result<()> {
    let n = diff.len();
    if n == 0 {
        return Err(shape_error("n = diff.len()", "n >= 1 (the loss is a mean over it)", n));
    }
    check_len(|| "dpred (same length as diff)".to_string(), n, dpred.len())?;
    map_unary(current_isa(), diff, dpred, &Scale((2.0 / n as f64) as f32));
    Ok(())
}
