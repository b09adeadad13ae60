//! Freezing parameters by name for transfer learning: a frozen parameter gets no update from
//! the optimizers, and no gradient work where a layer can skip it.
//!
//! What a frozen parameter saves: [`Dense`](super::Dense) skips `dW` (a matrix product) and
//! `db` separately, [`Conv2d`](super::Conv2d) its weight-gradient pass when weight and bias are
//! both frozen, [`Embedding`](super::Embedding) its scatter; and a [`Sequential`](super::Sequential)
//! whose input gradient is off (as [`crate::fit`] sets it) stops its backward at the first
//! layer with a trainable parameter, so a frozen backbone at the bottom of a model costs no
//! backward at all. Batch norm and the recurrent layers compute their parameter gradients
//! with their input gradients and leave them unused. Freezing does not change the mode: batch
//! norm in training mode still updates its running statistics, as in PyTorch.

use super::layer::Layer;
use crate::error::{LayerError, Result};

/// Freezes every parameter of `model` named `prefix` or under it (`"features"` matches
/// `"features.0.weight"`, not `"features2.weight"`; `""` matches every parameter), and returns
/// how many parameter tensors matched. PyTorch's `requires_grad_(False)` on a sub-module.
///
/// Errors ([`LayerError::Config`]) if no parameter matches, naming the prefix.
///
/// ```
/// use keel_layers::{freeze, unfreeze, Dense, Init, Sequential};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut model = Sequential::new()
///     .push(Dense::new(4, 3, Init::He, &mut rng).unwrap())
///     .push(Dense::new(3, 2, Init::Xavier, &mut rng).unwrap());
/// assert_eq!(freeze(&mut model, "0").unwrap(), 2); // "0.weight", "0.bias"
/// assert_eq!(unfreeze(&mut model, "0.bias").unwrap(), 1);
/// assert!(freeze(&mut model, "2").is_err());
/// ```
pub fn freeze(model: &mut dyn Layer, prefix: &str) -> Result<usize> {
    set_frozen(model, prefix, true)
}

/// Makes every parameter of `model` named `prefix` or under it trainable again (the rule of
/// [`freeze`], whose example unfreezes too), and returns how many parameter tensors matched.
///
/// Errors ([`LayerError::Config`]) if no parameter matches, naming the prefix.
pub fn unfreeze(model: &mut dyn Layer, prefix: &str) -> Result<usize> {
    set_frozen(model, prefix, false)
}

/// How many parameter elements a model trains and how many are frozen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParamCounts {
    /// Elements of the parameters that are not frozen.
    pub trainable: usize,
    /// Elements of the frozen parameters.
    pub frozen: usize,
}

/// Counts the parameter elements of `model`, trainable and frozen.
///
/// ```
/// use keel_layers::{freeze, param_counts, Dense, Init, ParamCounts, SeedableRng, StdRng};
/// # fn main() -> keel_layers::Result<()> {
/// let mut dense = Dense::new(4, 3, Init::He, &mut StdRng::seed_from_u64(0))?;
/// assert_eq!(param_counts(&mut dense), ParamCounts { trainable: 4 * 3 + 3, frozen: 0 });
/// freeze(&mut dense, "weight")?;
/// assert_eq!(param_counts(&mut dense), ParamCounts { trainable: 3, frozen: 12 });
/// # Ok(())
/// # }
/// ```
pub fn param_counts(model: &mut dyn Layer) -> ParamCounts {
    let mut counts = ParamCounts::default();
    model.visit_params(&mut |_, param| {
        let count = if param.frozen { &mut counts.frozen } else { &mut counts.trainable };
        *count += param.value.len();
    });
    counts
}

fn set_frozen(model: &mut dyn Layer, prefix: &str, frozen: bool) -> Result<usize> {
    let mut matched = 0;
    model.visit_params(&mut |name, param| {
        if is_under(name, prefix) {
            param.frozen = frozen;
            matched += 1;
        }
    });
    if matched == 0 {
        return Err(LayerError::Config {
            model: model.name(),
            expected: "a parameter name or a prefix of one ending at a '.'".into(),
            actual: format!("{prefix:?}, which names no parameter"),
        });
    }
    Ok(matched)
}

/// Whether the parameter `name` is `prefix` or lies under it (`prefix` followed by `.`, or a
/// `prefix` that ends with `.`).
fn is_under(name: &str, prefix: &str) -> bool {
    match name.strip_prefix(prefix) {
        Some(rest) => prefix.is_empty() || prefix.ends_with('.') || rest.is_empty() || rest.starts_with('.'),
        None => false,
    }
}
