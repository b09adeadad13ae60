//! The plain RNN cell half (PyTorch `nn.RNN`, Elman): `h' = act(pre)`, and back.
//!
//! The cell is one activation on the whole `(batch, hidden)` block: the element-wise kernels
//! of [`crate::activation`] (SIMD, rayon above the crate's threshold, backward from the saved
//! output) are exactly the fused pass it needs, so this file only checks shapes and picks one.

use super::{check_matrix, product, RNN_GATES};
use crate::activation::{relu_backward, relu_forward, tanh_backward, tanh_forward};
use crate::error::Result;

/// The non-linearity of a plain RNN cell, PyTorch's `nonlinearity` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    #[default]
    Tanh,
    /// `max(·, 0)`.
    Relu,
}

impl Nonlinearity {
    /// PyTorch's name: `"tanh"` or `"relu"`.
    pub fn name(self) -> &'static str {
        match self {
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Relu => "relu",
        }
    }
}

/// Plain RNN cell forward: `h' = act(pre)`.
///
/// - `preact` `(batch, hidden)`: `x·W_ihᵀ + h·W_hhᵀ + b_ih + b_hh` (e.g. from
///   [`super::rnn_preact_forward`]); read only;
/// - `h_next` `(batch, hidden)`: **overwritten** with `act(preact)`; it is also the cache of
///   [`rnn_cell_backward`] (`tanh' = 1 - h'²`, `relu' = [h' > 0]`).
///
/// Zero sizes are no-ops. Errors name the first slice whose length does not match.
///
/// ```
/// use keel_kernels::rnn::{rnn_cell_forward, Nonlinearity};
/// # fn main() -> keel_kernels::Result<()> {
/// // preact, h_next: (batch 1, hidden 3).
/// let preact = [-1.0, 0.5, 2.0];
/// let mut h_next = [0.0; 3];
/// rnn_cell_forward(1, 3, Nonlinearity::Relu, &preact, &mut h_next)?;
/// assert_eq!(h_next, [0.0, 0.5, 2.0]);
/// rnn_cell_forward(1, 3, Nonlinearity::Tanh, &[0.0, 1.0, -20.0], &mut h_next)?;
/// assert_eq!([h_next[0], h_next[2]], [0.0, -1.0]);
/// assert!((h_next[1] - 1.0f32.tanh()).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn rnn_cell_forward(
    batch: usize,
    hidden: usize,
    nonlinearity: Nonlinearity,
    preact: &[f32],
    h_next: &mut [f32],
) -> Result<()> {
    let width = product("1·hidden", RNN_GATES, hidden)?;
    check_matrix("preact", "(batch, hidden)", batch, width, preact.len())?;
    check_matrix("h_next", "(batch, hidden)", batch, hidden, h_next.len())?;
    match nonlinearity {
        Nonlinearity::Tanh => tanh_forward(preact, h_next),
        Nonlinearity::Relu => relu_forward(preact, h_next),
    }
}

/// Plain RNN cell backward to the pre-activation: `dpreact = dh'⊙act'(h')`.
///
/// - `h_next` `(batch, hidden)`: the output of [`rnn_cell_forward`]; read only;
/// - `dh_next` `(batch, hidden)`: `∂L/∂h'`; read only;
/// - `dpreact` `(batch, hidden)`: **overwritten** with `∂L/∂preact`; feed it to
///   [`super::rnn_preact_backward`].
///
/// Zero sizes are no-ops. Errors name the first slice whose length does not match.
///
/// ```
/// use keel_kernels::rnn::{rnn_cell_backward, Nonlinearity};
/// # fn main() -> keel_kernels::Result<()> {
/// // h_next (saved by the forward), dh_next, dpreact: (batch 1, hidden 2).
/// let mut dpreact = [f32::NAN; 2]; // overwritten, never read
/// rnn_cell_backward(1, 2, Nonlinearity::Tanh, &[0.5, 0.0], &[2.0, 2.0], &mut dpreact)?;
/// assert_eq!(dpreact, [1.5, 2.0]); // dh'·(1 - h'²)
/// rnn_cell_backward(1, 2, Nonlinearity::Relu, &[0.0, 3.0], &[2.0, 2.0], &mut dpreact)?;
/// assert_eq!(dpreact, [0.0, 2.0]); // dh'·[h' > 0]
/// # Ok(())
/// # }
/// ```
pub fn rnn_cell_backward(
    batch: usize,
    hidden: usize,
    nonlinearity: Nonlinearity,
    h_next: &[f32],
    dh_next: &[f32],
    dpreact: &mut [f32],
) -> Result<()> {
    check_matrix("h_next", "(batch, hidden)", batch, hidden, h_next.len())?;
    check_matrix("dh_next", "(batch, hidden)", batch, hidden, dh_next.len())?;
    check_matrix("dpreact", "(batch, hidden)", batch, hidden, dpreact.len())?;
    match nonlinearity {
        Nonlinearity::Tanh => tanh_backward(h_next, dh_next, dpreact),
        Nonlinearity::Relu => relu_backward(h_next, dh_next, dpreact),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are PyTorch's `nonlinearity` strings (they name the layers in errors).
    #[test]
    fn names_are_pytorchs() {
        assert_eq!(Nonlinearity::Tanh.name(), "tanh");
        assert_eq!(Nonlinearity::Relu.name(), "relu");
        assert_eq!(Nonlinearity::default(), Nonlinearity::Tanh);
    }
}
