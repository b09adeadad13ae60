//! The transforms of Winograd's F(4x4, 3x3): a 6x6 input tile `d`, a 3x3 filter `g` and a 4x4
//! output tile `y` meet in a 6x6 transform domain, where the 9 multiply-adds per output of the
//! correlation become 36 per 16 outputs, one per point `ξ` (Lavin and Gray, 2015; interpolation
//! points 0, ±1, ±2 and ∞):
//!
//! ```text
//! y  = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A            forward (and backward to the input)
//! dg = Gᵀ [ (A dy Aᵀ) ⊙ (Bᵀ d B) ] G           weight gradient (the forward's adjoint in g)
//!
//!      ⎡4  0 -5  0  1  0⎤        ⎡ 1/4     0     0 ⎤        ⎡1  1  1  1  1  0⎤
//!      ⎢0 -4 -4  1  1  0⎥        ⎢-1/6  -1/6  -1/6 ⎥        ⎢0  1 -1  2 -2  0⎥
//! Bᵀ = ⎢0  4 -4 -1  1  0⎥   G =  ⎢-1/6   1/6  -1/6 ⎥   Aᵀ = ⎢0  1  1  4  4  0⎥
//!      ⎢0 -2 -1  2  1  0⎥        ⎢1/24  1/12   1/6 ⎥        ⎣0  1 -1  8 -8  1⎦
//!      ⎢0  2 -1 -2  1  0⎥        ⎢1/24 -1/12   1/6 ⎥
//!      ⎣0  4  0 -5  0  1⎦        ⎣   0     0     1 ⎦
//! ```
//!
//! Summed over channels, the products at each point `ξ` are one GEMM per point (`mod.rs`).
//! The transforms here run on vectors whose lanes are channels (tiles) or output channels
//! (filters), so they are the same arithmetic in every lane; each 2-D transform is the 1-D
//! one down the columns, then along the rows.

use crate::conv::vector::ConvVector;
use crate::gemm::Activation;

/// Side of the transform domain: 4 outputs + 3 taps - 1.
pub(super) const ALPHA: usize = 6;
/// Outputs per tile side.
pub(super) const OUT: usize = 4;
/// Points of the transform domain, one GEMM each.
pub(super) const POINTS: usize = ALPHA * ALPHA;

/// `Bᵀ d` for one column `d` of a tile.
#[inline(always)]
fn input_1d<V: ConvVector>(d: [V; ALPHA]) -> [V; ALPHA] {
    let (four, minus_four, minus_five) = (V::splat(4.0), V::splat(-4.0), V::splat(-5.0));
    let d4_4d2 = minus_four.mul_add(d[2], d[4]);
    let d3_4d1 = minus_four.mul_add(d[1], d[3]);
    let (d4_d2, d3_d1) = (d[4].sub(d[2]), d[3].sub(d[1]));
    [
        four.mul_add(d[0], minus_five.mul_add(d[2], d[4])),
        d4_4d2.add(d3_4d1),
        d4_4d2.sub(d3_4d1),
        V::splat(2.0).mul_add(d3_d1, d4_d2),
        V::splat(-2.0).mul_add(d3_d1, d4_d2),
        four.mul_add(d[1], minus_five.mul_add(d[3], d[5])),
    ]
}

/// `Aᵀ m` for one column `m` of a transformed tile.
#[inline(always)]
fn output_1d<V: ConvVector>(m: [V; ALPHA]) -> [V; OUT] {
    let (s1, s2) = (m[1].add(m[2]), m[1].sub(m[2]));
    let (s3, s4) = (m[3].add(m[4]), m[3].sub(m[4]));
    [
        m[0].add(s1).add(s3),
        V::splat(2.0).mul_add(s4, s2),
        V::splat(4.0).mul_add(s3, s1),
        V::splat(8.0).mul_add(s4, s2.add(m[5])),
    ]
}

