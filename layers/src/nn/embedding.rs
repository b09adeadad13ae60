//! `Embedding`: a lookup table of learned vectors, one row per token id (PyTorch's
//! `nn.Embedding(num_embeddings, embedding_dim, padding_idx)`).
//!
//! Shapes: weight `(num_embeddings, dim)` named `"weight"`; input: indices of any shape
//! `(…)`; output `(…, dim)`, `output[p] = weight[input[p]]`. The course writes the lookup as
//! `E·o_j`, the embedding matrix times a one-hot vector (with words in columns): the same
//! row, without the product.
//!
//! **How indices come in.** Indices are whole numbers, tensors hold `f32`, so there are two
//! doors:
//! - [`Embedding::forward_indices`] / [`Embedding::backward_indices`] take `&[u32]` ids and
//!   the shape they have: the direct way, for code that holds token ids;
//! - the [`Layer`] trait takes the ids coded as `f32` values in a [`Tensor`] (what
//!   [`Sequential`](super::Sequential) and [`fit`](crate::fit) pass around), and checks that
//!   each is a whole number in `0..num_embeddings` (exact in `f32` up to 2²⁴). A value that is
//!   not (out of range, `2.5`, NaN) is a [`LayerError::Index`] naming its flat position and
//!   the value.
//!
//! Backward accumulates `∂loss/∂output` into the rows that were looked up (a row used twice
//! gets both), never into the `padding_idx` row; the padding row starts at zeros and so
//! stays what it is (unless an optimizer's weight decay moves it, as in PyTorch). Indices
//! have no gradient: through the trait, `grad_input` is zeros of the input's shape.

use keel_kernels::embed::{embedding_backward, embedding_forward};
use rand::rngs::StdRng;

use super::init::Init;
use super::layer::{ensure_forward_ran, Layer, Mode, Param};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// A table of `num_embeddings` learned vectors of `dim` values (see the module docs).
///
/// # Shapes
/// - input: ids of any shape `(…)` (`&[u32]` with [`Embedding::forward_indices`], or
///   whole numbers in an `f32` [`Tensor`] through [`Layer::forward`]);
/// - output `(…, dim)`;
/// - parameter `"weight"` `(num_embeddings, dim)`.
///
/// ```
/// use keel_layers::{Embedding, Layer, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Three tokens of two values each; token 0 is padding.
/// let weight = Tensor::from_vec(&[3, 2], vec![0.0, 0.0, 1.0, 2.0, 3.0, 4.0])?;
/// let mut embedding = Embedding::from_weight(weight, Some(0))?;
/// embedding.forward_indices(&[2, 1, 0], &[1, 3])?; // one sequence of three ids
/// assert_eq!(embedding.output().shape(), &[1, 3, 2]);
/// assert_eq!(embedding.output().data(), &[3.0, 4.0, 1.0, 2.0, 0.0, 0.0]);
/// // The same through the `Layer` trait, ids coded as f32; 2.5 is not an id.
/// embedding.forward(&Tensor::from_vec(&[2], vec![1.0, 1.0])?, Mode::Eval)?;
/// assert_eq!(embedding.output().data(), &[1.0, 2.0, 1.0, 2.0]);
/// assert!(embedding.forward(&Tensor::from_vec(&[1], vec![2.5])?, Mode::Eval).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Embedding {
    num_embeddings: usize,
    dim: usize,
    padding_idx: Option<u32>,
    /// `(num_embeddings, dim)`.
    pub weight: Param,
    /// The ids of the last pass through the `f32` door, decoded.
    indices: Vec<u32>,
    /// `(…, dim)` of the last forward, kept so a steady-state pass allocates nothing.
    out_shape: Vec<usize>,
    output: Tensor,
    grad_input: Tensor,
}

impl Embedding {
    /// A table drawn from `N(0, 1)` (PyTorch's default), the `padding_idx` row zeroed.
    ///
    /// Errors: `num_embeddings` or `dim` of 0, `padding_idx >= num_embeddings`.
    pub fn new(
        num_embeddings: usize,
        dim: usize,
        padding_idx: Option<usize>,
        rng: &mut StdRng,
    ) -> Result<Self> {
        let mut weight = Tensor::zeros(&[num_embeddings, dim]);
        Init::Normal { std: 1.0 }.fill(weight.data_mut(), dim, dim, rng);
        let mut layer = Self::from_weight(weight, padding_idx)?;
        if let Some(p) = layer.padding_idx {
            layer.weight.value.data_mut()[p as usize * dim..][..dim].fill(0.0);
        }
        Ok(layer)
    }

