//! Fused SGD step (`torch.optim.SGD`): weight decay, momentum buffer, Nesterov and the
//! parameter update in one pass.

use super::config::SgdConfig;
use super::{check_slices, check_step};
use crate::error::Result;
use crate::isa::current_isa;
use crate::simd::{run_pass, Pass, SimdF32};

/// The constants of one SGD step, broadcast to every element.
struct SgdRule {
    lr: f32,
    momentum: f32,
    one_minus_dampening: f32,
    weight_decay: f32,
    nesterov: bool,
    first_step: bool,
}

impl Pass<1, 2> for SgdRule {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, grad: &[&[f32]; 1], bufs: &mut [&mut [f32]; 2]) {
        let param = V::load(&bufs[0][at..]);
        let mut g = V::load(&grad[0][at..]);
        if self.weight_decay != 0.0 {
            g = g + V::splat(self.weight_decay) * param;
        }
        if self.momentum != 0.0 {
            // PyTorch starts the buffer at the (decayed) gradient, without dampening.
            let buf = if self.first_step {
                g
            } else {
                V::splat(self.momentum) * V::load(&bufs[1][at..]) + V::splat(self.one_minus_dampening) * g
            };
            buf.store(&mut bufs[1][at..]);
            g = if self.nesterov { g + V::splat(self.momentum) * buf } else { buf };
        }
        (param - V::splat(self.lr) * g).store(&mut bufs[0][at..]);
    }
}

/// One `torch.optim.SGD` step on a parameter slice (math on [`SgdConfig`]).
///
/// - `step`: the 1-based step number; on step 1 the momentum buffer is initialised to the
///   gradient (its content is then not read), later steps read and update it;
/// - `param` (len): updated in place; `grad` (len): read;
/// - `momentum_buf` (len when `cfg.momentum > 0`, otherwise ignored and may be empty):
///   the momentum state, overwritten on step 1, updated after.
///
/// Errors: a field of `cfg` out of domain, `step = 0`, a slice length that differs from
/// `param.len()`. An empty `param` is a no-op.
///
/// ```
/// use keel_kernels::optim::{sgd_update, SgdConfig};
/// # fn main() -> keel_kernels::Result<()> {
/// // param, grad, momentum_buf: (1).
/// let cfg = SgdConfig { lr: 0.5, momentum: 0.5, ..SgdConfig::default() };
/// let (mut param, mut buf) = ([1.0], [f32::NAN]); // the buffer is not read on step 1
/// sgd_update(&cfg, 1, &mut param, &[2.0], &mut buf)?;
/// assert_eq!((param, buf), ([0.0], [2.0])); // b = g, θ -= 0.5·b
/// sgd_update(&cfg, 2, &mut param, &[2.0], &mut buf)?;
/// assert_eq!((param, buf), ([-1.5], [3.0])); // b = 0.5·b + g, θ -= 0.5·b
/// // Plain SGD (momentum 0) needs no buffer.
/// sgd_update(&SgdConfig { lr: 0.5, ..SgdConfig::default() }, 1, &mut param, &[1.0], &mut [])?;
/// assert_eq!(param, [-2.0]);
/// # Ok(())
/// # }
/// ```
pub fn sgd_update(
    cfg: &SgdConfig,
    step: u64,
    param: &mut [f32],
    grad: &[f32],
    momentum_buf: &mut [f32],
) -> Result<()> {
    cfg.check()?;
    check_step(step)?;
    let len = param.len();
    let momentum_buf: &mut [f32] = if cfg.momentum != 0.0 { momentum_buf } else { &mut [] };
    check_slices(len, grad, &[("momentum_buf", cfg.momentum != 0.0, momentum_buf.len())])?;
    let rule = SgdRule {
        lr: cfg.lr as f32,
        momentum: cfg.momentum as f32,
        one_minus_dampening: (1.0 - cfg.dampening) as f32,
        weight_decay: cfg.weight_decay as f32,
        nesterov: cfg.nesterov,
        first_step: step == 1,
    };
    run_pass(current_isa(), &rule, [grad], [param, momentum_buf]);
    Ok(())
}