/// `A g` for one column `g` of an output-gradient tile.
#[inline(always)]
fn gradient_1d<V: ConvVector>(g: [V; OUT]) -> [V; ALPHA] {
    let (even, odd) = (g[0].add(g[2]), g[1].add(g[3]));
    let even4 = V::splat(4.0).mul_add(g[2], g[0]);
    let odd4 = V::splat(8.0).mul_add(g[3], g[1].add(g[1]));
    [g[0], even.add(odd), even.sub(odd), even4.add(odd4), even4.sub(odd4), g[3]]
}

/// The input transform `Bᵀ d B` of one tile for `V::LANES` channels: reads the 6x6 positions
/// at `src + i·row + j·V::LANES` (`i, j < 6`; `row` floats between rows, `V::LANES` between
/// positions, a channel per lane) and writes point `ξ = 6·i + j` at `dst + ξ·point`.
///
/// # Safety
/// Those reads and the `POINTS` writes of `V::LANES` floats stay inside their buffers.
#[inline(always)]
pub(super) unsafe fn input_tile<V: ConvVector>(src: *const f32, row: usize, dst: *mut f32, point: usize) {
    // `Bᵀ d`, row by row.
    let mut rows = [[V::splat(0.0); ALPHA]; ALPHA];
    for j in 0..ALPHA {
        // SAFETY: i, j < 6: the caller's bounds.
        let column = input_1d(std::array::from_fn(|i| unsafe { V::load(src.add(i * row + j * V::LANES)) }));
        for (partial, v) in rows.iter_mut().zip(column) {
            partial[j] = v;
        }
    }
    for (i, partial) in rows.into_iter().enumerate() {
        let transformed = input_1d(partial);
        for (j, v) in transformed.into_iter().enumerate() {
            // SAFETY: 6·i + j < POINTS: the caller's bounds.
            unsafe { v.store(dst.add((i * ALPHA + j) * point), Activation::Identity) };
        }
    }
}

/// The output transform `Aᵀ m A + bias`, then `activation`, of one tile for `V::LANES`
/// channels: reads point `ξ` at `src + ξ·point` and writes the 4x4 outputs at `dst + a·row +
/// b·V::LANES` (`a, b < 4`).
///
/// # Safety
/// The `POINTS` reads and those writes of `V::LANES` floats stay inside their buffers.
#[inline(always)]
pub(super) unsafe fn output_tile<V: ConvVector>(
    src: *const f32,
    point: usize,
    bias: V,
    activation: Activation,
    dst: *mut f32,
    row: usize,
) {
    // `Aᵀ m`, row by row.
    let mut rows = [[V::splat(0.0); ALPHA]; OUT];
    for j in 0..ALPHA {
        // SAFETY: 6·i + j < POINTS: the caller's bounds.
        let column = output_1d(std::array::from_fn(|i| unsafe { V::load(src.add((i * ALPHA + j) * point)) }));
        for (partial, v) in rows.iter_mut().zip(column) {
            partial[j] = v;
        }
    }
    for (a, partial) in rows.into_iter().enumerate() {
        let outputs = output_1d(partial);
        for (b, v) in outputs.into_iter().enumerate() {
            // SAFETY: a, b < 4: the caller's bounds.
            unsafe { v.add(bias).store(dst.add(a * row + b * V::LANES), activation) };
        }
    }
}

/// The output-gradient transform `A dy Aᵀ` of one tile for `V::LANES` channels: reads the 4x4
/// positions at `src + a·row + b·V::LANES` and writes point `ξ` at `dst + ξ·point`.
///
/// # Safety
/// Those reads and the `POINTS` writes of `V::LANES` floats stay inside their buffers.
#[inline(always)]
pub(super) unsafe fn gradient_tile<V: ConvVector>(src: *const f32, row: usize, dst: *mut f32, point: usize) {
    // `A dy`, row by row.
    let mut rows = [[V::splat(0.0); OUT]; ALPHA];
    for b in 0..OUT {
        // SAFETY: a, b < 4: the caller's bounds.
        let column =
            gradient_1d(std::array::from_fn(|a| unsafe { V::load(src.add(a * row + b * V::LANES)) }));
        for (partial, v) in rows.iter_mut().zip(column) {
            partial[b] = v;
        }
    }
    for (i, partial) in rows.into_iter().enumerate() {
        let transformed = gradient_1d(partial);
        for (j, v) in transformed.into_iter().enumerate() {
            // SAFETY: 6·i + j < POINTS: the caller's bounds.
            unsafe { v.store(dst.add((i * ALPHA + j) * point), Activation::Identity) };
        }
    }
}

