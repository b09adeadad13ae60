//! Word-embedding kernels: the table lookup of an `Embedding` layer and its gradient, the
//! training steps of word2vec (skip-gram with negative sampling) and GloVe, and cosine
//! similarity of one vector against every row of a matrix (nearest neighbours, analogies).
//!
//! | kernel | what | reference |
//! | --- | --- | --- |
//! | [`embedding_forward`] | `out[p] = weight[indices[p]]` (PyTorch's `nn.Embedding`) | [`reference::embedding_forward`] |
//! | [`embedding_backward`] | `dweight[indices[p]] += dout[p]`, padding row skipped | [`reference::embedding_backward`] |
//! | [`sgns_step`] | one (center, context, negatives) group of word2vec's SGD | [`reference::sgns_step`] |
//! | [`glove_step`] | one co-occurrence entry of GloVe's AdaGrad | [`reference::glove_step`] |
//! | [`cosine_similarity`] | `cos(query, row)` for every row | [`reference::cosine_similarity`] |
//!
//! The vector loops (dot products and the fused updates) are written once over
//! [`crate::simd`]'s vector trait and run on the instruction set of
//! [`current_isa`](crate::isa::current_isa), resolved once per call. Dot products sum in
//! vector lanes with fused multiply-adds, so results agree with the scalar references to
//! rounding (not bit for bit) and differ across instruction sets in the last bits; for a
//! given instruction set they are the same on every run and at every thread count.
//! The lookup and its gradient are row copies and row sums, which the compiler vectorises.

mod cosine;
mod glove;
mod lookup;
pub mod reference;
mod sgns;

pub use cosine::cosine_similarity;
pub use glove::{glove_step, GloveConfig};
pub use lookup::{embedding_backward, embedding_forward};
pub use sgns::sgns_step;

use crate::error::{argument_error, check_len, shape_error, Result};
use crate::simd::{store_partial, SimdF32};

/// `Σ a[e]·b[e]` in vector lanes (fused multiply-adds; the tail through a masked load).
#[inline(always)]
fn dot<V: SimdF32>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = V::splat(0.0);
    let (mut ac, mut bc) = (a.chunks_exact(V::LANES), b.chunks_exact(V::LANES));
    for (x, y) in (&mut ac).zip(&mut bc) {
        acc = V::load(x).mul_add(V::load(y), acc);
    }
    let (ra, rb) = (ac.remainder(), bc.remainder());
    if !ra.is_empty() {
        acc = V::load_prefix(ra).mul_add(V::load_prefix(rb), acc);
    }
    acc.reduce_add()
}

/// Loads `s` (at most `V::LANES` values): a plain load when it is a whole vector, else a
/// masked load with zeros in the missing lanes.
#[inline(always)]
fn load_lanes<V: SimdF32>(s: &[f32]) -> V {
    if s.len() == V::LANES {
        V::load(s)
    } else {
        V::load_prefix(s)
    }
}

/// Stores `v` into `s`: whole when `s` holds `V::LANES` values, else its first lanes.
#[inline(always)]
fn store_lanes<V: SimdF32>(v: V, s: &mut [f32]) {
    if s.len() == V::LANES {
        v.store(s);
    } else {
        store_partial(v, s);
    }
}

/// Checks that `matrix` holds whole rows of `dim >= 1` values; returns the row count.
fn rows_of(what: &str, matrix_len: usize, dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(shape_error("dim", "dim >= 1", dim));
    }
    if !matrix_len.is_multiple_of(dim) {
        return Err(shape_error(
            format!("{what}.len()"),
            format!("a multiple of dim = {dim} (whole rows)"),
            matrix_len,
        ));
    }
    Ok(matrix_len / dim)
}

/// Checks that every index is a row of a `rows`-row matrix: the first that is not is an
/// argument error naming its position and value.
fn check_indices(what: &str, indices: &[u32], rows: usize) -> Result<()> {
    match indices.iter().position(|&i| i as usize >= rows) {
        None => Ok(()),
        Some(position) => Err(argument_error(
            format!("{what}[{position}]"),
            format!("an index < {rows} (the rows of the table)"),
            indices[position],
        )),
    }
}

/// Checks a learning rate: finite and `>= 0`.
fn check_lr(lr: f32) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(argument_error("lr", "a finite lr >= 0", lr))
    }
}

/// Checks that `work` (or another per-row buffer) holds `dim` values.
fn check_row(what: &str, dim: usize, len: usize) -> Result<()> {
    check_len(|| format!("{what} (dim = {dim})"), dim, len)
}
