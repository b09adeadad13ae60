//! Gradient clipping over a set of gradient slices (`torch.nn.utils.clip_grad_norm_` and
//! `clip_grad_value_`).

use crate::error::{argument_error, Result};
use crate::isa::current_isa;
use crate::parallel::MIN_PARALLEL_ELEMENTS;
use crate::simd::{map_inplace, Map1, Scale, SimdF32};

/// Reductions split their slice in halves down to leaves of at most this many elements. The
/// tree depends only on the length, so the sum has the same bits on any number of threads.
const REDUCE_LEAF: usize = 1 << 14;

/// Reduces `x` over a fixed binary tree: `leaf` on pieces of at most [`REDUCE_LEAF`]
/// elements, `combine` on the halves; the halves run in parallel above the threshold.
fn tree_reduce<L, C>(x: &[f32], leaf: &L, combine: &C) -> f64
where
    L: Fn(&[f32]) -> f64 + Sync,
    C: Fn(f64, f64) -> f64 + Sync,
{
    if x.len() <= REDUCE_LEAF {
        return leaf(x);
    }
    let mid = x.len().div_ceil(REDUCE_LEAF).div_ceil(2) * REDUCE_LEAF;
    let (lo, hi) = x.split_at(mid);
    let (a, b) = if x.len() >= MIN_PARALLEL_ELEMENTS {
        rayon::join(|| tree_reduce(lo, leaf, combine), || tree_reduce(hi, leaf, combine))
    } else {
        (tree_reduce(lo, leaf, combine), tree_reduce(hi, leaf, combine))
    };
    combine(a, b)
}

/// `Σ x²` in f64 with eight lane accumulators (element `i` goes to lane `i mod 8`), summed
/// in lane order at the end.
fn sum_squares(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f64::from(v) * f64::from(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f64::from(v) * f64::from(v);
    }
    acc.iter().sum()
}

/// The total `norm_type`-norm of all gradients, as if concatenated, in f64.
fn total_norm(grads: &[&mut [f32]], norm_type: f32) -> f64 {
    let add = |a: f64, b: f64| a + b;
    if norm_type == f32::INFINITY {
        // f64::max drops NaN; a NaN gradient must make the norm NaN, as in PyTorch.
        let max = |a: f64, b: f64| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) };
        let leaf = |x: &[f32]| x.iter().fold(0.0, |m, &v| max(m, f64::from(v.abs())));
        grads.iter().map(|g| tree_reduce(g, &leaf, &max)).fold(0.0, max)
    } else if norm_type == 2.0 {
        grads.iter().map(|g| tree_reduce(g, &sum_squares, &add)).sum::<f64>().sqrt()
    } else {
        let p = f64::from(norm_type);
        let leaf = |x: &[f32]| x.iter().map(|&v| f64::from(v).abs().powf(p)).sum::<f64>();
        grads.iter().map(|g| tree_reduce(g, &leaf, &add)).sum::<f64>().powf(1.0 / p)
    }
}

/// `x` clamped to `[lo, hi]` by compare-and-select, which keeps NaN (a NaN lane fails
/// both comparisons), as `f32::clamp`.
struct Clamp {
    lo: f32,
    hi: f32,
}

impl Map1 for Clamp {
    #[inline(always)]
    fn map<V: SimdF32>(&self, x: V) -> V {
        let (lo, hi) = (V::splat(self.lo), V::splat(self.hi));
        let x = V::select(x.lt(lo), lo, x);
        V::select(x.gt(hi), hi, x)
    }
}

/// `torch.nn.utils.clip_grad_norm_`: the `norm_type`-norm of all gradients taken together
/// (`norm_type` 2 by default in PyTorch; any `p > 0`, or `f32::INFINITY` for the largest
/// magnitude); when `clip_coef = max_norm / (total + 1e-6)` is below 1, every gradient is
/// scaled (**in place**) by it. Returns the total norm before clipping.
///
/// `grads`: any number of slices of any lengths (an empty set has norm 0). The norm is
/// accumulated in f64 over a fixed tree, so it is the same for any thread count.
///
/// Errors: `max_norm` negative or NaN, `norm_type` not `> 0`; a non-finite total norm (a
/// NaN or infinite gradient, or a norm beyond f32's range) is an error naming `grads`, and
/// the gradients are left untouched (PyTorch's `error_if_nonfinite=True`; with `False` PyTorch would scale them
/// all to NaN).
///
/// ```
/// use keel_kernels::optim::clip_grad_norm;
/// # fn main() -> keel_kernels::Result<()> {
/// // Two parameters' gradients, (1) each: total 2-norm √(3² + 4²) = 5.
/// let (mut g1, mut g2) = ([3.0], [4.0]);
/// let total = clip_grad_norm(&mut [&mut g1[..], &mut g2[..]], 1.0, 2.0)?;
/// assert_eq!(total, 5.0);
/// // Scaled by 1/(5 + 1e-6): the total norm is now 1.
/// assert!((g1[0] - 0.6).abs() < 1e-6 && (g2[0] - 0.8).abs() < 1e-6);
/// // Under max_norm nothing changes; f32::INFINITY asks for the largest magnitude.
/// let total = clip_grad_norm(&mut [&mut g1[..], &mut g2[..]], 10.0, f32::INFINITY)?;
/// assert!((total - 0.8).abs() < 1e-6 && (g2[0] - 0.8).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f32, norm_type: f32) -> Result<f32> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(argument_error("max_norm", "max_norm >= 0", max_norm));
    }
    if norm_type.is_nan() || norm_type <= 0.0 {
        return Err(argument_error("norm_type", "norm_type > 0 (or infinity)", norm_type));
    }
    let total = total_norm(grads, norm_type) as f32;
    if !total.is_finite() {
        return Err(argument_error("grads", "gradients with a finite total norm", total));
    }
    let clip_coef = max_norm / (total + 1e-6);
    if clip_coef < 1.0 {
        for g in grads.iter_mut() {
            map_inplace(current_isa(), g, &Scale(clip_coef));
        }
    }
    Ok(total)
}

/// `torch.nn.utils.clip_grad_value_`: clamps every element of every gradient (**in place**)
/// to `[-clip_value, clip_value]`; NaN stays NaN.
///
/// Errors: `clip_value` negative or NaN.
///
/// ```
/// use keel_kernels::optim::clip_grad_value;
/// # fn main() -> keel_kernels::Result<()> {
/// let (mut g1, mut g2) = ([-3.0, 0.5], [2.0]);
/// clip_grad_value(&mut [&mut g1[..], &mut g2[..]], 1.0)?;
/// assert_eq!((g1, g2), ([-1.0, 0.5], [1.0]));
/// # Ok(())
/// # }
/// ```
pub fn clip_grad_value(grads: &mut [&mut [f32]], clip_value: f32) -> Result<()> {
    if clip_value.is_nan() || clip_value < 0.0 {
        return Err(argument_error("clip_value", "clip_value >= 0", clip_value));
    }
    let clamp = Clamp { lo: -clip_value, hi: clip_value };
    for g in grads.iter_mut() {
        map_inplace(current_isa(), g, &clamp);
    }
    Ok(())
}
