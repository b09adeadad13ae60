//! Hyper-parameters of the optimizers: small `Copy` structs whose `Default` is PyTorch's and
//! whose `check` rejects values outside the domain PyTorch accepts.
//!
//! They are f64, like PyTorch's Python floats: the kernels derive their f32 constants
//! (`1 - β2`, `lr/(1 - β1ᵗ)`, ...) in f64 and round once, so `1 - 0.999` is the f32 nearest
//! 0.001 (`1 - 0.999f32` would be 1.3e-5 off).

use crate::error::{argument_error, Result};

/// Rejects a value that is negative, infinite or NaN.
fn non_negative(what: &str, value: f64) -> Result<()> {
    // The updates compute in f32: a value beyond f32::MAX would be infinite there.
    if value >= 0.0 && value <= f64::from(f32::MAX) {
        Ok(())
    } else {
        Err(argument_error(what, format!("0 <= {what} <= f32::MAX"), value))
    }
}

/// Rejects a value outside `[0, 1)` (a β of an exponential moving average).
fn unit_open(what: &str, value: f64) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(argument_error(what, format!("0 <= {what} < 1"), value))
    }
}

/// Rejects a value outside `[0, 1]`.
fn unit_closed(what: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(argument_error(what, format!("0 <= {what} <= 1"), value))
    }
}

/// `torch.optim.SGD` hyper-parameters. With `momentum = μ` and `dampening = τ`, one step is
/// `g ← g + weight_decay·θ`, `b ← μ·b + (1-τ)·g` (`b ← g` on the first step),
/// `g ← g + μ·b` (Nesterov) or `g ← b`, then `θ ← θ - lr·g`. The seed's momentum form is
/// `dampening = μ`.
///
/// ```
/// use keel_kernels::optim::SgdConfig;
///
/// // PyTorch's SGD(lr=0.1, momentum=0.9, nesterov=True).
/// let cfg = SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, ..SgdConfig::default() };
/// assert!(cfg.check().is_ok());
/// // Nesterov needs momentum; the error names the field.
/// let err = SgdConfig { nesterov: true, ..SgdConfig::default() }.check().unwrap_err();
/// assert!(err.to_string().starts_with("nesterov: expected momentum > 0"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (PyTorch default 1e-3), `>= 0`.
    pub lr: f64,
    /// Momentum factor μ (default 0: plain SGD, no buffer), `>= 0`.
    pub momentum: f64,
    /// Dampening τ of the gradient added to the buffer (default 0), in `[0, 1]`.
    pub dampening: f64,
    /// L2 penalty added to the gradient (default 0), `>= 0`.
    pub weight_decay: f64,
    /// Nesterov momentum (default false); needs `momentum > 0` and `dampening = 0`.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

impl SgdConfig {
    /// Checks every field's domain; the error names the field.
    pub fn check(&self) -> Result<()> {
        non_negative("lr", self.lr)?;
        non_negative("momentum", self.momentum)?;
        unit_closed("dampening", self.dampening)?;
        non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(argument_error(
                "nesterov",
                "momentum > 0 and dampening = 0",
                format!("momentum = {}, dampening = {}", self.momentum, self.dampening),
            ));
        }
        Ok(())
    }
}

/// `torch.optim.RMSprop` hyper-parameters. One step is `g ← g + weight_decay·θ`,
/// `v ← α·v + (1-α)·g²`; centered: `ḡ ← ḡ + (1-α)·(g - ḡ)` and `d = √(v - ḡ²) + ε`,
/// else `d = √v + ε`; with momentum `b ← μ·b + g/d`, `θ ← θ - lr·b`, else `θ ← θ - lr·g/d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmspropConfig {
    /// Learning rate (PyTorch default 1e-2), `>= 0`.
    pub lr: f64,
    /// Smoothing constant α of the squared-gradient average (default 0.99), in `[0, 1]`.
    pub alpha: f64,
    /// Added to the denominator (default 1e-8), `>= 0`.
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0), `>= 0`.
    pub weight_decay: f64,
    /// Momentum factor μ (default 0: no buffer), `>= 0`.
    pub momentum: f64,
    /// Normalise by the estimated variance `v - ḡ²` instead of `v` (default false).
    pub centered: bool,
}

impl Default for RmspropConfig {
    fn default() -> Self {
        RmspropConfig { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false }
    }
}

impl RmspropConfig {
    /// Checks every field's domain; the error names the field.
    pub fn check(&self) -> Result<()> {
        non_negative("lr", self.lr)?;
        unit_closed("alpha", self.alpha)?;
        non_negative("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("momentum", self.momentum)
    }
}

/// `torch.optim.Adam` / `torch.optim.AdamW` hyper-parameters. Step `t` (from 1) is
/// `g ← g + weight_decay·θ` (Adam, L2) or `θ ← θ·(1 - lr·weight_decay)` (AdamW, decoupled),
/// `m ← m + (1-β1)·(g - m)`, `v ← β2·v + (1-β2)·g²` (AMSGrad: `v̂max ← max(v̂max, v)` used
/// in place of `v`), then `θ ← θ - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε)`.
///
/// ```
/// use keel_kernels::optim::AdamConfig;
///
/// // PyTorch's AdamW() and Adam(lr=3e-4).
/// let adamw = AdamConfig::adamw();
/// assert!(adamw.decoupled_weight_decay && adamw.weight_decay == 1e-2);
/// let adam = AdamConfig { lr: 3e-4, ..AdamConfig::default() };
/// assert_eq!((adam.beta1, adam.beta2, adam.eps), (0.9, 0.999, 1e-8));
/// // β must be below 1.
/// assert!(AdamConfig { beta2: 1.0, ..adam }.check().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3), `>= 0`.
    pub lr: f64,
    /// Decay β1 of the gradient average (default 0.9), in `[0, 1)`.
    pub beta1: f64,
    /// Decay β2 of the squared-gradient average (default 0.999), in `[0, 1)`.
    pub beta2: f64,
    /// Added to the denominator (default 1e-8), `>= 0`.
    pub eps: f64,
    /// Weight decay (Adam default 0, AdamW default 1e-2), `>= 0`.
    pub weight_decay: f64,
    /// `false`: L2 added to the gradient (Adam); `true`: decoupled decay (AdamW).
    pub decoupled_weight_decay: bool,
    /// Use the running maximum of `v` (AMSGrad; default false).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    /// `torch.optim.Adam`'s defaults.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW`'s defaults: Adam's with decoupled weight decay 1e-2.
    pub fn adamw() -> Self {
        AdamConfig { weight_decay: 1e-2, decoupled_weight_decay: true, ..AdamConfig::default() }
    }

    /// Checks every field's domain; the error names the field.
    pub fn check(&self) -> Result<()> {
        non_negative("lr", self.lr)?;
        unit_open("beta1", self.beta1)?;
        unit_open("beta2", self.beta2)?;
        non_negative("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)
    }
}
