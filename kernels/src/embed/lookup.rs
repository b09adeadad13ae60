//! The table lookup of an embedding layer (PyTorch's `nn.Embedding`) and its gradient.

use super::{check_indices, rows_of};
use crate::error::{argument_error, check_len, Result};

/// Gathers rows: `out[p] = weight[indices[p]]` for every position `p`.
///
/// - `weight` (num_embeddings, dim) row-major, `dim >= 1`; `indices` (n), each
///   `< num_embeddings`; `out` (n, dim): **overwritten**.
///
/// Errors: `dim = 0`, `weight` not whole rows, an index out of range (naming its position
/// and value), `out` of another length than `n·dim`.
///
/// ```
/// use keel_kernels::embed::embedding_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // weight (num_embeddings 3, dim 2), indices (n 3), out (n 3, dim 2).
/// let weight = [0.0, 1.0, 10.0, 11.0, 20.0, 21.0];
/// let mut out = [0.0; 6];
/// embedding_forward(&weight, 2, &[2, 0, 2], &mut out)?;
/// assert_eq!(out, [20.0, 21.0, 0.0, 1.0, 20.0, 21.0]);
/// // An index past the table is an error.
/// assert!(embedding_forward(&weight, 2, &[3, 0, 0], &mut out).is_err());
/// # Ok(())
/// # }
/// ```
pub fn embedding_forward(weight: &[f32], dim: usize, indices: &[u32], out: &mut [f32]) -> Result<()> {
    let rows = rows_of("weight", weight.len(), dim)?;
    check_indices("indices", indices, rows)?;
    check_len(|| format!("out (n, dim) = ({}, {dim})", indices.len()), indices.len() * dim, out.len())?;
    for (&index, out) in indices.iter().zip(out.chunks_exact_mut(dim)) {
        out.copy_from_slice(&weight[index as usize * dim..][..dim]);
    }
    Ok(())
}

/// Scatters the output gradient back into the table: `dweight[indices[p]] += dout[p]` for
/// every position `p` whose index is not `padding_idx` (the padding row never gets a
/// gradient, as in PyTorch). Rows not indexed are left as they are.
///
/// - `indices` (n); `dout` (n, dim); `dweight` (num_embeddings, dim): **accumulated**.
///
/// Positions are added in order, so a row indexed twice gets the sum in a fixed order.
/// Errors: `dim = 0`, `dweight` not whole rows, an index or `padding_idx` out of range,
/// `dout` of another length than `n·dim`.
///
/// ```
/// use keel_kernels::embed::embedding_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // indices (n 3), dout (n 3, dim 2), dweight (num_embeddings 3, dim 2); row 0 is padding.
/// let dout = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let mut dweight = [0.0, 0.0, 0.5, 0.5, 0.0, 0.0];
/// embedding_backward(&[2, 0, 2], &dout, 2, Some(0), &mut dweight)?;
/// // Row 2 sums positions 0 and 2; row 0 (padding) gets nothing; row 1 keeps its value.
/// assert_eq!(dweight, [0.0, 0.0, 0.5, 0.5, 6.0, 8.0]);
/// # Ok(())
/// # }
/// ```
pub fn embedding_backward(
    indices: &[u32],
    dout: &[f32],
    dim: usize,
    padding_idx: Option<u32>,
    dweight: &mut [f32],
) -> Result<()> {
    let rows = rows_of("dweight", dweight.len(), dim)?;
    check_indices("indices", indices, rows)?;
    check_len(|| format!("dout (n, dim) = ({}, {dim})", indices.len()), indices.len() * dim, dout.len())?;
    if let Some(padding) = padding_idx.filter(|&p| p as usize >= rows) {
        return Err(argument_error("padding_idx", format!("< {rows} (the rows of the table)"), padding));
    }
    for (&index, dout) in indices.iter().zip(dout.chunks_exact(dim)) {
        if Some(index) != padding_idx {
            let row = &mut dweight[index as usize * dim..][..dim];
            row.iter_mut().zip(dout).for_each(|(w, &g)| *w += g);
        }
    }
    Ok(())
}
