//! The LSTM cell half: gate pre-activations to `(c', h')` and back, one fused pass per row.

use rayon::prelude::*;

use super::rows::{for_lane_blocks, narrow, rows_per_task, widen, FORWARD_COST, WIDE_ZEROS};
use super::{check_matrix, product, LSTM_CACHE_WIDTH, LSTM_GATES};
use crate::error::Result;
use crate::simd::math::{sigmoid, tanh};
use crate::simd::{current_isa, dispatch, Kernel, SimdF32};

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
    let (rows, isa) = (rows_per_task(batch, gate_width * FORWARD_COST), current_isa());
    let task = |pre: &[f32], c_prev: &[f32], c_next: &mut [f32], h_next: &mut [f32], cache: &mut [f32]| {
        dispatch(isa, ForwardRows { hidden, pre, c_prev, c_next, h_next, cache })
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

/// The rows of one task of [`lstm_cell_forward`] (`c_prev` of them), as a [`Kernel`].
struct ForwardRows<'a, 'o> {
    hidden: usize,
    pre: &'a [f32],
    c_prev: &'a [f32],
    c_next: &'o mut [f32],
    h_next: &'o mut [f32],
    cache: &'o mut [f32],
}

impl Kernel for ForwardRows<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        let hidden = self.hidden;
        let rows = self
            .pre
            .chunks_exact(LSTM_GATES * hidden)
            .zip(self.c_prev.chunks_exact(hidden))
            .zip(self.c_next.chunks_exact_mut(hidden))
            .zip(self.h_next.chunks_exact_mut(hidden))
            .zip(self.cache.chunks_exact_mut(LSTM_CACHE_WIDTH * hidden));
        for ((((pre, c_prev), c_next), h_next), cache) in rows {
            forward_row::<V>(pre, c_prev, c_next, h_next, cache);
        }
    }
}

/// One batch row of [`lstm_cell_forward`]; `c_prev.len()` is `hidden`.
#[inline(always)]
fn forward_row<V: SimdF32>(
    pre: &[f32],
    c_prev: &[f32],
    c_next: &mut [f32],
    h_next: &mut [f32],
    cache: &mut [f32],
) {
    let (hidden, lanes) = (c_prev.len(), V::LANES);
    if hidden < lanes {
        // Narrower than a vector: run the row padded to one vector per gate block.
        let [mut c, mut h, mut saved] = [WIDE_ZEROS; 3];
        let (pre_wide, c_prev_wide) = (widen(pre, hidden, lanes), widen(c_prev, hidden, lanes));
        forward_blocks::<V>(
            &pre_wide[..4 * lanes],
            &c_prev_wide[..lanes],
            &mut c[..lanes],
            &mut h[..lanes],
            &mut saved[..5 * lanes],
        );
        narrow(&c, hidden, lanes, c_next);
        narrow(&h, hidden, lanes, h_next);
        narrow(&saved, hidden, lanes, cache);
    } else {
        forward_blocks::<V>(pre, c_prev, c_next, h_next, cache);
    }
}

