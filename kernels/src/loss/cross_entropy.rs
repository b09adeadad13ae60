//! Fused losses on logits: softmax + cross-entropy (class-index or probability targets) and
//! sigmoid + binary cross-entropy. Forward returns the mean loss over the batch (PyTorch's
//! default `reduction='mean'`) and saves the probabilities; backward turns them into the
//! logit gradient of that mean in one pass (`(Ŷ - Y)/batch`), so the upstream gradient of
//! the loss is taken as 1 (scale `dlogits` for another).
//!
//! The batch sum runs over fixed chunks in a fixed tree ([`sum_over_chunks`]) and in `f64`,
//! so the loss is deterministic for a given thread count.

use super::sum::{sum_over_chunks, SUM_BLOCK};
use crate::activation::softmax::{
    check_matrix, for_each_row, row_chunk_len, row_map2, row_sum2, softmax_rows, RowOp,
};
use crate::error::{argument_error, check_len, shape_error, Result};
use crate::isa::current_isa;
use crate::parallel;
use crate::simd::math::{exp, ln_1p_unit};
use crate::simd::{
    dispatch, load_padded, map_binary, map_unary, store_partial, to_array, Kernel, Map2, Scale, SimdF32,
};

/// A mean needs at least one term.
fn check_nonempty(what: &str, n: usize) -> Result<()> {
    if n == 0 {
        Err(shape_error(what, format!("{what} >= 1 (the loss is a mean over it)"), n))
    } else {
        Ok(())
    }
}

/// Checks `(batch, classes)` (both `>= 1`) and that every class index is below `classes`.
fn check_class_targets(batch: usize, classes: usize, targets: &[u32]) -> Result<()> {
    check_nonempty("batch", batch)?;
    check_nonempty("classes", classes)?;
    check_len(|| format!("targets (batch) = ({batch})"), batch, targets.len())?;
    match targets.iter().position(|&t| t as usize >= classes) {
        Some(i) => Err(argument_error(
            format!("targets[{i}]"),
            format!("a class index < classes = {classes}"),
            targets[i],
        )),
        None => Ok(()),
    }
}

/// The loss of one row from its logits `x`, max and `Σ e^{x - max}`.
trait RowLoss: Sync {
    /// The loss of row `r`.
    fn loss<V: SimdF32>(&self, r: usize, x: &[f32], max: f32, sum: f32) -> f32;
}

/// The softmax and loss total of the rows of one parallel chunk, as a [`Kernel`].
struct SoftmaxLossChunk<'l, 'a, 'p, L> {
    loss: &'l L,
    classes: usize,
    first_row: usize,
    logits: &'a [f32],
    probs: &'p mut [f32],
}

impl<L: RowLoss> Kernel for SoftmaxLossChunk<'_, '_, '_, L> {
    type Output = f64;
    #[inline(always)]
    fn run<V: SimdF32>(self) -> f64 {
        let (classes, logits) = (self.classes, self.logits);
        let mut total = 0.0f64;
        softmax_rows::<V>(classes, logits, self.probs, |r, m, sum| {
            let x = &logits[r * classes..(r + 1) * classes];
            total += f64::from(self.loss.loss::<V>(self.first_row + r, x, m, sum));
        });
        total
    }
}

/// Writes the softmax of every row of `logits (batch, classes)` into `probs` and sums the
/// row losses over the batch, rows in parallel chunks.
fn sum_rows(classes: usize, logits: &[f32], probs: &mut [f32], loss: &impl RowLoss) -> f64 {
    let isa = current_isa();
    let chunk = row_chunk_len(probs.len(), classes);
    sum_over_chunks(probs, classes, chunk, 0, &|first_row, probs: &mut [f32]| {
        let logits = &logits[first_row * classes..first_row * classes + probs.len()];
        dispatch(isa, SoftmaxLossChunk { loss, classes, first_row, logits, probs })
    })
}

/// `(max - x_t) + ln Σ e^{x - max}` with class-index targets.
struct ClassTargets<'t>(&'t [u32]);

impl RowLoss for ClassTargets<'_> {
    #[inline(always)]
    fn loss<V: SimdF32>(&self, r: usize, x: &[f32], m: f32, sum: f32) -> f32 {
        (m - x[self.0[r] as usize]) + sum.ln()
    }
}

/// `Σ_j t_j·((max - x_j) + ln Σ e^{x - max})` with probability targets `(batch, classes)`.
struct SoftTargets<'t> {
    targets: &'t [f32],
    classes: usize,
}

impl RowLoss for SoftTargets<'_> {
    #[inline(always)]
    fn loss<V: SimdF32>(&self, r: usize, x: &[f32], m: f32, sum: f32) -> f32 {
        let (mv, ln_sum) = (V::splat(m), V::splat(sum.ln()));
        let t = &self.targets[r * self.classes..(r + 1) * self.classes];
        row_sum2(x, t, |x: V, t| t * ((mv - x) + ln_sum))
    }
}

