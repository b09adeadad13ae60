//! One step of GloVe (Pennington, Socher and Manning 2014): weighted least squares on one
//! co-occurrence entry, with AdaGrad, as Stanford's `glove.c` trains it.

use super::{check_lr, dot, load_lanes, store_lanes};
use crate::error::{argument_error, check_len, shape_error, Result};
use crate::isa::current_isa;
use crate::simd::{dispatch, Kernel, SimdF32};

/// GloVe's hyper-parameters (`glove.c`'s defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GloveConfig {
    /// The count at which the weight `f(x)` reaches 1 (100).
    pub x_max: f32,
    /// The exponent of `f(x) = (x/x_max)^α` below it (0.75).
    pub alpha: f32,
    /// The AdaGrad learning rate η (0.05).
    pub lr: f32,
    /// Each vector gradient component is clipped to `±grad_clip` before the step (100).
    pub grad_clip: f32,
}

impl Default for GloveConfig {
    fn default() -> Self {
        GloveConfig { x_max: 100.0, alpha: 0.75, lr: 0.05, grad_clip: 100.0 }
    }
}

impl GloveConfig {
    /// Checks every field: `x_max > 0`, `alpha >= 0`, `lr >= 0`, `grad_clip > 0`, all finite.
    pub fn check(&self) -> Result<()> {
        let positive = |what: &str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(argument_error(what, format!("a finite {what} > 0"), v))
            }
        };
        positive("x_max", self.x_max)?;
        positive("grad_clip", self.grad_clip)?;
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(argument_error("alpha", "a finite alpha >= 0", self.alpha));
        }
        check_lr(self.lr)
    }

    /// The weight `f(x) = (x/x_max)^α` for `x < x_max`, else 1.
    pub fn weight(&self, x: f32) -> f32 {
        if x < self.x_max {
            (x / self.x_max).powf(self.alpha)
        } else {
            1.0
        }
    }
}

/// The step on vectors `V` (see [`glove_step`]).
struct GloveKernel<'a> {
    cfg: GloveConfig,
    log_x: f32,
    weight: f32,
    word: &'a mut [f32],
    context: &'a mut [f32],
    gradsq_word: &'a mut [f32],
    gradsq_context: &'a mut [f32],
}

impl Kernel for GloveKernel<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<V: SimdF32>(self) -> f32 {
        let dim = self.word.len() - 1;
        let (w, bw) = self.word.split_at_mut(dim);
        let (c, bc) = self.context.split_at_mut(dim);
        let (gw, gbw) = self.gradsq_word.split_at_mut(dim);
        let (gc, gbc) = self.gradsq_context.split_at_mut(dim);
        // diff = wᵢ·w̃ⱼ + bᵢ + b̃ⱼ - ln Xᵢⱼ; cost = ½·f(Xᵢⱼ)·diff².
        let diff = dot::<V>(w, c) + bw[0] + bc[0] - self.log_x;
        let fdiff = self.weight * diff;
        let cost = 0.5 * fdiff * diff;
        // Vectors: t = η·clip(fdiff·other); v -= t/√G; G += t² (G from before the step).
        // The clip is written max-then-min with the value second, so NaN stays NaN.
        let (clip, lr) = (V::splat(self.cfg.grad_clip), V::splat(self.cfg.lr));
        let f = V::splat(fdiff);
        let rows = w.chunks_mut(V::LANES).zip(c.chunks_mut(V::LANES));
        let gradsqs = gw.chunks_mut(V::LANES).zip(gc.chunks_mut(V::LANES));
        for ((w, c), (gw, gc)) in rows.zip(gradsqs) {
            let (wv, cv) = (load_lanes::<V>(w), load_lanes::<V>(c));
            let (gwv, gcv) = (load_lanes::<V>(gw), load_lanes::<V>(gc));
            let t_w = lr * clip.min((-clip).max(f * cv));
            let t_c = lr * clip.min((-clip).max(f * wv));
            store_lanes(wv - t_w / gwv.sqrt(), w);
            store_lanes(cv - t_c / gcv.sqrt(), c);
            store_lanes(t_w.mul_add(t_w, gwv), gw);
            store_lanes(t_c.mul_add(t_c, gcv), gc);
        }
        bias_step(self.cfg.lr, fdiff, &mut bw[0], &mut bc[0], &mut gbw[0], &mut gbc[0]);
        cost
    }
}

/// The AdaGrad step of the two biases, whose gradient is `fdiff` for both (unclipped):
/// `b -= lr·fdiff/√G; G += (lr·fdiff)²`. Shared with the reference.
#[inline(always)]
pub(super) fn bias_step(lr: f32, fdiff: f32, bw: &mut f32, bc: &mut f32, gbw: &mut f32, gbc: &mut f32) {
    let t = lr * fdiff;
    *bw -= t / gbw.sqrt();
    *bc -= t / gbc.sqrt();
    *gbw += t * t;
    *gbc += t * t;
}