/// `G g` for one column `g` of a 3x3 filter.
#[inline(always)]
fn filter_1d<V: ConvVector>(g: [V; 3]) -> [V; ALPHA] {
    let minus_sixth = V::splat(-1.0 / 6.0);
    let (outer, twelfth) = (g[0].add(g[2]), V::splat(1.0 / 12.0));
    let ends = V::splat(1.0 / 24.0).mul_add(g[0], V::splat(1.0 / 6.0).mul(g[2]));
    [
        V::splat(0.25).mul(g[0]),
        minus_sixth.mul(outer.add(g[1])),
        minus_sixth.mul(outer.sub(g[1])),
        twelfth.mul_add(g[1], ends),
        ends.sub(twelfth.mul(g[1])),
        g[2],
    ]
}

/// `Gᵀ u` for one column `u` of a transformed filter gradient.
#[inline(always)]
fn filter_gradient_1d<V: ConvVector>(u: [V; ALPHA]) -> [V; 3] {
    let (inner, outer) = (u[1].add(u[2]), u[3].add(u[4]));
    let (sixth, twelfth) = (V::splat(1.0 / 6.0), V::splat(1.0 / 12.0));
    [
        V::splat(0.25).mul_add(u[0], V::splat(1.0 / 24.0).mul_add(outer, V::splat(-1.0 / 6.0).mul(inner))),
        sixth.mul_add(u[2].sub(u[1]), twelfth.mul(u[3].sub(u[4]))),
        sixth.mul_add(outer.sub(inner), u[5]),
    ]
}

/// The filter transform `G g Gᵀ` of `V::LANES` filters, `taps[3·r + c]` their tap `(r, c)`:
/// point `ξ` at `[ξ]`.
#[inline(always)]
pub(super) fn filter_tile<V: ConvVector>(taps: [V; 9]) -> [V; POINTS] {
    // Plain loops rather than nested `array::from_fn`, whose closures stay out of line (and
    // with them the intrinsics) inside `#[target_feature]` callers.
    let mut columns = [[V::splat(0.0); ALPHA]; 3];
    for (c, column) in columns.iter_mut().enumerate() {
        *column = filter_1d([taps[c], taps[3 + c], taps[6 + c]]);
    }
    let mut out = [V::splat(0.0); POINTS];
    for i in 0..ALPHA {
        let row = filter_1d([columns[0][i], columns[1][i], columns[2][i]]);
        out[i * ALPHA..(i + 1) * ALPHA].copy_from_slice(&row);
    }
    out
}

/// The adjoint of [`filter_tile`]: `Gᵀ u G` of `V::LANES` transformed gradients (point `ξ`
/// at `u[ξ]`), tap `(r, c)` of the filter gradients at `[3·r + c]`.
#[inline(always)]
pub(super) fn filter_gradient_tile<V: ConvVector>(u: [V; POINTS]) -> [V; 9] {
    let mut columns = [[V::splat(0.0); 3]; ALPHA];
    for (j, column) in columns.iter_mut().enumerate() {
        *column = filter_gradient_1d([
            u[j],
            u[ALPHA + j],
            u[2 * ALPHA + j],
            u[3 * ALPHA + j],
            u[4 * ALPHA + j],
            u[5 * ALPHA + j],
        ]);
    }
    let mut out = [V::splat(0.0); 9];
    for r in 0..3 {
        let row = filter_gradient_1d([
            columns[0][r],
            columns[1][r],
            columns[2][r],
            columns[3][r],
            columns[4][r],
            columns[5][r],
        ]);
        out[r * 3..(r + 1) * 3].copy_from_slice(&row);
    }
    out
}