/// `dlogits = (probs·Σ t - t)·inv` per row.
struct SoftTargetsBackward(f32);

impl RowOp for SoftTargetsBackward {
    #[inline(always)]
    fn row<V: SimdF32>(&self, p: &[f32], t: &[f32], dl: &mut [f32]) {
        let t_sum = V::splat(row_sum2(t, t, |t: V, _| t));
        let inv = V::splat(self.0);
        row_map2(p, t, dl, |p: V, t| (p * t_sum - t) * inv);
    }
}

/// Mean softmax cross-entropy with class-index targets (PyTorch's `CrossEntropyLoss`):
/// `loss = (1/batch)·Σ_r (ln Σ_k e^{x[r, k]} - x[r, targets[r]])`, computed as
/// `(max - x_t) + ln Σ e^{x - max}` so it stays finite for logits up to ±1e4.
///
/// `logits (batch, classes)`, `targets (batch)` class indices `< classes`,
/// `probs (batch, classes)` **overwritten** with the softmax, for the backward pass.
/// `batch` and `classes` must be `>= 1`; an out-of-range index is an error. NaN logits give a
/// NaN loss.
///
/// ```
/// use keel_kernels::loss::softmax_cross_entropy_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // logits, probs: (batch 2, classes 2); targets (2).
/// // Row 0: equal logits, loss ln 2. Row 1: the target's logit far ahead, loss 0.
/// let logits = [0.0, 0.0, 1000.0, 0.0];
/// let mut probs = [0.0; 4];
/// let loss = softmax_cross_entropy_forward(2, 2, &logits, &[1, 0], &mut probs)?;
/// assert!((loss - 2.0f32.ln() / 2.0).abs() < 1e-6);
/// assert_eq!(probs, [0.5, 0.5, 1.0, 0.0]);
/// // A class index must be below `classes`.
/// assert!(softmax_cross_entropy_forward(2, 2, &logits, &[2, 0], &mut probs).is_err());
/// # Ok(())
/// # }
/// ```
pub fn softmax_cross_entropy_forward(
    batch: usize,
    classes: usize,
    logits: &[f32],
    targets: &[u32],
    probs: &mut [f32],
) -> Result<f32> {
    check_class_targets(batch, classes, targets)?;
    check_matrix("logits", ("batch", "classes"), batch, classes, logits.len())?;
    check_matrix("probs", ("batch", "classes"), batch, classes, probs.len())?;
    let total = sum_rows(classes, logits, probs, &ClassTargets(targets));
    Ok((total / batch as f64) as f32)
}

/// `dlogits = (probs - onehot(targets))/batch`, the gradient of the mean loss of
/// [`softmax_cross_entropy_forward`] from its saved `probs`; `probs`, `dlogits`
/// `(batch, classes)`, `targets (batch)`; `dlogits` **overwritten**.
///
/// ```
/// use keel_kernels::loss::{softmax_cross_entropy_backward, softmax_cross_entropy_forward};
/// # fn main() -> keel_kernels::Result<()> {
/// // logits, probs, dlogits: (batch 2, classes 2); targets (2).
/// let (logits, targets) = ([0.0, 0.0, 1000.0, 0.0], [1, 0]);
/// let mut probs = [0.0; 4];
/// softmax_cross_entropy_forward(2, 2, &logits, &targets, &mut probs)?;
/// let mut dlogits = [0.0; 4];
/// softmax_cross_entropy_backward(2, 2, &probs, &targets, &mut dlogits)?;
/// // (probs - onehot) / batch: row 0 (0.5 - 0, 0.5 - 1)/2; row 1 is already right.
/// assert_eq!(dlogits, [0.25, -0.25, 0.0, 0.0]);
/// # Ok(())
/// # }
/// ```
pub fn softmax_cross_entropy_backward(
    batch: usize,
    classes: usize,
    probs: &[f32],
    targets: &[u32],
    dlogits: &mut [f32],
) -> Result<()> {
    check_class_targets(batch, classes, targets)?;
    check_matrix("probs", ("batch", "classes"), batch, classes, probs.len())?;
    check_matrix("dlogits", ("batch", "classes"), batch, classes, dlogits.len())?;
    let inv_batch = 1.0 / batch as f32;
    map_unary(current_isa(), probs, dlogits, &Scale(inv_batch));
    // The one-hot part touches one element per row.
    for (r, &t) in targets.iter().enumerate() {
        let i = r * classes + t as usize;
        dlogits[i] = (probs[i] - 1.0) * inv_batch;
    }
    Ok(())
}

