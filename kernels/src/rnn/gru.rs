//! The GRU cell half: input and hidden pre-activations to `h'` and back, one fused pass per
//! row.

use super::rows::{lane_blocks, run_rows, CellRow};
use super::{check_matrix, product, GRU_CACHE_WIDTH, GRU_GATES};
use crate::error::Result;
use crate::simd::math::{sigmoid_gate, tanh_gate};
use crate::simd::SimdF32;

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
/// where `r = σ(gi_r + gh_r)`, `z = σ(gi_z + gh_z)`, `n = tanh(gi_n + r⊙gh_n)` (each within 4
/// ulp, as for [`super::lstm_cell_forward`]).
/// `batch = 0` or `hidden = 0` is a no-op. Errors name the first slice whose length does
/// not match.
///
/// ```
/// use keel_kernels::rnn::gru_cell_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // gi, gh (batch 1, 3·hidden 3); h_prev, h_next (1, 1); cache (1, 4).
/// // Zero pre-activations: r = z = σ(0) = 0.5, n = tanh(0) = 0, so h' = 0.5·h.
/// let (mut h_next, mut cache) = ([0.0], [0.0; 4]);
/// gru_cell_forward(1, 1, &[0.0; 3], &[0.0; 3], &[1.0], &mut h_next, &mut cache)?;
/// assert!((h_next[0] - 0.5).abs() < 1e-6);
/// let expected = [0.5, 0.5, 0.0, 0.0]; // [r | z | n | gh_n]
/// assert!(cache.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-6));
/// # Ok(())
/// # }
/// ```
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
    let shape = (batch, hidden, gate_width * super::GATE_FORWARD_COST);
    run_rows(
        &Forward,
        shape,
        [(gi, GRU_GATES), (gh, GRU_GATES), (h_prev, 1)],
        [(h_next, 1), (cache, GRU_CACHE_WIDTH)],
    );
    Ok(())
}

/// One row of [`gru_cell_forward`].
struct Forward;

impl CellRow<3, 2> for Forward {
    #[inline(always)]
    fn row<V: SimdF32>(
        &self,
        hidden: usize,
        [gi, gh, h_prev]: [&[f32]; 3],
        [h_next, cache]: [&mut [f32]; 2],
    ) {
        // Two passes with short dependency chains, so that the core overlaps many
        // independent vectors: r and z into the cache, then n and h' (r and z read from L1).
        let (gi_rz, gi_n) = gi.split_at(2 * hidden);
        let (gh_rz, gh_n) = gh.split_at(2 * hidden);
        let (cache_rz, rest) = cache.split_at_mut(2 * hidden);
        let (cache_n, cache_gh_n) = rest.split_at_mut(hidden);
        for j in lane_blocks(2 * hidden, V::LANES) {
            sigmoid_gate(V::load(&gi_rz[j..]) + V::load(&gh_rz[j..])).store(&mut cache_rz[j..]);
        }
        let (cache_r, cache_z) = cache_rz.split_at(hidden);
        for j in lane_blocks(hidden, V::LANES) {
            let hidden_n = V::load(&gh_n[j..]);
            let n = tanh_gate(V::load(&cache_r[j..]).mul_add(hidden_n, V::load(&gi_n[j..])));
            // h' = (1 - z)⊙n + z⊙h = n + z⊙(h - n).
            let h = V::load(&h_prev[j..]);
            V::load(&cache_z[j..]).mul_add(h - n, n).store(&mut h_next[j..]);
            n.store(&mut cache_n[j..]);
            hidden_n.store(&mut cache_gh_n[j..]);
        }
    }
}