/// [`forward_row`] on a row at least one vector wide.
#[inline(always)]
fn forward_blocks<V: SimdF32>(
    pre: &[f32],
    c_prev: &[f32],
    c_next: &mut [f32],
    h_next: &mut [f32],
    cache: &mut [f32],
) {
    let hidden = c_prev.len();
    let (pre_i, rest) = pre.split_at(hidden);
    let (pre_f, rest) = rest.split_at(hidden);
    let (pre_g, pre_o) = rest.split_at(hidden);
    let (cache_i, rest) = cache.split_at_mut(hidden);
    let (cache_f, rest) = rest.split_at_mut(hidden);
    let (cache_g, rest) = rest.split_at_mut(hidden);
    let (cache_o, cache_tanh_c) = rest.split_at_mut(hidden);
    for_lane_blocks(hidden, V::LANES, |j| {
        let i = sigmoid(V::load(&pre_i[j..]));
        let f = sigmoid(V::load(&pre_f[j..]));
        let g = tanh(V::load(&pre_g[j..]));
        let o = sigmoid(V::load(&pre_o[j..]));
        // c' = f⊙c + i⊙g,  h' = o⊙tanh(c').
        let c = f.mul_add(V::load(&c_prev[j..]), i * g);
        let tanh_c = tanh(c);
        c.store(&mut c_next[j..]);
        (o * tanh_c).store(&mut h_next[j..]);
        i.store(&mut cache_i[j..]);
        f.store(&mut cache_f[j..]);
        g.store(&mut cache_g[j..]);
        o.store(&mut cache_o[j..]);
        tanh_c.store(&mut cache_tanh_c[j..]);
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
    let (rows, isa) = (rows_per_task(batch, gate_width), current_isa());
    let task = |first_row: usize,
                cache: &[f32],
                c_prev: &[f32],
                dh_next: &[f32],
                dgates: &mut [f32],
                dc_prev: &mut [f32]| {
        let dc_next = dc_next.map(|dc_next| &dc_next[first_row * hidden..first_row * hidden + c_prev.len()]);
        dispatch(isa, BackwardRows { hidden, cache, c_prev, dh_next, dc_next, dgates, dc_prev })
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

/// The rows of one task of [`lstm_cell_backward`] (`c_prev` of them, `dc_next` the same
/// rows of it), as a [`Kernel`].
struct BackwardRows<'a, 'o> {
    hidden: usize,
    cache: &'a [f32],
    c_prev: &'a [f32],
    dh_next: &'a [f32],
    dc_next: Option<&'a [f32]>,
    dgates: &'o mut [f32],
    dc_prev: &'o mut [f32],
}

impl Kernel for BackwardRows<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        let hidden = self.hidden;
        let rows = self
            .cache
            .chunks_exact(LSTM_CACHE_WIDTH * hidden)
            .zip(self.c_prev.chunks_exact(hidden))
            .zip(self.dh_next.chunks_exact(hidden))
            .zip(self.dgates.chunks_exact_mut(LSTM_GATES * hidden))
            .zip(self.dc_prev.chunks_exact_mut(hidden));
        for (row, ((((cache, c_prev), dh_next), dgates), dc_prev)) in rows.enumerate() {
            let dc_next = self.dc_next.map(|dc_next| &dc_next[row * hidden..(row + 1) * hidden]);
            backward_row::<V>(cache, c_prev, dh_next, dc_next, dgates, dc_prev);
        }
    }
}

/// One batch row of [`lstm_cell_backward`]; `c_prev.len()` is `hidden`.
#[inline(always)]
fn backward_row<V: SimdF32>(
    cache: &[f32],
    c_prev: &[f32],
    dh_next: &[f32],
    dc_next: Option<&[f32]>,
    dgates: &mut [f32],
    dc_prev: &mut [f32],
) {
    let (hidden, lanes) = (c_prev.len(), V::LANES);
    if hidden < lanes {
        // Narrower than a vector: run the row padded to one vector per gate block.
        let [mut d_pre, mut d_c] = [WIDE_ZEROS; 2];
        let (cache_wide, c_prev_wide, dh_wide) =
            (widen(cache, hidden, lanes), widen(c_prev, hidden, lanes), widen(dh_next, hidden, lanes));
        let dc_wide = dc_next.map(|dc_next| widen(dc_next, hidden, lanes));
        let dc_wide = dc_wide.as_ref().map(|dc| &dc[..lanes]);
        backward_blocks::<V>(
            &cache_wide[..5 * lanes],
            &c_prev_wide[..lanes],
            &dh_wide[..lanes],
            dc_wide,
            &mut d_pre[..4 * lanes],
            &mut d_c[..lanes],
        );
        narrow(&d_pre, hidden, lanes, dgates);
        narrow(&d_c, hidden, lanes, dc_prev);
    } else {
        backward_blocks::<V>(cache, c_prev, dh_next, dc_next, dgates, dc_prev);
    }
}

/// [`backward_row`] on a row at least one vector wide.
#[inline(always)]
fn backward_blocks<V: SimdF32>(
    cache: &[f32],
    c_prev: &[f32],
    dh_next: &[f32],
    dc_next: Option<&[f32]>,
    dgates: &mut [f32],
    dc_prev: &mut [f32],
) {
    let hidden = c_prev.len();
    let (i_all, rest) = cache.split_at(hidden);
    let (f_all, rest) = rest.split_at(hidden);
    let (g_all, rest) = rest.split_at(hidden);
    let (o_all, tanh_c_all) = rest.split_at(hidden);
    let (d_i, rest) = dgates.split_at_mut(hidden);
    let (d_f, rest) = rest.split_at_mut(hidden);
    let (d_g, d_o) = rest.split_at_mut(hidden);
    let one = V::splat(1.0);
    for_lane_blocks(hidden, V::LANES, |j| {
        let i = V::load(&i_all[j..]);
        let f = V::load(&f_all[j..]);
        let g = V::load(&g_all[j..]);
        let o = V::load(&o_all[j..]);
        let tanh_c = V::load(&tanh_c_all[j..]);
        let dh = V::load(&dh_next[j..]);
        // dc = dc' + dh'⊙o⊙(1 - tanh²(c')): the direct path plus the path through h'.
        let dc_direct = dc_next.map_or(V::splat(0.0), |dc_next| V::load(&dc_next[j..]));
        let dc = (dh * o).mul_add(one - tanh_c * tanh_c, dc_direct);
        // Each gate's gradient times its activation's derivative (σ' = s(1-s), tanh' = 1-t²).
        (dc * g * i * (one - i)).store(&mut d_i[j..]);
        (dc * V::load(&c_prev[j..]) * f * (one - f)).store(&mut d_f[j..]);
        (dc * i * (one - g * g)).store(&mut d_g[j..]);
        (dh * tanh_c * o * (one - o)).store(&mut d_o[j..]);
        (dc * f).store(&mut dc_prev[j..]);
    });
}
