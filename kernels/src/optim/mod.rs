//! Optimizer updates and gradient clipping, PyTorch's algorithms as fused element-wise
//! passes over `(param, grad, state)` slices.
//!
//! Each update reads the gradient once and updates the parameter and its state slices in
//! place, in one pass: a rule written once over [`crate::simd`]'s vector trait, run on the
//! instruction set of [`current_isa`](crate::isa::current_isa) (AVX-512F, AVX2 or
//! portable), the tail through the same rule on a padded copy, and rayon chunks
//! ([`crate::parallel::chunk_len`]) above the threshold. The rules use only correctly
//! rounded operations (`+ - * /`, `sqrt`, compares and selects; no fused multiply-add), so
//! the result has the same bits on every instruction set and any number of threads, and
//! matches the scalar [`reference`](mod@reference) loops bit for bit.
//!
//! | kernel | PyTorch | state slices |
//! | --- | --- | --- |
//! | [`sgd_update`] | `torch.optim.SGD` | `momentum_buf` (with momentum) |
//! | [`rmsprop_update`] | `torch.optim.RMSprop` | `square_avg`, `momentum_buf`, `grad_avg` (centered) |
//! | [`adam_update`] | `torch.optim.Adam`, `AdamW` | `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (AMSGrad) |
//! | [`clip_grad_norm`] | `torch.nn.utils.clip_grad_norm_` | — |
//! | [`clip_grad_value`] | `torch.nn.utils.clip_grad_value_` | — |
//! | [`grad_scale`] | `grad.mul_(c)` (clipping one parameter at a time; reference in [`scale::reference`]) | — |
//!
//! Hyper-parameters are `Copy` structs ([`SgdConfig`], [`RmspropConfig`], [`AdamConfig`])
//! whose `Default` is PyTorch's and whose `check` is run by every kernel. Weight decay here
//! is PyTorch's `weight_decay`, i.e. the seed's L2 `λ/m`.

mod adam;
mod clip;
mod config;
pub mod reference;
mod rmsprop;
pub mod scale;
mod sgd;

pub use adam::adam_update;
pub use clip::{clip_grad_norm, clip_grad_value};
pub use config::{AdamConfig, RmspropConfig, SgdConfig};
pub use rmsprop::rmsprop_update;
pub use scale::grad_scale;
pub use sgd::sgd_update;

use crate::error::{argument_error, check_len, Result};

/// Rejects step 0 (steps count from 1, as PyTorch's `state["step"]` after its increment).
fn check_step(step: u64) -> Result<()> {
    if step >= 1 {
        Ok(())
    } else {
        Err(argument_error("step", "step >= 1", step))
    }
}

/// Checks `grad` and each used state slice `(name, used, len)` against the parameter length.
fn check_slices(len: usize, grad: &[f32], states: &[(&str, bool, usize)]) -> Result<()> {
    check_len(|| format!("grad (param len {len})"), len, grad.len())?;
    for &(name, used, actual) in states {
        if used {
            check_len(|| format!("{name} (param len {len})"), len, actual)?;
        }
    }
    Ok(())
}
