//! One-hot encoding of categorical feature columns ([`OneHot`]), its categories fitted on
//! the training set and applied to every split.

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Replaces each categorical column of `(samples, features)` features by one indicator
/// column per category (1 where the sample is of that category, else 0), in place: the
/// other columns keep their order, and a categorical column's indicators take its position,
/// one per category in increasing order of the category's value.
///
/// The categories of a column are the distinct values it holds in the training features:
/// codes such as `1`/`2` for sex or an occupation number, or the codes that
/// [`CsvReader::categorical`](super::CsvReader::categorical) gives a column of text; a held-out sample of a category
/// never seen in training is an error rather than an all-zero row, so a split that misses a
/// category shows.
///
/// ```
/// use keel_layers::{OneHot, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Column 1 holds a category code (1, 2 or 3) between two numeric columns.
/// let train = Tensor::from_vec(&[3, 3], vec![0.5, 2.0, 7.0, 0.1, 1.0, 8.0, 0.9, 3.0, 9.0])?;
/// let one_hot = OneHot::fit(&train, &[1])?;
/// assert_eq!(one_hot.categories(1), Some(&[1.0, 2.0, 3.0][..]));
/// let encoded = one_hot.transform(&train)?;
/// assert_eq!(encoded.shape(), &[3, one_hot.output_width()]);
/// assert_eq!(&encoded.data()[..5], &[0.5, 0.0, 1.0, 0.0, 7.0]);
/// // A category never seen in training is an error.
/// assert!(one_hot.transform(&Tensor::from_vec(&[1, 3], vec![0.0, 4.0, 0.0])?).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OneHot {
    /// The number of input columns.
    width: usize,
    /// Each categorical column (increasing) and its categories (increasing).
    columns: Vec<(usize, Vec<f32>)>,
}

impl OneHot {
    /// Fits the categories of `columns` (positions among the features, from 0, e.g. from
    /// [`CsvData::feature_index`](super::CsvData::feature_index)) on the training `features`.
    ///
    /// # Shapes
    /// `features`: `(samples, features)`.
    ///
    /// # Errors
    /// Features that are not 2-D; a column out of range or given twice; a non-finite value
    /// in a categorical column.
    pub fn fit(features: &Tensor, columns: &[usize]) -> Result<Self> {
        let &[_, width] = features.shape() else {
            return Err(LayerError::Shape {
                layer: "one-hot".into(),
                expected: "(samples, features)".into(),
                actual: features.shape().to_vec(),
            });
        };
        let mut sorted = columns.to_vec();
        sorted.sort_unstable();
        if let Some(&column) = sorted.iter().find(|&&column| column >= width) {
            return Err(LayerError::Data(format!(
                "one-hot: column {column}: expected a column below the {width} features"
            )));
        }
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(LayerError::Data(format!("one-hot: column {} is given twice", pair[0])));
        }
        let mut fitted = Vec::with_capacity(sorted.len());
        for column in sorted {
            let mut categories: Vec<f32> =
                features.data().iter().skip(column).step_by(width).copied().collect();
            if let Some(value) = categories.iter().find(|value| !value.is_finite()) {
                return Err(LayerError::Data(format!(
                    "one-hot: column {column} holds {value}: expected finite category codes"
                )));
            }
            categories.sort_unstable_by(f32::total_cmp);
            categories.dedup();
            fitted.push((column, categories));
        }
        Ok(OneHot { width, columns: fitted })
    }

    /// The number of columns after encoding: the others plus one per category.
    pub fn output_width(&self) -> usize {
        self.width - self.columns.len()
            + self.columns.iter().map(|(_, categories)| categories.len()).sum::<usize>()
    }

    /// The categories of input column `column` in the order of its indicator columns, or
    /// `None` if it is not categorical.
    pub fn categories(&self, column: usize) -> Option<&[f32]> {
        self.columns.iter().find(|(c, _)| *c == column).map(|(_, categories)| categories.as_slice())
    }

    /// The encoded features.
    ///
    /// # Shapes
    /// `features`: `(samples, features)` with the fitted number of columns; returns
    /// `(samples, output_width)`.
    ///
    /// # Errors
    /// Another shape; a value in a categorical column that is not one of its training
    /// categories (naming the sample, the column and the categories).
    pub fn transform(&self, features: &Tensor) -> Result<Tensor> {
        let samples = match features.shape() {
            &[samples, width] if width == self.width => samples,
            shape => {
                return Err(LayerError::Shape {
                    layer: "one-hot".into(),
                    expected: format!("(samples, {}), as fitted", self.width),
                    actual: shape.to_vec(),
                })
            }
        };
        let mut out = Vec::with_capacity(samples * self.output_width());
        for (sample, row) in features.data().chunks_exact(self.width.max(1)).enumerate() {
            let mut categorical = self.columns.iter().peekable();
            for (column, &value) in row.iter().enumerate() {
                match categorical.next_if(|(c, _)| *c == column) {
                    None => out.push(value),
                    Some((_, categories)) => {
                        let hot =
                            categories.iter().position(|&category| category == value).ok_or_else(|| {
                                LayerError::Data(format!(
                                "one-hot: sample {sample}, column {column}: category {value} was not in the \
                                 training set: expected one of {categories:?}"
                            ))
                            })?;
                        out.extend((0..categories.len()).map(|i| f32::from(u8::from(i == hot))));
                    }
                }
            }
        }
        Tensor::from_vec(&[samples, self.output_width()], out)
    }
}
