//! The LSTM cell half: gate pre-activations to `(c', h')` and back, one fused pass per row.

use super::rows::{lane_blocks, run_rows, CellRow};
use super::{check_matrix, product, LSTM_CACHE_WIDTH, LSTM_GATES};
use crate::error::Result;
use crate::simd::math::{sigmoid_gate, tanh_gate};
use crate::simd::SimdF32;

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
/// where `i, f, o = σ(·)` and `g = tanh(·)` of their pre-activations (each within 4 ulp:
/// a reciprocal estimate refined by a Newton step stands in for the divisions, see
/// `simd::math::sigmoid_gate`). `batch = 0` or
/// `hidden = 0` is a no-op. Errors name the first slice whose length does not match.
///
/// ```
/// use keel_kernels::rnn::lstm_cell_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // gates_preact (batch 1, 4·hidden 4), c_prev, c_next, h_next (1, 1), cache (1, 5).
/// // Zero pre-activations: i = f = o = σ(0) = 0.5, g = tanh(0) = 0.
/// let (mut c_next, mut h_next, mut cache) = ([0.0], [0.0], [0.0; 5]);
/// lstm_cell_forward(1, 1, &[0.0; 4], &[2.0], &mut c_next, &mut h_next, &mut cache)?;
/// let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
/// assert!(close(c_next[0], 1.0)); // f·c + i·g = 0.5·2 + 0.5·0
/// assert!(close(h_next[0], 0.5 * 1.0f32.tanh())); // o·tanh(c')
/// let expected = [0.5, 0.5, 0.0, 0.5, 1.0f32.tanh()]; // [i | f | g | o | tanh(c')]
/// assert!(cache.iter().zip(&expected).all(|(&a, &b)| close(a, b)));
/// # Ok(())
/// # }
/// ```
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
    let shape = (batch, hidden, gate_width * super::GATE_FORWARD_COST);
    run_rows(
        &Forward,
        shape,
        [(gates_preact, LSTM_GATES), (c_prev, 1)],
        [(c_next, 1), (h_next, 1), (cache, LSTM_CACHE_WIDTH)],
    );
    Ok(())
}

/// One row of [`lstm_cell_forward`].
struct Forward;