/// Mean softmax cross-entropy with probability targets (PyTorch's `CrossEntropyLoss` given
/// class probabilities: soft labels, label smoothing, one-hot rows):
/// `loss = (1/batch)·Σ_r Σ_j t[r, j]·(ln Σ_k e^{x[r, k]} - x[r, j])`, each term computed as
/// `t·((max - x) + ln Σ e^{x - max})` (non-negative, no cancellation).
///
/// `logits`, `targets`, `probs`: `(batch, classes)`; `probs` **overwritten** with the
/// softmax. Targets are not checked to be a distribution (rows need not sum to 1, as in
/// PyTorch). `batch`, `classes` `>= 1`.
///
/// ```
/// use keel_kernels::loss::softmax_cross_entropy_soft_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // logits, targets, probs: (batch 1, classes 2). With equal logits every class has
/// // log-probability -ln 2, so any target row summing to 1 gives loss ln 2.
/// let mut probs = [0.0; 2];
/// let loss = softmax_cross_entropy_soft_forward(1, 2, &[3.0, 3.0], &[0.9, 0.1], &mut probs)?;
/// assert!((loss - 2.0f32.ln()).abs() < 1e-6);
/// assert_eq!(probs, [0.5, 0.5]);
/// # Ok(())
/// # }
/// ```
pub fn softmax_cross_entropy_soft_forward(
    batch: usize,
    classes: usize,
    logits: &[f32],
    targets: &[f32],
    probs: &mut [f32],
) -> Result<f32> {
    check_nonempty("batch", batch)?;
    check_nonempty("classes", classes)?;
    check_matrix("logits", ("batch", "classes"), batch, classes, logits.len())?;
    check_matrix("targets", ("batch", "classes"), batch, classes, targets.len())?;
    check_matrix("probs", ("batch", "classes"), batch, classes, probs.len())?;
    let total = sum_rows(classes, logits, probs, &SoftTargets { targets, classes });
    Ok((total / batch as f64) as f32)
}

/// `dlogits = (probs·Σ_j t[r, j] - targets)/batch` per row (`(probs - targets)/batch` when the
/// targets sum to 1), the gradient of [`softmax_cross_entropy_soft_forward`]'s mean loss from
/// its saved `probs`; all `(batch, classes)`, `dlogits` **overwritten**.
///
/// ```
/// use keel_kernels::loss::softmax_cross_entropy_soft_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // probs (saved by the forward), targets, dlogits: (batch 1, classes 2).
/// let mut dlogits = [0.0; 2];
/// softmax_cross_entropy_soft_backward(1, 2, &[0.5, 0.5], &[0.9, 0.1], &mut dlogits)?;
/// assert!((dlogits[0] + 0.4).abs() < 1e-6 && (dlogits[1] - 0.4).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn softmax_cross_entropy_soft_backward(
    batch: usize,
    classes: usize,
    probs: &[f32],
    targets: &[f32],
    dlogits: &mut [f32],
) -> Result<()> {
    check_nonempty("batch", batch)?;
    check_nonempty("classes", classes)?;
    check_matrix("probs", ("batch", "classes"), batch, classes, probs.len())?;
    check_matrix("targets", ("batch", "classes"), batch, classes, targets.len())?;
    check_matrix("dlogits", ("batch", "classes"), batch, classes, dlogits.len())?;
    for_each_row(probs, targets, dlogits, classes, &SoftTargetsBackward(1.0 / batch as f32));
    Ok(())
}

/// One BCE term and probability per lane, from `e = e^{-|z|}` (never overflows):
/// `loss = max(z, 0) - z·y + ln(1 + e)`, `σ(z) = 1/(1 + e)` for `z >= 0`, `e/(1 + e)` below.
#[inline(always)]
fn bce<V: SimdF32>(z: V, y: V) -> (V, V) {
    let (zero, one) = (V::splat(0.0), V::splat(1.0));
    let e = exp(-z.abs());
    let loss = z.max(zero) - z * y + ln_1p_unit(e);
    let p = V::select(z.lt(zero), e, one) / (one + e);
    (loss, p)
}

/// Writes `σ(z)` into `p` and returns `Σ loss` over one block.
#[inline(always)]
fn bce_block<V: SimdF32>(z: &[f32], y: &[f32], p: &mut [f32]) -> f32 {
    let mut acc = V::splat(0.0);
    let mut zs = z.chunks_exact(V::LANES);
    let mut ys = y.chunks_exact(V::LANES);
    let mut ps = p.chunks_exact_mut(V::LANES);
    for ((z, y), p) in (&mut zs).zip(&mut ys).zip(&mut ps) {
        let (loss, prob) = bce(V::load(z), V::load(y));
        acc = acc + loss;
        prob.store(p);
    }
    let (z, y, p) = (zs.remainder(), ys.remainder(), ps.into_remainder());
    let mut total = acc.reduce_add();
    if !z.is_empty() {
        let (loss, prob) = bce::<V>(load_padded(z, 0.0), load_padded(y, 0.0));
        store_partial(prob, p);
        // Padding lanes hold ln 2, not 0: add the real lanes only.
        total += to_array(loss)[..z.len()].iter().sum::<f32>();
    }
    total
}