/// GRU cell backward to the two pre-activation blocks, one pass over the cache.
///
/// - `cache` `(batch, 4·hidden)`: written by [`gru_cell_forward`]; read only;
/// - `h_prev` `(batch, hidden)`: the `h_prev` given to that forward call; read only;
/// - `dh_next` `(batch, hidden)`: `∂L/∂h'`; read only;
/// - `dgi` `(batch, 3·hidden)`: **overwritten** with `∂L/∂gi`, blocks r, z, n;
/// - `dgh` `(batch, 3·hidden)`: **overwritten** with `∂L/∂gh`, blocks r, z, n;
/// - `dh_direct` `(batch, hidden)`: **overwritten** with `z⊙dh'`, the part of `∂L/∂h` that
///   bypasses the weights; [`super::gru_preact_backward`] reads it and writes the whole
///   `dh_prev = dh_direct + dgh·W_hh`.
///
/// With `dn = dh'⊙(1-z)⊙(1-n²)` (the gradient at n's pre-activation) and
/// `dz = dh'⊙(h-n)⊙z(1-z)`, `dr = dn⊙gh_n⊙r(1-r)`:
/// `dgi = [dr | dz | dn]`, `dgh = [dr | dz | dn⊙r]`.
/// `batch = 0` or `hidden = 0` is a no-op. Errors name the first slice whose length does
/// not match.
///
/// ```
/// use keel_kernels::rnn::{gru_cell_backward, gru_cell_forward};
///
/// /// h' of one GRU cell (batch 1, hidden 1) from gi, gh (1, 3) and h_prev.
/// fn h_next(gi: &[f32], gh: &[f32], h_prev: f32) -> keel_kernels::Result<f32> {
///     let (mut h, mut cache) = ([0.0], [0.0; 4]);
///     gru_cell_forward(1, 1, gi, gh, &[h_prev], &mut h, &mut cache)?;
///     Ok(h[0])
/// }
/// # fn main() -> keel_kernels::Result<()> {
/// let (gi, gh, h_prev) = ([0.4, -0.2, 0.7], [0.1, 0.3, -0.5], 0.6);
/// let (mut h, mut cache) = ([0.0], [0.0; 4]);
/// gru_cell_forward(1, 1, &gi, &gh, &[h_prev], &mut h, &mut cache)?;
/// // Backward from dL/dh' = 1 (L = h'): dgi, dgh (1, 3), dh_direct (1, 1).
/// let (mut dgi, mut dgh, mut dh_direct) = ([0.0; 3], [0.0; 3], [0.0]);
/// gru_cell_backward(1, 1, &cache, &[h_prev], &[1.0], &mut dgi, &mut dgh, &mut dh_direct)?;
/// // Each matches a central difference of h' (dh_direct: h_prev moved with gi, gh held).
/// let eps = 1e-2;
/// let close = |grad: f32, up: f32, down: f32| (grad - (up - down) / (2.0 * eps)).abs() < 1e-3;
/// for j in 0..3 {
///     let (mut up, mut down) = (gi, gi);
///     (up[j], down[j]) = (gi[j] + eps, gi[j] - eps);
///     assert!(close(dgi[j], h_next(&up, &gh, h_prev)?, h_next(&down, &gh, h_prev)?));
///     let (mut up, mut down) = (gh, gh);
///     (up[j], down[j]) = (gh[j] + eps, gh[j] - eps);
///     assert!(close(dgh[j], h_next(&gi, &up, h_prev)?, h_next(&gi, &down, h_prev)?));
/// }
/// assert!(close(dh_direct[0], h_next(&gi, &gh, h_prev + eps)?, h_next(&gi, &gh, h_prev - eps)?));
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn gru_cell_backward(
    batch: usize,
    hidden: usize,
    cache: &[f32],
    h_prev: &[f32],
    dh_next: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    dh_direct: &mut [f32],
) -> Result<()> {
    let gate_width = product("3·hidden", GRU_GATES, hidden)?;
    let cache_width = product("4·hidden", GRU_CACHE_WIDTH, hidden)?;
    check_matrix("cache", "(batch, 4·hidden)", batch, cache_width, cache.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("dh_next", "(batch, hidden)", batch, hidden, dh_next.len())?;
    check_matrix("dgi", "(batch, 3·hidden)", batch, gate_width, dgi.len())?;
    check_matrix("dgh", "(batch, 3·hidden)", batch, gate_width, dgh.len())?;
    check_matrix("dh_direct", "(batch, hidden)", batch, hidden, dh_direct.len())?;
    if batch == 0 || hidden == 0 {
        return Ok(());
    }
    run_rows(
        &Backward,
        (batch, hidden, gate_width),
        [(cache, GRU_CACHE_WIDTH), (h_prev, 1), (dh_next, 1)],
        [(dgi, GRU_GATES), (dgh, GRU_GATES), (dh_direct, 1)],
    );
    Ok(())
}

/// One row of [`gru_cell_backward`].
struct Backward;

impl CellRow<3, 3> for Backward {
    #[inline(always)]
    fn row<V: SimdF32>(
        &self,
        hidden: usize,
        [cache, h_prev, dh_next]: [&[f32]; 3],
        [dgi, dgh, dh_direct]: [&mut [f32]; 3],
    ) {
        let (r_all, rest) = cache.split_at(hidden);
        let (z_all, rest) = rest.split_at(hidden);
        let (n_all, gh_n_all) = rest.split_at(hidden);
        let (dgi_r, rest) = dgi.split_at_mut(hidden);
        let (dgi_z, dgi_n) = rest.split_at_mut(hidden);
        let (dgh_r, rest) = dgh.split_at_mut(hidden);
        let (dgh_z, dgh_n) = rest.split_at_mut(hidden);
        let one = V::splat(1.0);
        for j in lane_blocks(hidden, V::LANES) {
            let r = V::load(&r_all[j..]);
            let z = V::load(&z_all[j..]);
            let n = V::load(&n_all[j..]);
            let dh = V::load(&dh_next[j..]);
            // h' = n + z⊙(h - n): ∂h'/∂n = 1 - z, ∂h'/∂z = h - n, ∂h'/∂h = z (direct part).
            let d_n = dh * (one - z) * (one - n * n);
            let d_z = dh * (V::load(&h_prev[j..]) - n) * z * (one - z);
            // n's pre-activation is gi_n + r⊙gh_n: ∂/∂r = gh_n, ∂/∂gh_n = r.
            let d_r = d_n * V::load(&gh_n_all[j..]) * r * (one - r);
            d_r.store(&mut dgi_r[j..]);
            d_z.store(&mut dgi_z[j..]);
            d_n.store(&mut dgi_n[j..]);
            d_r.store(&mut dgh_r[j..]);
            d_z.store(&mut dgh_z[j..]);
            (d_n * r).store(&mut dgh_n[j..]);
            (z * dh).store(&mut dh_direct[j..]);
        }
    }
}
