//! The LSTM cell half: gate pre-activations to `(c', h')` and back, one fused pass per row.

use rayon::prelude::*;
use wide::f32x8;

use super::rows::{
    for_lane_blocks, load, narrow, rows_per_task, store, widen, FORWARD_COST, LANES, WIDE_ZEROS,
};
use super::{check_matrix, product, LSTM_CACHE_WIDTH, LSTM_GATES};
use crate::error::Result;
use crate::simd::math::{sigmoid, tanh};

/// LSTM cell forward from the gate pre-activations, one pass over the gate block.
///
/// - `gates_preact` `(batch, 4·hidden)`: `x·W_ihᵀ + h·W_hhᵀ + b_ih + b_hh`, gate blocks
///   i, f, g, o along each row (e.g. from [`super::lstm_preact_forward`]); read only;
/// - `c_prev` `(batch, hidden)`: the previous cell state; read only;
/// - `c_next` `(batch, hidden)`: **overwritten** with `c' = f⊙c + i⊙g`;
/// - `h_next` `(batch, hidden)`: **overwritten** with `h' = o⊙tanh(c')`;
/// - `cache` `(batch, 5·hidden)`: **overwritten** with `[i | f | g | o | tanh(c')]` per row
///   (activated gates), what [`lstm_cell_backward`] needs.
///
/// where `i, f, o = σ(·)` and `g = tanh(·)` of their pre-activations. `batch = 0` or
/// `hidden = 0` is a no-op. Errors name the first slice whose length does not match.
pub fn lstm_cell_forward(
    batch: usize,
    hidden: usize,
    gates_preact: &[f32],
    c_prev: &[f32],
    c_next: &mut [f32],
    h_next: &mut [f32],
    cache: &mut [f32],
) -> Result<()> {
    let gate_width = product("4·hidden", LSTM_GATES, hidden)?;
    let cache_width = product("5·hidden", LSTM_CACHE_WIDTH, hidden)?;
    check_matrix("gates_preact", "(batch, 4·hidden)", batch, gate_width, gates_preact.len())?;
    check_matrix("c_prev", "(batch, hidden)", batch, hidden, c_prev.len())?;
    check_matrix("c_next", "(batch, hidden)", batch, hidden, c_next.len())?;
    check_matrix("h_next", "(batch, hidden)", batch, hidden, h_next.len())?;
    check_matrix("cache", "(batch, 5·hidden)", batch, cache_width, cache.len())?;
    if batch == 0 || hidden == 0 {
        return Ok(());
    }
    let rows = rows_per_task(batch, gate_width * FORWARD_COST);
    let task =
        |gates_preact: &[f32], c_prev: &[f32], c_next: &mut [f32], h_next: &mut [f32], cache: &mut [f32]| {
            let rows = gates_preact
                .chunks_exact(gate_width)
                .zip(c_prev.chunks_exact(hidden))
                .zip(c_next.chunks_exact_mut(hidden))
                .zip(h_next.chunks_exact_mut(hidden))
                .zip(cache.chunks_exact_mut(cache_width));
            for ((((pre, c_prev), c_next), h_next), cache) in rows {
                forward_row(pre, c_prev, c_next, h_next, cache);
            }
        };
    if rows >= batch {
        task(gates_preact, c_prev, c_next, h_next, cache);
    } else {
        (
            gates_preact.par_chunks(rows * gate_width),
            c_prev.par_chunks(rows * hidden),
            c_next.par_chunks_mut(rows * hidden),
            h_next.par_chunks_mut(rows * hidden),
            cache.par_chunks_mut(rows * cache_width),
        )
            .into_par_iter()
            .for_each(|(pre, c_prev, c_next, h_next, cache)| task(pre, c_prev, c_next, h_next, cache));
    }
    Ok(())
}