impl CellRow<2, 3> for Forward {
    #[inline(always)]
    fn row<V: SimdF32>(
        &self,
        hidden: usize,
        [pre, c_prev]: [&[f32]; 2],
        [c_next, h_next, cache]: [&mut [f32]; 3],
    ) {
        // Two passes with short dependency chains, so that the core overlaps many
        // independent vectors: the gates into the cache, then the state from the cache (in L1).
        let (pre_if, rest) = pre.split_at(2 * hidden);
        let (pre_g, pre_o) = rest.split_at(hidden);
        let (cache_if, rest) = cache.split_at_mut(2 * hidden);
        let (cache_g, rest) = rest.split_at_mut(hidden);
        let (cache_o, cache_tanh_c) = rest.split_at_mut(hidden);
        for j in lane_blocks(2 * hidden, V::LANES) {
            sigmoid_gate(V::load(&pre_if[j..])).store(&mut cache_if[j..]);
        }
        for j in lane_blocks(hidden, V::LANES) {
            tanh_gate(V::load(&pre_g[j..])).store(&mut cache_g[j..]);
            sigmoid_gate(V::load(&pre_o[j..])).store(&mut cache_o[j..]);
        }
        let (cache_i, cache_f) = cache_if.split_at(hidden);
        for j in lane_blocks(hidden, V::LANES) {
            // c' = f⊙c + i⊙g,  h' = o⊙tanh(c').
            let (i, f) = (V::load(&cache_i[j..]), V::load(&cache_f[j..]));
            let c = f.mul_add(V::load(&c_prev[j..]), i * V::load(&cache_g[j..]));
            let tanh_c = tanh_gate(c);
            c.store(&mut c_next[j..]);
            (V::load(&cache_o[j..]) * tanh_c).store(&mut h_next[j..]);
            tanh_c.store(&mut cache_tanh_c[j..]);
        }
    }
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
///
/// ```
/// use keel_kernels::rnn::{lstm_cell_backward, lstm_cell_forward};
///
/// /// h' of one LSTM cell (batch 1, hidden 1) from its gates_preact (1, 4) and c_prev.
/// fn h_next(gates: &[f32], c_prev: f32) -> keel_kernels::Result<f32> {
///     let (mut c, mut h, mut cache) = ([0.0], [0.0], [0.0; 5]);
///     lstm_cell_forward(1, 1, gates, &[c_prev], &mut c, &mut h, &mut cache)?;
///     Ok(h[0])
/// }
/// # fn main() -> keel_kernels::Result<()> {
/// let (gates, c_prev) = ([0.5, -0.3, 0.8, 0.1], 2.0);
/// let (mut c, mut h, mut cache) = ([0.0], [0.0], [0.0; 5]);
/// lstm_cell_forward(1, 1, &gates, &[c_prev], &mut c, &mut h, &mut cache)?;
/// // Backward from dL/dh' = 1 (L = h'), no dL/dc': dgates (1, 4), dc_prev (1, 1).
/// let (mut dgates, mut dc_prev) = ([0.0; 4], [0.0]);
/// lstm_cell_backward(1, 1, &cache, &[c_prev], &[1.0], None, &mut dgates, &mut dc_prev)?;
/// // Each matches a central difference of h'.
/// let eps = 1e-2;
/// for j in 0..4 {
///     let (mut up, mut down) = (gates, gates);
///     (up[j], down[j]) = (gates[j] + eps, gates[j] - eps);
///     let slope = (h_next(&up, c_prev)? - h_next(&down, c_prev)?) / (2.0 * eps);
///     assert!((dgates[j] - slope).abs() < 1e-3);
/// }
/// let slope = (h_next(&gates, c_prev + eps)? - h_next(&gates, c_prev - eps)?) / (2.0 * eps);
/// assert!((dc_prev[0] - slope).abs() < 1e-3);
/// # Ok(())
/// # }
/// ```
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
    // An absent dc' is an empty input, which the row body reads as zero.
    let dc_next = dc_next.unwrap_or(&[]);
    run_rows(
        &Backward,
        (batch, hidden, gate_width),
        [(cache, LSTM_CACHE_WIDTH), (c_prev, 1), (dh_next, 1), (dc_next, 1)],
        [(dgates, LSTM_GATES), (dc_prev, 1)],
    );
    Ok(())
}

/// One row of [`lstm_cell_backward`].
struct Backward;

impl CellRow<4, 2> for Backward {
    #[inline(always)]
    fn row<V: SimdF32>(
        &self,
        hidden: usize,
        [cache, c_prev, dh_next, dc_next]: [&[f32]; 4],
        [dgates, dc_prev]: [&mut [f32]; 2],
    ) {
        let (i_all, rest) = cache.split_at(hidden);
        let (f_all, rest) = rest.split_at(hidden);
        let (g_all, rest) = rest.split_at(hidden);
        let (o_all, tanh_c_all) = rest.split_at(hidden);
        let (d_i, rest) = dgates.split_at_mut(hidden);
        let (d_f, rest) = rest.split_at_mut(hidden);
        let (d_g, d_o) = rest.split_at_mut(hidden);
        let one = V::splat(1.0);
        for j in lane_blocks(hidden, V::LANES) {
            let i = V::load(&i_all[j..]);
            let f = V::load(&f_all[j..]);
            let g = V::load(&g_all[j..]);
            let o = V::load(&o_all[j..]);
            let tanh_c = V::load(&tanh_c_all[j..]);
            let dh = V::load(&dh_next[j..]);
            // dc = dc' + dh'⊙o⊙(1 - tanh²(c')): the direct path plus the path through h'.
            let dc_direct = if dc_next.is_empty() { V::splat(0.0) } else { V::load(&dc_next[j..]) };
            let dc = (dh * o).mul_add(one - tanh_c * tanh_c, dc_direct);
            // Each gate's gradient times its activation's derivative (σ' = s(1-s), tanh' = 1-t²).
            (dc * g * i * (one - i)).store(&mut d_i[j..]);
            (dc * V::load(&c_prev[j..]) * f * (one - f)).store(&mut d_f[j..]);
            (dc * i * (one - g * g)).store(&mut d_g[j..]);
            (dh * tanh_c * o * (one - o)).store(&mut d_o[j..]);
            (dc * f).store(&mut dc_prev[j..]);
        }
    }
}