    /// A table holding `weight` `(num_embeddings, dim)` as it is (PyTorch's
    /// `from_pretrained(weight, freeze=False, padding_idx=…)`; set `weight.frozen` to freeze).
    ///
    /// Errors: `weight` not two-dimensional with both sizes `>= 1`, more rows than `u32`
    /// ids reach, `padding_idx >= num_embeddings`.
    pub fn from_weight(weight: Tensor, padding_idx: Option<usize>) -> Result<Self> {
        let (num_embeddings, dim) = match *weight.shape() {
            [num, dim] if num >= 1 && dim >= 1 && u32::try_from(num).is_ok() => (num, dim),
            _ => {
                return Err(LayerError::Shape {
                    layer: "embedding".into(),
                    expected: "weight (num_embeddings >= 1, dim >= 1), num_embeddings <= 2^32".into(),
                    actual: weight.shape().to_vec(),
                })
            }
        };
        let padding_idx = match padding_idx {
            None => None,
            Some(p) if p < num_embeddings => Some(p as u32),
            Some(p) => {
                return Err(LayerError::Index {
                    layer: format!("embedding({num_embeddings}, {dim})"),
                    position: 0,
                    value: format!("padding_idx = {p}"),
                    expected: format!("padding_idx in 0..{num_embeddings}"),
                })
            }
        };
        Ok(Embedding {
            num_embeddings,
            dim,
            padding_idx,
            weight: Param::new(weight),
            indices: Vec::new(),
            out_shape: Vec::new(),
            output: Tensor::default(),
            grad_input: Tensor::default(),
        })
    }

    /// The number of rows (the vocabulary size).
    pub fn num_embeddings(&self) -> usize {
        self.num_embeddings
    }

    /// The length of each vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The row that never gets a gradient, if any.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx.map(|p| p as usize)
    }

    /// Looks up `indices` of shape `shape` (whose product is `indices.len()`); the output,
    /// then [`Layer::output`], has shape `(shape…, dim)`.
    ///
    /// Errors: `shape` not matching the count, an index `>= num_embeddings` (naming its
    /// position and value).
    pub fn forward_indices(&mut self, indices: &[u32], shape: &[usize]) -> Result<()> {
        self.check_count(indices.len(), shape)?;
        self.check_range(indices)?;
        self.out_shape.clear();
        self.out_shape.extend(shape.iter().copied().chain([self.dim]));
        self.output.resize(&self.out_shape);
        embedding_forward(self.weight.value.data(), self.dim, indices, self.output.data_mut())?;
        Ok(())
    }

    /// Accumulates `grad_output` `(…, dim)` (one row per index) into the weight gradient at
    /// the rows of `indices`, skipping `padding_idx`; a frozen weight gets nothing.
    ///
    /// Errors: `grad_output` not `(indices.len(), dim)` once flattened, an index out of range.
    pub fn backward_indices(&mut self, indices: &[u32], grad_output: &Tensor) -> Result<()> {
        if grad_output.len() != indices.len() * self.dim || grad_output.shape().last() != Some(&self.dim) {
            return Err(LayerError::Shape {
                layer: format!("{} (gradient)", self.name()),
                expected: format!("(…, {}) with {} rows", self.dim, indices.len()),
                actual: grad_output.shape().to_vec(),
            });
        }
        self.check_range(indices)?;
        if self.weight.frozen {
            return Ok(());
        }
        embedding_backward(
            indices,
            grad_output.data(),
            self.dim,
            self.padding_idx,
            self.weight.grad.data_mut(),
        )?;
        Ok(())
    }

    /// Errors unless `shape` holds `count` elements.
    fn check_count(&self, count: usize, shape: &[usize]) -> Result<()> {
        if shape.iter().product::<usize>() == count {
            Ok(())
        } else {
            Err(LayerError::Shape {
                layer: self.name(),
                expected: format!("indices of a shape holding {count} elements"),
                actual: shape.to_vec(),
            })
        }
    }

    /// The first index out of range, as a [`LayerError::Index`].
    fn check_range(&self, indices: &[u32]) -> Result<()> {
        match indices.iter().position(|&i| i as usize >= self.num_embeddings) {
            None => Ok(()),
            Some(position) => Err(self.index_error(position, indices[position].to_string())),
        }
    }

    fn index_error(&self, position: usize, value: String) -> LayerError {
        LayerError::Index {
            layer: self.name(),
            position,
            value,
            expected: format!("a whole number in 0..{}", self.num_embeddings),
        }
    }

    /// Decodes the `f32`-coded ids of `input` into `self.indices`.
    fn decode(&mut self, input: &Tensor) -> Result<()> {
        self.indices.clear();
        for (position, &v) in input.data().iter().enumerate() {
            if !(v >= 0.0 && v.fract() == 0.0 && (v as u64) < self.num_embeddings as u64) {
                return Err(self.index_error(position, v.to_string()));
            }
            self.indices.push(v as u32);
        }
        Ok(())
    }
}

impl Layer for Embedding {
    fn name(&self) -> String {
        match self.padding_idx {
            Some(p) => format!("embedding({}, {}, padding_idx={p})", self.num_embeddings, self.dim),
            None => format!("embedding({}, {})", self.num_embeddings, self.dim),
        }
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        self.decode(input)?;
        let indices = std::mem::take(&mut self.indices);
        let result = self.forward_indices(&indices, input.shape());
        self.indices = indices;
        result
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        self.decode(input)?;
        let indices = std::mem::take(&mut self.indices);
        let result = self.backward_indices(&indices, grad_output);
        self.indices = indices;
        result?;
        self.grad_input.resize(input.shape());
        self.grad_input.data_mut().fill(0.0);
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        visit("weight", &mut self.weight);
    }
}
