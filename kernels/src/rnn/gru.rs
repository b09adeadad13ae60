//! The GRU cell half: input and hidden pre-activations to `h'` and back, one fused pass per
//! row.

use rayon::prelude::*;
use wide::f32x8;

use super::rows::{
    for_lane_blocks, load, narrow, rows_per_task, store, widen, FORWARD_COST, LANES, WIDE_ZEROS,
};
use super::{check_matrix, product, GRU_CACHE_WIDTH, GRU_GATES};
use crate::error::Result;
use crate::simd::math::{sigmoid, tanh};

/// GRU cell forward from the two pre-activation blocks, one pass over them.
///
/// - `gi` `(batch, 3·hidden)`: `x·W_ihᵀ + b_ih`, gate blocks r, z, n along each row; read only;
/// - `gh` `(batch, 3·hidden)`: `h·W_hhᵀ + b_hh`, same layout (both e.g. from
///   [`super::gru_preact_forward`]); read only;
/// - `h_prev` `(batch, hidden)`: the previous hidden state; read only;
/// - `h_next` `(batch, hidden)`: **overwritten** with `h' = (1 - z)⊙n + z⊙h`;
/// - `cache` `(batch, 4·hidden)`: **overwritten** with `[r | z | n | gh_n]` per row, what
///   [`gru_cell_backward`] needs;
///
/// where `r = σ(gi_r + gh_r)`, `z = σ(gi_z + gh_z)`, `n = tanh(gi_n + r⊙gh_n)`.
/// `batch = 0` or `hidden = 0` is a no-op. Errors name the first slice whose length does
/// not match.
pub fn gru_cell_forward(
    batch: usize,
    hidden: usize,
    gi: &[f32],
    gh: &[f32],
    h_prev: &[f32],
    h_next: &mut [f32],
    cache: &mut [f32],
) -> Result<()> {
    let gate_width = product("3·hidden", GRU_GATES, hidden)?;
    let cache_width = product("4·hidden", GRU_CACHE_WIDTH, hidden)?;
    check_matrix("gi", "(batch, 3·hidden)", batch, gate_width, gi.len())?;
    check_matrix("gh", "(batch, 3·hidden)", batch, gate_width, gh.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("h_next", "(batch, hidden)", batch, hidden, h_next.len())?;
    check_matrix("cache", "(batch, 4·hidden)", batch, cache_width, cache.len())?;
    if batch == 0 || hidden == 0 {
        return Ok(());
    }
    let rows = rows_per_task(batch, gate_width * FORWARD_COST);
    let task = |gi: &[f32], gh: &[f32], h_prev: &[f32], h_next: &mut [f32], cache: &mut [f32]| {
        let rows = gi
            .chunks_exact(gate_width)
            .zip(gh.chunks_exact(gate_width))
            .zip(h_prev.chunks_exact(hidden))
            .zip(h_next.chunks_exact_mut(hidden))
            .zip(cache.chunks_exact_mut(cache_width));
        for ((((gi, gh), h_prev), h_next), cache) in rows {
            forward_row(gi, gh, h_prev, h_next, cache);
        }
    };
    if rows >= batch {
        task(gi, gh, h_prev, h_next, cache);
    } else {
        (
            gi.par_chunks(rows * gate_width),
            gh.par_chunks(rows * gate_width),
            h_prev.par_chunks(rows * hidden),
            h_next.par_chunks_mut(rows * hidden),
            cache.par_chunks_mut(rows * cache_width),
        )
            .into_par_iter()
            .for_each(|(gi, gh, h_prev, h_next, cache)| task(gi, gh, h_prev, h_next, cache));
    }
    Ok(())
}

/// One batch row of [`gru_cell_forward`]; `h_prev.len()` is `hidden`.
#[inline]
fn forward_row(gi: &[f32], gh: &[f32], h_prev: &[f32], h_next: &mut [f32], cache: &mut [f32]) {
    let hidden = h_prev.len();
    if hidden < LANES {
        // Narrower than a vector: run the row padded to one vector per gate block.
        let [mut h, mut saved] = [WIDE_ZEROS; 2];
        let (gi_wide, gh_wide, h_prev_wide) = (widen(gi, hidden), widen(gh, hidden), widen(h_prev, hidden));
        forward_row(
            &gi_wide[..3 * LANES],
            &gh_wide[..3 * LANES],
            &h_prev_wide[..LANES],
            &mut h[..LANES],
            &mut saved[..4 * LANES],
        );
        narrow(&h, hidden, h_next);
        narrow(&saved, hidden, cache);
        return;
    }
    let (gi_r, rest) = gi.split_at(hidden);
    let (gi_z, gi_n) = rest.split_at(hidden);
    let (gh_r, rest) = gh.split_at(hidden);
    let (gh_z, gh_n) = rest.split_at(hidden);
    let (cache_r, rest) = cache.split_at_mut(hidden);
    let (cache_z, rest) = rest.split_at_mut(hidden);
    let (cache_n, cache_gh_n) = rest.split_at_mut(hidden);
    for_lane_blocks(hidden, |j| {
        let r = sigmoid(load(&gi_r[j..]) + load(&gh_r[j..]));
        let z = sigmoid(load(&gi_z[j..]) + load(&gh_z[j..]));
        let hidden_n = load(&gh_n[j..]);
        let n = tanh(r.mul_add(hidden_n, load(&gi_n[j..])));
        // h' = (1 - z)⊙n + z⊙h = n + z⊙(h - n).
        let h = load(&h_prev[j..]);
        store(z.mul_add(h - n, n), &mut h_next[j..]);
        store(r, &mut cache_r[j..]);
        store(z, &mut cache_z[j..]);
        store(n, &mut cache_n[j..]);
        store(hidden_n, &mut cache_gh_n[j..]);
    });
}

/// GRU cell backward to the two pre-activation blocks, one pass over the cache.
///
/// - `cache` `(batch, 4·hidden)`: written by [`gru_cell_forward`]; read only;
/// - `h_prev` `(batch, hidden)`: the `h_prev` given to that forward call; read only;
/// - `dh_next` `(batch, hidden)`: `∂L/∂h'`; read only;
/// - `dgi` `(batch, 3·hidden)`: **overwritten** with `∂L/∂gi`, blocks r, z, n;
/// - `dgh` `(batch, 3·hidden)`: **overwritten** with `∂L/∂gh`, blocks r, z, n;
/// - `dh_prev` `(batch, hidden)`: **overwritten** with `z⊙dh'` only, the part of `∂L/∂h` that
///   bypasses the weights; [`super::gru_preact_backward`] then adds the part `dgh·W_hh`.
///
/// With `dn = dh'⊙(1-z)⊙(1-n²)` (the gradient at n's pre-activation) and
/// `dz = dh'⊙(h-n)⊙z(1-z)`, `dr = dn⊙gh_n⊙r(1-r)`:
/// `dgi = [dr | dz | dn]`, `dgh = [dr | dz | dn⊙r]`.
/// `batch = 0` or `hidden = 0` is a no-op. Errors name the first slice whose length does
/// not match.
#[allow(clippy::too_many_arguments)]
pub fn gru_cell_backward(
    batch: usize,
    hidden: usize,
    cache: &[f32],
    h_prev: &[f32],
    dh_next: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    dh_prev: &mut [f32],
) -> Result<()> {
    let gate_width = product("3·hidden", GRU_GATES, hidden)?;
    let cache_width = product("4·hidden", GRU_CACHE_WIDTH, hidden)?;
    check_matrix("cache", "(batch, 4·hidden)", batch, cache_width, cache.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("dh_next", "(batch, hidden)", batch, hidden, dh_next.len())?;
    check_matrix("dgi", "(batch, 3·hidden)", batch, gate_width, dgi.len())?;
    check_matrix("dgh", "(batch, 3·hidden)", batch, gate_width, dgh.len())?;
    check_matrix("dh_prev", "(batch, hidden)", batch, hidden, dh_prev.len())?;
    if batch == 0 || hidden == 0 {
        return Ok(());
    }
    let rows = rows_per_task(batch, gate_width);
    let task = |cache: &[f32],
                h_prev: &[f32],
                dh_next: &[f32],
                dgi: &mut [f32],
                dgh: &mut [f32],
                dh_prev: &mut [f32]| {
        let rows = cache
            .chunks_exact(cache_width)
            .zip(h_prev.chunks_exact(hidden))
            .zip(dh_next.chunks_exact(hidden))
            .zip(dgi.chunks_exact_mut(gate_width))
            .zip(dgh.chunks_exact_mut(gate_width))
            .zip(dh_prev.chunks_exact_mut(hidden));
        for (((((cache, h_prev), dh_next), dgi), dgh), dh_prev) in rows {
            backward_row(cache, h_prev, dh_next, dgi, dgh, dh_prev);
        }
    };
    if rows >= batch {
        task(cache, h_prev, dh_next, dgi, dgh, dh_prev);
    } else {
        (
            cache.par_chunks(rows * cache_width),
            h_prev.par_chunks(rows * hidden),
            dh_next.par_chunks(rows * hidden),
            dgi.par_chunks_mut(rows * gate_width),
            dgh.par_chunks_mut(rows * gate_width),
            dh_prev.par_chunks_mut(rows * hidden),
        )
            .into_par_iter()
            .for_each(|(cache, h_prev, dh_next, dgi, dgh, dh_prev)| {
                task(cache, h_prev, dh_next, dgi, dgh, dh_prev)
            });
    }
    Ok(())
}

/// One batch row of [`gru_cell_backward`]; `h_prev.len()` is `hidden`.
#[inline]
fn backward_row(
    cache: &[f32],
    h_prev: &[f32],
    dh_next: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    dh_prev: &mut [f32],
) {
    let hidden = h_prev.len();
    if hidden < LANES {
        // Narrower than a vector: run the row padded to one vector per gate block.
        let [mut d_i, mut d_h, mut d_prev] = [WIDE_ZEROS; 3];
        let (cache_wide, h_prev_wide, dh_wide) =
            (widen(cache, hidden), widen(h_prev, hidden), widen(dh_next, hidden));
        backward_row(
            &cache_wide[..4 * LANES],
            &h_prev_wide[..LANES],
            &dh_wide[..LANES],
            &mut d_i[..3 * LANES],
            &mut d_h[..3 * LANES],
            &mut d_prev[..LANES],
        );
        narrow(&d_i, hidden, dgi);
        narrow(&d_h, hidden, dgh);
        narrow(&d_prev, hidden, dh_prev);
        return;
    }
    let (r_all, rest) = cache.split_at(hidden);
    let (z_all, rest) = rest.split_at(hidden);
    let (n_all, gh_n_all) = rest.split_at(hidden);
    let (dgi_r, rest) = dgi.split_at_mut(hidden);
    let (dgi_z, dgi_n) = rest.split_at_mut(hidden);
    let (dgh_r, rest) = dgh.split_at_mut(hidden);
    let (dgh_z, dgh_n) = rest.split_at_mut(hidden);
    let one = f32x8::ONE;
    for_lane_blocks(hidden, |j| {
        let r = load(&r_all[j..]);
        let z = load(&z_all[j..]);
        let n = load(&n_all[j..]);
        let dh = load(&dh_next[j..]);
        // h' = n + z⊙(h - n): ∂h'/∂n = 1 - z, ∂h'/∂z = h - n, ∂h'/∂h = z (direct part).
        let d_n = dh * (one - z) * (one - n * n);
        let d_z = dh * (load(&h_prev[j..]) - n) * z * (one - z);
        // n's pre-activation is gi_n + r⊙gh_n: ∂/∂r = gh_n, ∂/∂gh_n = r.
        let d_r = d_n * load(&gh_n_all[j..]) * r * (one - r);
        store(d_r, &mut dgi_r[j..]);
        store(d_z, &mut dgi_z[j..]);
        store(d_n, &mut dgi_n[j..]);
        store(d_r, &mut dgh_r[j..]);
        store(d_z, &mut dgh_z[j..]);
        store(d_n * r, &mut dgh_n[j..]);
        store(z * dh, &mut dh_prev[j..]);
    });
}
