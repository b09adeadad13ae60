//! Images run in parallel: the batch cut into runs of images, one workspace slot each, and
//! the per-slot partial gradients added up in slot order.

use super::shape::Conv2dShape;
use crate::error::Result;
use crate::parallel::{current_num_threads, MIN_PARALLEL_MULADDS};

/// Slots worth running: one per thread (at most one per image) when the whole pass has
/// enough multiply-adds to pay for the split, else 1.
pub(super) fn wanted_slots(shape: &Conv2dShape) -> usize {
    let threads = current_num_threads();
    if shape.n < 2 || threads < 2 || shape.muladds() < MIN_PARALLEL_MULADDS {
        1
    } else {
        shape.n.min(threads)
    }
}

/// Images per slot, given a workspace of `workspace_len` and slots of `slot_len` floats.
/// With `per` images per slot there are `n.div_ceil(per)` slots, none of them empty.
pub(super) fn images_per_slot(shape: &Conv2dShape, workspace_len: usize, slot_len: usize) -> usize {
    let fit = workspace_len.checked_div(slot_len).unwrap_or(usize::MAX);
    let slots = wanted_slots(shape).min(fit).max(1);
    shape.n.div_ceil(slots).max(1)
}

/// Runs `task(first_image, images, out, slot)` over the batch `first..first + images`, in
/// runs of `per` images: each run gets its own part of `out` (`out_image` floats per image)
/// and its own `slot_len` floats of `scratch`. Runs execute in parallel (halving with
/// `rayon::join`); the caller sized `scratch` for `images.div_ceil(per)` slots.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_slots<F>(
    first: usize,
    images: usize,
    per: usize,
    out: &mut [f32],
    out_image: usize,
    scratch: &mut [f32],
    slot_len: usize,
    task: &F,
) -> Result<()>
where
    F: Fn(usize, usize, &mut [f32], &mut [f32]) -> Result<()> + Sync,
{
    if images <= per {
        return task(first, images, out, &mut scratch[..slot_len]);
    }
    let left_slots = images.div_ceil(per) / 2;
    let left = left_slots * per;
    let (out_left, out_right) = out.split_at_mut(left * out_image);
    let (scratch_left, scratch_right) = scratch.split_at_mut(left_slots * slot_len);
    let (a, b) = rayon::join(
        || run_slots(first, left, per, out_left, out_image, scratch_left, slot_len, task),
        || run_slots(first + left, images - left, per, out_right, out_image, scratch_right, slot_len, task),
    );
    a.and(b)
}

/// Adds each slot's partial gradients (`dweight`'s length, then `dbias`'s, at the start of
/// each item) to `dweight` and `dbias`, in slot order: the rounding then depends on the slot
/// count, never on which thread finished first.
pub(super) fn add_slot_partials<'a>(
    partials: impl Iterator<Item = &'a [f32]>,
    dweight: &mut [f32],
    mut dbias: Option<&mut [f32]>,
) {
    for partial in partials {
        let (pw, pb) = partial.split_at(dweight.len());
        add_into(dweight, pw);
        if let Some(dbias) = dbias.as_deref_mut() {
            add_into(dbias, &pb[..dbias.len()]);
        }
    }
}

fn add_into(acc: &mut [f32], part: &[f32]) {
    for (a, &p) in acc.iter_mut().zip(part) {
        *a += p;
    }
}