/// The BCE blocks of one parallel chunk, as a [`Kernel`]: writes `σ(z)`, returns `Σ loss`
/// (block totals in `f64`).
struct BceChunk<'a, 'b> {
    z: &'a [f32],
    y: &'a [f32],
    p: &'b mut [f32],
}

impl Kernel for BceChunk<'_, '_> {
    type Output = f64;
    #[inline(always)]
    fn run<V: SimdF32>(self) -> f64 {
        let blocks = self.z.chunks(SUM_BLOCK).zip(self.y.chunks(SUM_BLOCK)).zip(self.p.chunks_mut(SUM_BLOCK));
        blocks.map(|((z, y), p)| f64::from(bce_block::<V>(z, y, p))).sum()
    }
}

/// `(p - y)·c`, the gradient of a mean loss from its saved probabilities.
struct ScaledDifference(f32);

impl Map2 for ScaledDifference {
    #[inline(always)]
    fn map<V: SimdF32>(&self, p: V, y: V) -> V {
        (p - y) * V::splat(self.0)
    }
}

/// Mean binary cross-entropy on logits (PyTorch's `BCEWithLogitsLoss`):
/// `loss = (1/n)·Σ_i max(z_i, 0) - z_i·y_i + ln(1 + e^{-|z_i|})`, the stable form of
/// `-(y·ln σ(z) + (1-y)·ln(1-σ(z)))` (finite for logits up to ±1e4 and beyond).
///
/// `logits`, `targets` (probabilities, usually 0 or 1; not range-checked, as in PyTorch)
/// and `probs` have the same length `n >= 1` (any shape flattened); `probs` **overwritten**
/// with `σ(z)` for the backward pass and for predictions. NaN logits give a NaN loss.
///
/// ```
/// use keel_kernels::loss::bce_with_logits_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // logits, targets, probs: (n 2). A logit of 0 costs ln 2 whatever the target; a huge
/// // logit with target 1 costs 0 (and no overflow).
/// let mut probs = [0.0; 2];
/// let loss = bce_with_logits_forward(&[0.0, 1e4], &[1.0, 1.0], &mut probs)?;
/// assert!((loss - 2.0f32.ln() / 2.0).abs() < 1e-6);
/// assert_eq!(probs, [0.5, 1.0]);
/// # Ok(())
/// # }
/// ```
pub fn bce_with_logits_forward(logits: &[f32], targets: &[f32], probs: &mut [f32]) -> Result<f32> {
    let n = logits.len();
    check_nonempty("n = logits.len()", n)?;
    check_len(|| "targets (same length as logits)".to_string(), n, targets.len())?;
    check_len(|| "probs (same length as logits)".to_string(), n, probs.len())?;
    let isa = current_isa();
    let chunk = parallel::chunk_len(n, SUM_BLOCK);
    let total = sum_over_chunks(probs, 1, chunk, 0, &|first, p: &mut [f32]| {
        let (z, y) = (&logits[first..first + p.len()], &targets[first..first + p.len()]);
        dispatch(isa, BceChunk { z, y, p })
    });
    Ok((total / n as f64) as f32)
}

/// `dlogits = (probs - targets)/n`, the gradient of [`bce_with_logits_forward`]'s mean loss
/// from its saved `probs = σ(z)`; all of length `n >= 1`, `dlogits` **overwritten**.
///
/// ```
/// use keel_kernels::loss::bce_with_logits_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // probs (saved by the forward), targets, dlogits: (n 2).
/// let mut dlogits = [0.0; 2];
/// bce_with_logits_backward(&[0.5, 1.0], &[1.0, 1.0], &mut dlogits)?;
/// assert_eq!(dlogits, [-0.25, 0.0]); // (0.5 - 1)/2, (1 - 1)/2
/// # Ok(())
/// # }
/// ```
pub fn bce_with_logits_backward(probs: &[f32], targets: &[f32], dlogits: &mut [f32]) -> Result<()> {
    let n = probs.len();
    check_nonempty("n = probs.len()", n)?;
    check_len(|| "targets (same length as probs)".to_string(), n, targets.len())?;
    check_len(|| "dlogits (same length as probs)".to_string(), n, dlogits.len())?;
    map_binary(current_isa(), probs, targets, dlogits, &ScaledDifference(1.0 / n as f32));
    Ok(())
}
