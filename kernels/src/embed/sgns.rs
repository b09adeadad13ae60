//! One step of word2vec's skip-gram with negative sampling (Mikolov et al. 2013, the SGD of
//! `word2vec.c`), for one group: a center word, its context word and `k` negatives.

use super::{check_indices, check_lr, check_row, dot, load_lanes, rows_of, store_lanes};
use crate::error::{shape_error, Result};
use crate::isa::current_isa;
use crate::simd::{dispatch, Kernel, SimdF32};

/// `σ(x) = 1/(1 + e⁻ˣ)`, the scalar the step and its reference share.
#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `ln(1 + eˣ)` without overflow: `-ln σ(-x)`, the loss of a score `x` the target says is 0.
#[inline(always)]
pub(super) fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The step on vectors `V` (see [`sgns_step`]).
struct SgnsKernel<'a> {
    center: &'a mut [f32],
    out: &'a mut [f32],
    targets: &'a [u32],
    lr: f32,
    work: &'a mut [f32],
}

impl Kernel for SgnsKernel<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<V: SimdF32>(self) -> f32 {
        let dim = self.center.len();
        self.work.fill(0.0);
        let mut loss = 0.0f32;
        for (k, &target) in self.targets.iter().enumerate() {
            let row = &mut self.out[target as usize * dim..][..dim];
            let score = dot::<V>(self.center, row);
            // The first target is the true context (label 1), the others negatives (label 0).
            let (label, row_loss) = if k == 0 { (1.0, softplus(-score)) } else { (0.0, softplus(score)) };
            loss += row_loss;
            let g = self.lr * (label - sigmoid(score));
            axpy_pair::<V>(g, self.center, row, self.work);
        }
        // The center vector moves once, by the sum over the group (word2vec.c's neu1e).
        let (mut cs, mut ws) = (self.center.chunks_mut(V::LANES), self.work.chunks(V::LANES));
        for (c, w) in (&mut cs).zip(&mut ws) {
            store_lanes(load_lanes::<V>(c) + load_lanes::<V>(w), c);
        }
        loss
    }
}

/// `work += g·row` and `row += g·center` in one pass, both from the old `row`.
#[inline(always)]
fn axpy_pair<V: SimdF32>(g: f32, center: &[f32], row: &mut [f32], work: &mut [f32]) {
    let gv = V::splat(g);
    for ((c, r), w) in center.chunks(V::LANES).zip(row.chunks_mut(V::LANES)).zip(work.chunks_mut(V::LANES)) {
        let (cv, rv, wv) = (load_lanes::<V>(c), load_lanes::<V>(r), load_lanes::<V>(w));
        store_lanes(gv.mul_add(rv, wv), w);
        store_lanes(gv.mul_add(cv, rv), r);
    }
}

/// One SGD step of skip-gram with negative sampling for a center word `v` (its input vector
/// `center`) and the output vectors of `targets`: first the true context word `u₀`, then
/// `k` negative samples `u₁..u_k`; returns the group's loss before the step,
///
/// ```text
/// L = -ln σ(u₀·v) - Σ_{j=1..k} ln σ(-u_j·v)
/// ```
///
/// and moves every vector by `-lr·∂L/∂·`, as `word2vec.c` does (with the exact sigmoid
/// where `word2vec.c` uses a table clipped at ±6): for each target `j` in order, with label
/// `t_j` (1 for `j = 0`, else 0) and `g_j = lr·(t_j - σ(u_j·v))`,
/// `work += g_j·u_j; u_j += g_j·v` (`u_j` updated before the next target reads it, so a
/// negative drawn twice moves twice), then `v += work`.
///
/// - `center` (dim): the row of the input matrix, **updated**;
/// - `out` (rows, dim): the output (context) matrix, the rows of `targets` **updated**;
/// - `targets` (1 + k >= 1): row indices of `out`;
/// - `work` (dim): scratch, **overwritten**.
///
/// Errors: `dim = center.len()` of 0, `out` not whole rows of `dim`, no target, a target
/// `>= rows` (naming its position and value), `work` of another length, `lr` negative or
/// not finite.
///
/// ```
/// use keel_kernels::embed::sgns_step;
/// # fn main() -> keel_kernels::Result<()> {
/// // center (dim 2); out (rows 3, dim 2); targets: context word 1, then negative 2.
/// let mut center = [1.0, 0.0];
/// let mut out = [0.0; 6];
/// let mut work = [0.0; 2];
/// let loss = sgns_step(&mut center, &mut out, &[1, 2], 1.0, &mut work)?;
/// // Both scores are 0: loss -ln σ(0) - ln σ(-0) = 2·ln 2. The context row moves toward
/// // the center by lr·(1 - σ(0))·v, the negative away by lr·σ(0)·v; row 0 is untouched.
/// assert!((loss - 2.0 * 2.0f32.ln()).abs() < 1e-6);
/// assert_eq!(out, [0.0, 0.0, 0.5, 0.0, -0.5, 0.0]);
/// // The same group again costs less.
/// assert!(sgns_step(&mut center, &mut out, &[1, 2], 1.0, &mut work)? < loss);
/// # Ok(())
/// # }
/// ```
pub fn sgns_step(
    center: &mut [f32],
    out: &mut [f32],
    targets: &[u32],
    lr: f32,
    work: &mut [f32],
) -> Result<f32> {
    let dim = center.len();
    let rows = rows_of("out", out.len(), dim)?;
    if targets.is_empty() {
        return Err(shape_error("targets.len()", "1 + k >= 1 (the context word, then k negatives)", 0));
    }
    check_indices("targets", targets, rows)?;
    check_row("work", dim, work.len())?;
    check_lr(lr)?;
    Ok(dispatch(current_isa(), SgnsKernel { center, out, targets, lr, work }))
}
