//! The batch sums of the losses: chunk totals added in a fixed tree, so that a loss is
//! deterministic for a given thread count.

/// Elements of an element-wise loss (MSE, BCE) summed in `f32` lanes before the running
/// total takes them in `f64`.
pub(crate) const SUM_BLOCK: usize = 1024;

/// Runs `f(first_item, out_chunk)` over `out` (items of `width` values) cut into chunks of
/// `chunk` values (a multiple of `width`), and sums what the calls return.
///
/// The chunks are summed in a fixed binary tree: each level splits the chunk list in half
/// and joins the halves with `rayon::join`. Chunk boundaries and split points depend only on
/// the length and `chunk` (which depends on the thread count), never on scheduling, so the
/// total is deterministic for a given thread count, unlike a rayon `sum()`.
pub(crate) fn sum_over_chunks<F>(out: &mut [f32], width: usize, chunk: usize, first_item: usize, f: &F) -> f64
where
    F: Fn(usize, &mut [f32]) -> f64 + Sync,
{
    if out.len() <= chunk {
        return f(first_item, out);
    }
    let mid = out.len().div_ceil(chunk) / 2 * chunk;
    let (left, right) = out.split_at_mut(mid);
    let (a, b) = rayon::join(
        || sum_over_chunks(left, width, chunk, first_item, f),
        || sum_over_chunks(right, width, chunk, first_item + mid / width, f),
    );
    a + b
}