/// One batch row of [`lstm_cell_forward`]; `c_prev.len()` is `hidden`.
#[inline]
fn forward_row(pre: &[f32], c_prev: &[f32], c_next: &mut [f32], h_next: &mut [f32], cache: &mut [f32]) {
    let hidden = c_prev.len();
    if hidden < LANES {
        // Narrower than a vector: run the row padded to one vector per gate block.
        let [mut c, mut h, mut saved] = [WIDE_ZEROS; 3];
        let (pre_wide, c_prev_wide) = (widen(pre, hidden), widen(c_prev, hidden));
        forward_row(
            &pre_wide[..4 * LANES],
            &c_prev_wide[..LANES],
            &mut c[..LANES],
            &mut h[..LANES],
            &mut saved,
        );
        narrow(&c, hidden, c_next);
        narrow(&h, hidden, h_next);
        narrow(&saved, hidden, cache);
        return;
    }
    let (pre_i, rest) = pre.split_at(hidden);
    let (pre_f, rest) = rest.split_at(hidden);
    let (pre_g, pre_o) = rest.split_at(hidden);
    let (cache_i, rest) = cache.split_at_mut(hidden);
    let (cache_f, rest) = rest.split_at_mut(hidden);
    let (cache_g, rest) = rest.split_at_mut(hidden);
    let (cache_o, cache_tanh_c) = rest.split_at_mut(hidden);
    for_lane_blocks(hidden, |j| {
        let i = sigmoid(load(&pre_i[j..]));
        let f = sigmoid(load(&pre_f[j..]));
        let g = tanh(load(&pre_g[j..]));
        let o = sigmoid(load(&pre_o[j..]));
        // c' = f⊙c + i⊙g,  h' = o⊙tanh(c').
        let c = f.mul_add(load(&c_prev[j..]), i * g);
        let tanh_c = tanh(c);
        store(c, &mut c_next[j..]);
        store(o * tanh_c, &mut h_next[j..]);
        store(i, &mut cache_i[j..]);
        store(f, &mut cache_f[j..]);
        store(g, &mut cache_g[j..]);
        store(o, &mut cache_o[j..]);
        store(tanh_c, &mut cache_tanh_c[j..]);
    });
}

/// LSTM cell backward to the gate pre-activations, one pass over the cache.
///
/// - `cache` `(batch, 5·hidden)`: written by [`lstm_cell_forward`]; read only;
/// - `c_prev` `(batch, hidden)`: the `c_prev` given to that forward call; read only;
/// - `dh_next` `(batch, hidden)`: `∂L/∂h'`; read only;
/// - `dc_next` `(batch, hidden)`: `∂L/∂c'` from the next step, `None` for zero (last step);
/// - `dgates` `(batch, 4·hidden)`: **overwritten** with `∂L/∂gates_preact`, blocks i, f, g, o;
///   feed it to [`super::lstm_preact_backward`];
/// - `dc_prev` `(batch, hidden)`: **overwritten** with `∂L/∂c = dc⊙f`.
///
/// With `dc = dc' + dh'⊙o⊙(1 - tanh²(c'))`: `dgates_i = dc⊙g⊙i(1-i)`,
/// `dgates_f = dc⊙c⊙f(1-f)`, `dgates_g = dc⊙i⊙(1-g²)`, `dgates_o = dh'⊙tanh(c')⊙o(1-o)`.
/// `batch = 0` or `hidden = 0` is a no-op. Errors name the first slice whose length does
/// not match.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_backward(
    batch: usize,
    hidden: usize,
    cache: &[f32],
    c_prev: &[f32],
    dh_next: &[f32],
    dc_next: Option<&[f32]>,
    dgates: &mut [f32],
    dc_prev: &mut [f32],
) -> Result<()> {
    let gate_width = product("4·hidden", LSTM_GATES, hidden)?;
    let cache_width = product("5·hidden", LSTM_CACHE_WIDTH, hidden)?;
    check_matrix("cache", "(batch, 5·hidden)", batch, cache_width, cache.len())?;
    check_matrix("c_prev", "(batch, hidden)", batch, hidden, c_prev.len())?;
    check_matrix("dh_next", "(batch, hidden)", batch, hidden, dh_next.len())?;
    if let Some(dc_next) = dc_next {
        check_matrix("dc_next", "(batch, hidden)", batch, hidden, dc_next.len())?;
    }
    check_matrix("dgates", "(batch, 4·hidden)", batch, gate_width, dgates.len())?;
    check_matrix("dc_prev", "(batch, hidden)", batch, hidden, dc_prev.len())?;
    if batch == 0 || hidden == 0 {
        return Ok(());
    }
    let rows = rows_per_task(batch, gate_width);
    let task = |first_row: usize,
                cache: &[f32],
                c_prev: &[f32],
                dh_next: &[f32],
                dgates: &mut [f32],
                dc_prev: &mut [f32]| {
        let rows = cache
            .chunks_exact(cache_width)
            .zip(c_prev.chunks_exact(hidden))
            .zip(dh_next.chunks_exact(hidden))
            .zip(dgates.chunks_exact_mut(gate_width))
            .zip(dc_prev.chunks_exact_mut(hidden));
        for (row, ((((cache, c_prev), dh_next), dgates), dc_prev)) in rows.enumerate() {
            let start = (first_row + row) * hidden;
            let dc_next = dc_next.map(|dc_next| &dc_next[start..start + hidden]);
            backward_row(cache, c_prev, dh_next, dc_next, dgates, dc_prev);
        }
    };
    if rows >= batch {
        task(0, cache, c_prev, dh_next, dgates, dc_prev);
    } else {
        (
            cache.par_chunks(rows * cache_width),
            c_prev.par_chunks(rows * hidden),
            dh_next.par_chunks(rows * hidden),
            dgates.par_chunks_mut(rows * gate_width),
            dc_prev.par_chunks_mut(rows * hidden),
        )
            .into_par_iter()
            .enumerate()
            .for_each(|(index, (cache, c_prev, dh_next, dgates, dc_prev))| {
                task(index * rows, cache, c_prev, dh_next, dgates, dc_prev)
            });
    }
    Ok(())
}

