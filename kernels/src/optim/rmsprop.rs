//! Fused RMSprop step (`torch.optim.RMSprop`): weight decay, squared-gradient average,
//! optional centring and momentum, and the parameter update in one pass.

use super::check_slices;
use super::config::RmspropConfig;
use crate::error::Result;
use crate::isa::current_isa;
use crate::simd::{run_pass, Pass, SimdF32};

/// The constants of one RMSprop step, broadcast to every element.
struct RmspropRule {
    lr: f32,
    alpha: f32,
    one_minus_alpha: f32,
    eps: f32,
    weight_decay: f32,
    momentum: f32,
    centered: bool,
}

impl Pass<1, 4> for RmspropRule {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, grad: &[&[f32]; 1], bufs: &mut [&mut [f32]; 4]) {
        let param = V::load(&bufs[0][at..]);
        let mut g = V::load(&grad[0][at..]);
        if self.weight_decay != 0.0 {
            g = g + V::splat(self.weight_decay) * param;
        }
        let square_avg =
            V::splat(self.alpha) * V::load(&bufs[1][at..]) + V::splat(self.one_minus_alpha) * g * g;
        square_avg.store(&mut bufs[1][at..]);
        let root = if self.centered {
            let grad_avg = V::load(&bufs[3][at..]);
            let grad_avg = grad_avg + V::splat(self.one_minus_alpha) * (g - grad_avg);
            grad_avg.store(&mut bufs[3][at..]);
            // v - ḡ² >= 0 in exact arithmetic; rounding can push it below zero once the
            // gradient has been constant for long, where PyTorch's sqrt would give NaN.
            let variance = square_avg - grad_avg * grad_avg;
            V::select(variance.lt(V::splat(0.0)), V::splat(0.0), variance).sqrt()
        } else {
            square_avg.sqrt()
        };
        let denom = root + V::splat(self.eps);
        let delta = if self.momentum > 0.0 {
            let buf = V::splat(self.momentum) * V::load(&bufs[2][at..]) + g / denom;
            buf.store(&mut bufs[2][at..]);
            buf
        } else {
            g / denom
        };
        (param - V::splat(self.lr) * delta).store(&mut bufs[0][at..]);
    }
}

/// One `torch.optim.RMSprop` step on a parameter slice (math on [`RmspropConfig`]).
///
/// All states start at zero (the caller zero-fills them before the first step), so no step
/// number is needed.
/// - `param` (len): updated in place; `grad` (len): read;
/// - `square_avg` (len): `v`, updated;
/// - `momentum_buf` (len when `cfg.momentum > 0`, otherwise ignored and may be empty): updated;
/// - `grad_avg` (len when `cfg.centered`, otherwise ignored and may be empty): `ḡ`, updated.
///
/// Differs from PyTorch only where PyTorch gives NaN: a centred `v - ḡ²` that rounding made
/// negative is taken as 0. Errors: a field of `cfg` out of domain, a slice length that
/// differs from `param.len()`. An empty `param` is a no-op.
///
/// ```
/// use keel_kernels::optim::{rmsprop_update, RmspropConfig};
/// # fn main() -> keel_kernels::Result<()> {
/// // param, grad, square_avg: (1); no momentum, not centered: no other state.
/// let cfg = RmspropConfig { lr: 0.5, alpha: 0.75, eps: 0.0, ..RmspropConfig::default() };
/// let (mut param, mut square_avg) = ([1.0], [0.0]);
/// rmsprop_update(&cfg, &mut param, &[2.0], &mut square_avg, &mut [], &mut [])?;
/// // v = 0.75·0 + 0.25·2² = 1, θ -= 0.5·2/√1.
/// assert_eq!((param, square_avg), ([0.0], [1.0]));
/// # Ok(())
/// # }
/// ```
pub fn rmsprop_update(
    cfg: &RmspropConfig,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    momentum_buf: &mut [f32],
    grad_avg: &mut [f32],
) -> Result<()> {
    cfg.check()?;
    let len = param.len();
    let momentum_buf: &mut [f32] = if cfg.momentum > 0.0 { momentum_buf } else { &mut [] };
    let grad_avg: &mut [f32] = if cfg.centered { grad_avg } else { &mut [] };
    check_slices(
        len,
        grad,
        &[
            ("square_avg", true, square_avg.len()),
            ("momentum_buf", cfg.momentum > 0.0, momentum_buf.len()),
            ("grad_avg", cfg.centered, grad_avg.len()),
        ],
    )?;
    let rule = RmspropRule {
        lr: cfg.lr as f32,
        alpha: cfg.alpha as f32,
        one_minus_alpha: (1.0 - cfg.alpha) as f32,
        eps: cfg.eps as f32,
        weight_decay: cfg.weight_decay as f32,
        momentum: cfg.momentum as f32,
        centered: cfg.centered,
    };
    run_pass(current_isa(), &rule, [grad], [param, square_avg, momentum_buf, grad_avg]);
    Ok(())
}