/// One GloVe step on a co-occurrence entry `Xᵢⱼ = x`: returns the entry's cost before the
/// step, `J = ½·f(x)·(wᵢ·w̃ⱼ + bᵢ + b̃ⱼ - ln x)²` with `f(x) = (x/x_max)^α` below `x_max`
/// and 1 above, and takes one AdaGrad step on `wᵢ, w̃ⱼ, bᵢ, b̃ⱼ` as `glove.c` does:
/// with `d = f(x)·(… - ln x)`, each vector component moves by `t/√G` with
/// `t = lr·clip(d·other, ±grad_clip)`, then its accumulator grows, `G += t²` (so `G` holds
/// squared *scaled* steps, and the caller starts it at 1, `glove.c`'s initial value); each
/// bias likewise with `t = lr·d`.
///
/// Rows carry the bias as their last value, as in `glove.c`'s matrices:
/// - `word` (dim + 1): `wᵢ` then `bᵢ`, **updated**; `context` (dim + 1): `w̃ⱼ` then `b̃ⱼ`,
///   **updated** (`i = j` is passed as two rows of two matrices, word and context);
/// - `gradsq_word`, `gradsq_context` (dim + 1 each): the AdaGrad sums, **updated**.
///
/// Errors: rows shorter than 2 or of different lengths, `x` not finite and `> 0`, a field
/// of `cfg` out of domain.
///
/// ```
/// use keel_kernels::embed::{glove_step, GloveConfig};
/// # fn main() -> keel_kernels::Result<()> {
/// // dim 1: word, context, gradsq_word, gradsq_context are (dim + 1) = (2), the bias last.
/// // x = x_max = 1, so f(x) = 1 and ln x = 0.
/// let cfg = GloveConfig { x_max: 1.0, lr: 0.5, ..GloveConfig::default() };
/// let (mut word, mut context) = ([1.0, 0.0], [2.0, 0.5]);
/// let (mut gradsq_word, mut gradsq_context) = ([1.0; 2], [1.0; 2]); // glove.c starts at 1
/// let cost = glove_step(&cfg, 1.0, &mut word, &mut context, &mut gradsq_word, &mut gradsq_context)?;
/// // d = w·w̃ + b + b̃ - ln x = 2.5, cost ½·d².
/// assert_eq!(cost, 3.125);
/// // Steps t = lr·d·(other vector) and lr·d for the biases, divided by √G = 1.
/// assert_eq!((word, context), ([1.0 - 2.5, -1.25], [2.0 - 1.25, 0.5 - 1.25]));
/// assert_eq!((gradsq_word, gradsq_context), ([1.0 + 6.25, 1.0 + 1.5625], [1.0 + 1.5625; 2]));
/// # Ok(())
/// # }
/// ```
pub fn glove_step(
    cfg: &GloveConfig,
    x: f32,
    word: &mut [f32],
    context: &mut [f32],
    gradsq_word: &mut [f32],
    gradsq_context: &mut [f32],
) -> Result<f32> {
    cfg.check()?;
    let len = word.len();
    if len < 2 {
        return Err(shape_error("word.len()", "dim + 1 >= 2 (the vector, then the bias)", len));
    }
    check_len(|| format!("context (word.len() = {len})"), len, context.len())?;
    check_len(|| format!("gradsq_word (word.len() = {len})"), len, gradsq_word.len())?;
    check_len(|| format!("gradsq_context (word.len() = {len})"), len, gradsq_context.len())?;
    if !(x.is_finite() && x > 0.0) {
        return Err(argument_error("x", "a finite co-occurrence count x > 0", x));
    }
    let kernel = GloveKernel {
        cfg: *cfg,
        log_x: x.ln(),
        weight: cfg.weight(x),
        word,
        context,
        gradsq_word,
        gradsq_context,
    };
    Ok(dispatch(current_isa(), kernel))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bias step by hand (the reference shares it, so the kernel-vs-reference tests
    /// cannot see it): lr 0.1, gradient 2, G = 4 for both biases: each moves by
    /// 0.2/√4 = 0.1, then G grows by 0.2² = 0.04.
    #[test]
    fn bias_step_is_adagrad_on_both_biases() {
        let (mut bw, mut bc, mut gbw, mut gbc) = (1.0f32, -1.0f32, 4.0f32, 16.0f32);
        bias_step(0.1, 2.0, &mut bw, &mut bc, &mut gbw, &mut gbc);
        assert!((bw - 0.9).abs() < 1e-7, "{bw}");
        assert!((bc - -1.05).abs() < 1e-7, "{bc}");
        assert!((gbw - 4.04).abs() < 1e-6 && (gbc - 16.04).abs() < 1e-6, "{gbw} {gbc}");
    }
}
