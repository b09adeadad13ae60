//! Fused Adam / AdamW step (`torch.optim.Adam`, `torch.optim.AdamW`): weight decay, both
//! moment averages, AMSGrad's running maximum and the bias-corrected update in one pass.

use super::config::AdamConfig;
use super::{check_slices, check_step};
use crate::error::Result;
use crate::isa::current_isa;
use crate::simd::{run_pass, Pass, SimdF32};

/// The constants of one Adam step, broadcast to every element.
struct AdamRule {
    /// `θ` factor of decoupled decay, `1 - lr·λ` (1 for Adam).
    decay_factor: f32,
    /// L2 coefficient added to the gradient (0 for AdamW).
    l2: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    eps: f32,
    /// `lr / (1 - β1ᵗ)`.
    step_size: f32,
    /// `√(1 - β2ᵗ)`.
    bias_correction2_sqrt: f32,
    amsgrad: bool,
}

impl Pass<1, 4> for AdamRule {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, grad: &[&[f32]; 1], bufs: &mut [&mut [f32]; 4]) {
        let mut param = V::load(&bufs[0][at..]);
        let mut g = V::load(&grad[0][at..]);
        if self.l2 != 0.0 {
            g = g + V::splat(self.l2) * param;
        }
        if self.decay_factor != 1.0 {
            param = param * V::splat(self.decay_factor);
        }
        // m + (1-β1)(g - m) is PyTorch's lerp form of β1·m + (1-β1)·g.
        let m = V::load(&bufs[1][at..]);
        let m = m + V::splat(self.one_minus_beta1) * (g - m);
        m.store(&mut bufs[1][at..]);
        let v = V::splat(self.beta2) * V::load(&bufs[2][at..]) + V::splat(self.one_minus_beta2) * g * g;
        v.store(&mut bufs[2][at..]);
        let v = if self.amsgrad {
            // v where v > v̂max, else v̂max (a NaN v keeps v̂max, as the reference's `if`).
            let v_max = v.max(V::load(&bufs[3][at..]));
            v_max.store(&mut bufs[3][at..]);
            v_max
        } else {
            v
        };
        let denom = v.sqrt() / V::splat(self.bias_correction2_sqrt) + V::splat(self.eps);
        (param - V::splat(self.step_size) * (m / denom)).store(&mut bufs[0][at..]);
    }
}

/// One `torch.optim.Adam` (or AdamW, with `cfg.decoupled_weight_decay`) step on a parameter
/// slice (math on [`AdamConfig`]).
///
/// - `step`: the 1-based step number `t` of the bias corrections (PyTorch's `state["step"]`
///   after its increment);
/// - `param` (len): updated in place; `grad` (len): read;
/// - `exp_avg` (len), `exp_avg_sq` (len): `m` and `v`, zero before step 1, updated;
/// - `max_exp_avg_sq` (len when `cfg.amsgrad`, otherwise ignored and may be empty): the
///   running maximum of `v`, zero before step 1, updated.
///
/// The step constants are computed in f64 (as PyTorch does in Python floats), then rounded. Errors: a
/// field of `cfg` out of domain, `step = 0`, a slice length that differs from `param.len()`.
/// An empty `param` is a no-op.
///
/// ```
/// use keel_kernels::optim::{adam_update, AdamConfig};
/// # fn main() -> keel_kernels::Result<()> {
/// // param, grad, exp_avg, exp_avg_sq: (2); no AMSGrad, so no max_exp_avg_sq.
/// let cfg = AdamConfig { lr: 0.1, ..AdamConfig::default() };
/// let mut param = [1.0, 1.0];
/// let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
/// adam_update(&cfg, 1, &mut param, &[2.0, -0.5], &mut m, &mut v, &mut [])?;
/// // Bias-corrected, the first step moves each parameter by lr against its gradient's sign.
/// assert!((param[0] - 0.9).abs() < 1e-6 && (param[1] - 1.1).abs() < 1e-6);
/// // m = 0.1·g, v = 0.001·g².
/// assert!((m[0] - 0.2).abs() < 1e-6 && (v[1] - 0.00025).abs() < 1e-9);
/// # Ok(())
/// # }
/// ```
pub fn adam_update(
    cfg: &AdamConfig,
    step: u64,
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
    max_exp_avg_sq: &mut [f32],
) -> Result<()> {
    cfg.check()?;
    check_step(step)?;
    let len = param.len();
    let max_exp_avg_sq: &mut [f32] = if cfg.amsgrad { max_exp_avg_sq } else { &mut [] };
    check_slices(
        len,
        grad,
        &[
            ("exp_avg", true, exp_avg.len()),
            ("exp_avg_sq", true, exp_avg_sq.len()),
            ("max_exp_avg_sq", cfg.amsgrad, max_exp_avg_sq.len()),
        ],
    )?;
    // β^t for t beyond i32 has long underflowed to 0; saturating keeps powi well defined.
    let t = i32::try_from(step).unwrap_or(i32::MAX);
    let bias_correction1 = 1.0 - cfg.beta1.powi(t);
    let bias_correction2 = 1.0 - cfg.beta2.powi(t);
    let (decay_factor, l2) = if cfg.decoupled_weight_decay {
        ((1.0 - cfg.lr * cfg.weight_decay) as f32, 0.0)
    } else {
        (1.0, cfg.weight_decay as f32)
    };
    let rule = AdamRule {
        decay_factor,
        l2,
        one_minus_beta1: (1.0 - cfg.beta1) as f32,
        beta2: cfg.beta2 as f32,
        one_minus_beta2: (1.0 - cfg.beta2) as f32,
        eps: cfg.eps as f32,
        step_size: (cfg.lr / bias_correction1) as f32,
        bias_correction2_sqrt: bias_correction2.sqrt() as f32,
        amsgrad: cfg.amsgrad,
    };
    run_pass(current_isa(), &rule, [grad], [param, exp_avg, exp_avg_sq, max_exp_avg_sq]);
    Ok(())
}