/// One batch row of [`lstm_cell_backward`]; `c_prev.len()` is `hidden`.
#[inline]
fn backward_row(
    cache: &[f32],
    c_prev: &[f32],
    dh_next: &[f32],
    dc_next: Option<&[f32]>,
    dgates: &mut [f32],
    dc_prev: &mut [f32],
) {
    let hidden = c_prev.len();
    if hidden < LANES {
        // Narrower than a vector: run the row padded to one vector per gate block.
        let [mut d_pre, mut d_c] = [WIDE_ZEROS; 2];
        let (cache_wide, c_prev_wide, dh_wide) =
            (widen(cache, hidden), widen(c_prev, hidden), widen(dh_next, hidden));
        let dc_wide = dc_next.map(|dc_next| widen(dc_next, hidden));
        let dc_wide = dc_wide.as_ref().map(|dc| &dc[..LANES]);
        backward_row(
            &cache_wide,
            &c_prev_wide[..LANES],
            &dh_wide[..LANES],
            dc_wide,
            &mut d_pre[..4 * LANES],
            &mut d_c[..LANES],
        );
        narrow(&d_pre, hidden, dgates);
        narrow(&d_c, hidden, dc_prev);
        return;
    }
    let (i_all, rest) = cache.split_at(hidden);
    let (f_all, rest) = rest.split_at(hidden);
    let (g_all, rest) = rest.split_at(hidden);
    let (o_all, tanh_c_all) = rest.split_at(hidden);
    let (d_i, rest) = dgates.split_at_mut(hidden);
    let (d_f, rest) = rest.split_at_mut(hidden);
    let (d_g, d_o) = rest.split_at_mut(hidden);
    let one = f32x8::ONE;
    for_lane_blocks(hidden, |j| {
        let i = load(&i_all[j..]);
        let f = load(&f_all[j..]);
        let g = load(&g_all[j..]);
        let o = load(&o_all[j..]);
        let tanh_c = load(&tanh_c_all[j..]);
        let dh = load(&dh_next[j..]);
        // dc = dc' + dh'⊙o⊙(1 - tanh²(c')): the direct path plus the path through h'.
        let dc_direct = dc_next.map_or(f32x8::ZERO, |dc_next| load(&dc_next[j..]));
        let dc = (dh * o).mul_add(one - tanh_c * tanh_c, dc_direct);
        // Each gate's gradient times its activation's derivative (σ' = s(1-s), tanh' = 1-t²).
        store(dc * g * i * (one - i), &mut d_i[j..]);
        store(dc * load(&c_prev[j..]) * f * (one - f), &mut d_f[j..]);
        store(dc * i * (one - g * g), &mut d_g[j..]);
        store(dh * tanh_c * o * (one - o), &mut d_o[j..]);
        store(dc * f, &mut dc_prev[j..]);
    });
}
