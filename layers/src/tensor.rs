//! `Tensor`: an owned, shaped, row-major `f32` buffer.

use crate::error::{LayerError, Result};

/// An owned row-major `f32` buffer with a shape, e.g. `(batch, features)` or NCHW.
///
/// Layers keep their outputs and gradients in tensors they own and reshape them in place
/// ([`Tensor::resize`]), so a training step on a fixed batch shape allocates nothing.
///
/// ```
/// use keel_layers::Tensor;
/// # fn main() -> keel_layers::Result<()> {
/// let x = Tensor::from_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// assert_eq!(x.shape(), &[2, 3]);
/// assert_eq!(x.data()[3 + 1], 5.0); // row 1, column 1: row-major
/// // The same six values as one 2x3 grey image, NCHW.
/// let image = x.reshape(&[1, 1, 2, 3])?;
/// assert_eq!((image.shape(), image.len()), (&[1, 1, 2, 3][..], 6));
/// assert!(Tensor::from_vec(&[2, 2], vec![0.0; 3]).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// The empty tensor, shape `[]` holding nothing: what a layer shows before its first pass.
    pub const EMPTY: Tensor = Tensor { shape: Vec::new(), data: Vec::new() };

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![0.0; shape.iter().product()] }
    }

    /// A tensor holding `data` (row-major); errors if its length is not the shape's product.
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        let expected = shape.iter().product();
        if data.len() != expected {
            return Err(LayerError::TensorLength { shape: shape.to_vec(), expected, actual: data.len() });
        }
        Ok(Tensor { shape: shape.to_vec(), data })
    }

    /// The same values under another shape with as many elements (e.g. `(n, 784)` as
    /// `(n, 1, 28, 28)`); errors if the element counts differ.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if expected != self.data.len() {
            return Err(LayerError::TensorLength {
                shape: shape.to_vec(),
                expected,
                actual: self.data.len(),
            });
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values, row-major, for writing.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Gives the tensor a new shape, keeping its allocation when it is large enough (no
    /// allocation once a layer has seen its batch shape). The values are unspecified
    /// afterwards: callers overwrite them.
    pub fn resize(&mut self, shape: &[usize]) {
        if self.shape != shape {
            self.shape.clear();
            self.shape.extend_from_slice(shape);
        }
        self.data.resize(shape.iter().product(), 0.0);
    }

    /// Overwrites `out` with the rows (first-dimension slices) `indices` of `self`, in that
    /// order: `self` `(samples, ...)` gives `out` `(indices.len(), ...)`, keeping `out`'s
    /// allocation when it is large enough (what makes mini-batches allocation-free).
    /// Every index must be below `samples` (callers hold valid indices).
    pub(crate) fn gather_rows(&self, indices: &[usize], out: &mut Tensor) {
        out.shape.clear();
        out.shape.extend_from_slice(&self.shape);
        let width = match out.shape.first_mut() {
            Some(rows) if *rows > 0 => {
                let width = self.data.len() / *rows;
                *rows = indices.len();
                width
            }
            _ => 0,
        };
        out.data.resize(indices.len() * width, 0.0);
        if width > 0 {
            for (row, &index) in out.data.chunks_exact_mut(width).zip(indices) {
                row.copy_from_slice(&self.data[index * width..(index + 1) * width]);
            }
        }
    }
}
