//! `Dropout`: inverted dropout (PyTorch's `nn.Dropout`), any input shape.
//!
//! In [`Mode::Train`] each unit is zeroed with probability `p` and the kept ones are scaled by
//! `1/(1 - p)`, so the expected output equals the input and evaluation needs no rescaling; in
//! [`Mode::Eval`] the layer is the identity. Backward sends the gradient through the kept
//! units only, with the same scale.
//!
//! Masks are deterministic: training forward number `t` (from 0, the layer's step counter)
//! draws element `j`'s decision from counter `t·2³² + j` of the kernel's counter-based stream
//! keyed by the seed ([`keel_kernels::norm::dropout_keep`]). Each step thus draws a fresh
//! mask, and a mask is a function of `(seed, step)` alone (independent of earlier batch
//! shapes); tensors beyond 2³² elements would reuse the next step's counters.

use keel_kernels::norm::{dropout_backward, dropout_forward};

use super::layer::{backward_before_forward, check_backward_shapes, Layer, Mode};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Inverted dropout (see the module docs).
///
/// # Shapes
/// Input any shape; output and input gradient the input's shape.
///
/// ```
/// use keel_layers::{Dropout, Layer, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut dropout = Dropout::new(0.5, 42)?;
/// let x = Tensor::from_vec(&[1, 1000], vec![1.0; 1000])?;
/// dropout.forward(&x, Mode::Train)?;
/// let y = dropout.output().data();
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0)); // kept units scaled by 1/(1 - p)
/// let kept = y.iter().filter(|&&v| v > 0.0).count();
/// assert!((400..600).contains(&kept));
/// dropout.forward(&x, Mode::Eval)?;
/// assert_eq!(dropout.output(), &x);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f32,
    seed: u64,
    step: u64,
    /// 1 = kept, 0 = dropped, for the last training forward.
    mask: Vec<u8>,
    /// The mode of the last forward, which backward differentiates.
    last_mode: Option<Mode>,
    /// The global batch row of the input's first row ([`Layer::set_batch_offset`]).
    batch_offset: usize,
    output: Tensor,
    grad_input: Tensor,
}

impl Dropout {
    /// A layer dropping with probability `p`, masks drawn from `seed`, step counter at 0;
    /// errors ([`LayerError::Argument`]) unless `0 <= p <= 1`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(LayerError::Argument {
                owner: "dropout".into(),
                what: "p".into(),
                expected: "0 <= p <= 1".into(),
                actual: p.to_string(),
            });
        }
        Ok(Dropout {
            p,
            seed,
            step: 0,
            mask: Vec::new(),
            last_mode: None,
            batch_offset: 0,
            output: Tensor::default(),
            grad_input: Tensor::default(),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// The number of training forwards so far: the next one draws the mask of this step.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Sets the step counter (to replay a step's mask, or to resume training).
    pub fn set_step(&mut self, step: u64) {
        self.step = step;
    }

    /// The keep mask of the last training forward (1 kept, 0 dropped), input-sized.
    pub fn mask(&self) -> &[u8] {
        &self.mask
    }
}

impl Layer for Dropout {
    fn name(&self) -> String {
        format!("dropout(p = {})", self.p)
    }

    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()> {
        self.output.resize(input.shape());
        match mode {
            Mode::Train => {
                // Resizing a Vec<u8> in place: no allocation once the batch shape is known.
                self.mask.resize(input.len(), 0);
                // Element i of the global batch draws index (step << 32) + i: a part of the
                // batch starting at row r draws as from element r·row_len.
                let row_len = input.len() / input.shape().first().copied().unwrap_or(1).max(1);
                let offset = (self.step << 32) + (self.batch_offset * row_len) as u64;
                dropout_forward(
                    self.p,
                    self.seed,
                    offset,
                    input.data(),
                    self.output.data_mut(),
                    &mut self.mask,
                )?;
                self.step = self.step.wrapping_add(1);
            }
            Mode::Eval => self.output.data_mut().copy_from_slice(input.data()),
        }
        self.last_mode = Some(mode);
        Ok(())
    }

    fn set_batch_offset(&mut self, rows: usize) {
        self.batch_offset = rows;
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        let Some(mode) = self.last_mode else {
            return Err(backward_before_forward(&self.name()));
        };
        check_backward_shapes(|| self.name(), self.output.shape(), grad_output, Some(input))?;
        self.grad_input.resize(input.shape());
        match mode {
            Mode::Train => {
                dropout_backward(self.p, &self.mask, grad_output.data(), self.grad_input.data_mut())?
            }
            Mode::Eval => self.grad_input.data_mut().copy_from_slice(grad_output.data()),
        }
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }
}
