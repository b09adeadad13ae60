//! `Dense`: the fully connected layer `y = x·Wᵀ + b`.
//!
//! Shapes (PyTorch's `nn.Linear`): x `(batch, in)`, weight `(out, in)`, bias `(out)`,
//! y `(batch, out)`. The course notes write `Z = W·A + b` with samples in columns: the same
//! product, transposed. With a fused activation ([`Dense::with_activation`]) the output is
//! `f(x·Wᵀ + b)` (bias and ReLU or leaky ReLU in the GEMM's epilogue, sigmoid and tanh in
//! place after), and backward multiplies by `f'` (from the output) before the products: one
//! layer and one pass fewer than a separate `Activation`.

use keel_kernels::gemm::{sgemm_fused, Bias, Epilogue, GemmShape};
use keel_kernels::{sgemm, Transpose};
use rand::rngs::StdRng;

use super::activation::{grad_before_activation, ActivationKind};
use super::init::Init;
use super::layer::{ensure_forward_ran, Layer, Mode, Param};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// A fully connected layer (see the module docs).
///
/// # Shapes
/// - input `(batch, in_features)`, `batch >= 1`;
/// - output `(batch, out_features)`;
/// - parameters `"weight"` `(out_features, in_features)`, `"bias"` `(out_features)`.
///
/// ```
/// use keel_layers::{ActivationKind, Dense, Init, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut dense = Dense::new(2, 1, Init::He, &mut rng)?.with_activation(ActivationKind::Relu);
/// dense.weight.value.data_mut().copy_from_slice(&[2.0, -1.0]);
/// dense.bias.value.data_mut()[0] = 0.5;
/// let x = Tensor::from_vec(&[3, 2], vec![1.0, 1.0, 3.0, 2.0, 0.0, 4.0])?;
/// dense.forward(&x, Mode::Eval)?;
/// // relu(2·x0 - x1 + 0.5) for each row.
/// assert_eq!(dense.output().data(), &[1.5, 4.5, 0.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Dense {
    in_features: usize,
    out_features: usize,
    /// `(out, in)`.
    pub weight: Param,
    /// `(out)`.
    pub bias: Param,
    /// The fused activation, if any.
    activation: Option<ActivationKind>,
    output: Tensor,
    grad_input: Tensor,
    /// `∂loss/∂(x·Wᵀ + b)` when an activation is fused.
    grad_pre_activation: Tensor,
    /// Whether backward computes `grad_input` ([`Layer::set_input_grad`]).
    input_grad: bool,
}

impl Dense {
    /// A layer with weights drawn by `init` (fan-in `in`, fan-out `out`) and zero biases;
    /// errors ([`LayerError::Argument`]) if either size is 0.
    pub fn new(in_features: usize, out_features: usize, init: Init, rng: &mut StdRng) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(LayerError::Argument {
                owner: "dense".into(),
                what: "(in_features, out_features)".into(),
                expected: "sizes of at least 1".into(),
                actual: format!("({in_features}, {out_features})"),
            });
        }
        let mut weight = Tensor::zeros(&[out_features, in_features]);
        init.fill(weight.data_mut(), in_features, out_features, rng);
        Ok(Dense {
            in_features,
            out_features,
            weight: Param::new(weight),
            bias: Param::new(Tensor::zeros(&[out_features])),
            activation: None,
            output: Tensor::default(),
            grad_input: Tensor::default(),
            grad_pre_activation: Tensor::default(),
            input_grad: true,
        })
    }

    /// The same layer with `activation` fused into its output, `y = f(x·Wᵀ + b)`.
    pub fn with_activation(self, activation: ActivationKind) -> Self {
        Dense { activation: Some(activation), ..self }
    }

    /// The batch size of `input`, if its shape is `(batch, in)` with `batch >= 1`.
    fn batch_of(&self, input: &Tensor) -> Result<usize> {
        match *input.shape() {
            [batch, features] if features == self.in_features && batch >= 1 => Ok(batch),
            _ => Err(LayerError::Shape {
                layer: self.name(),
                expected: format!("(batch >= 1, {})", self.in_features),
                actual: input.shape().to_vec(),
            }),
        }
    }
}

impl Layer for Dense {
    fn name(&self) -> String {
        match self.activation {
            Some(activation) => {
                format!("dense({} -> {}, {})", self.in_features, self.out_features, activation.name())
            }
            None => format!("dense({} -> {})", self.in_features, self.out_features),
        }
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let batch = self.batch_of(input)?;
        let (inf, outf) = (self.in_features, self.out_features);
        self.output.resize(&[batch, outf]);
        // y = f(x·Wᵀ + b) in one GEMM: bias and ReLU in its epilogue, sigmoid and tanh after.
        let (fused, after) = ActivationKind::split_for_epilogue(self.activation);
        let epilogue = Epilogue { bias: Bias::PerColumn(self.bias.value.data()), activation: fused };
        let (x, w) = (input.data(), self.weight.value.data());
        let y = self.output.data_mut();
        sgemm_fused(
            &GemmShape {
                transa: Transpose::No,
                transb: Transpose::Yes,
                m: batch,
                n: outf,
                k: inf,
                lda: inf,
                ldb: inf,
                ldc: outf,
            },
            1.0,
            x,
            w,
            0.0,
            y,
            &epilogue,
        )?;
        if let Some(activation) = after {
            activation.forward_inplace(self.output.data_mut())?;
        }
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        let batch = self.batch_of(input)?;
        let (inf, outf) = (self.in_features, self.out_features);
        if grad_output.shape() != [batch, outf] {
            return Err(LayerError::Shape {
                layer: format!("{} (gradient)", self.name()),
                expected: format!("({batch}, {outf})"),
                actual: grad_output.shape().to_vec(),
            });
        }
        let dy = grad_before_activation(
            self.activation,
            &self.output,
            grad_output,
            &mut self.grad_pre_activation,
        )?;
        // dW += dyᵀ·x  (out, in), unless frozen
        if !self.weight.frozen {
            sgemm(
                &GemmShape {
                    transa: Transpose::Yes,
                    transb: Transpose::No,
                    m: outf,
                    n: inf,
                    k: batch,
                    lda: outf,
                    ldb: inf,
                    ldc: inf,
                },
                1.0,
                dy,
                input.data(),
                1.0,
                self.weight.grad.data_mut(),
            )?;
        }
        // db += column sums of dy, unless frozen
        if !self.bias.frozen {
            let db = self.bias.grad.data_mut();
            for row in dy.chunks_exact(outf) {
                db.iter_mut().zip(row).for_each(|(sum, &g)| *sum += g);
            }
        }
        if !self.input_grad {
            self.grad_input.resize(&[0]);
            return Ok(());
        }
        // dx = dy·W  (batch, in)
        self.grad_input.resize(&[batch, inf]);
        let w = self.weight.value.data();
        sgemm(
            &GemmShape {
                transa: Transpose::No,
                transb: Transpose::No,
                m: batch,
                n: inf,
                k: outf,
                lda: outf,
                ldb: inf,
                ldc: inf,
            },
            1.0,
            dy,
            w,
            0.0,
            self.grad_input.data_mut(),
        )?;
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }

    fn set_input_grad(&mut self, needed: bool) {
        self.input_grad = needed;
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        visit("weight", &mut self.weight);
        visit("bias", &mut self.bias);
    }
}
