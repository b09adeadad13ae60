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
//! The tile transforms here run on vectors whose lanes are channels (so they are the same
//! arithmetic in every lane), each 2-D transform as the 1-D one down the columns, then along
//! the rows; the filter transforms run once per call, in scalar code.

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
    let mut columns = [[V::splat(0.0); ALPHA]; ALPHA];
    for (j, column) in columns.iter_mut().enumerate() {
        // SAFETY: i, j < 6: the caller's bounds.
        *column = input_1d(std::array::from_fn(|i| unsafe { V::load(src.add(i * row + j * V::LANES)) }));
    }
    for i in 0..ALPHA {
        let transformed = input_1d(std::array::from_fn(|j| columns[j][i]));
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
    let mut columns = [[V::splat(0.0); OUT]; ALPHA];
    for (j, column) in columns.iter_mut().enumerate() {
        // SAFETY: 6·i + j < POINTS: the caller's bounds.
        *column = output_1d(std::array::from_fn(|i| unsafe { V::load(src.add((i * ALPHA + j) * point)) }));
    }
    for a in 0..OUT {
        let outputs = output_1d(std::array::from_fn(|j| columns[j][a]));
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
    let mut columns = [[V::splat(0.0); ALPHA]; OUT];
    for (b, column) in columns.iter_mut().enumerate() {
        // SAFETY: a, b < 4: the caller's bounds.
        *column = gradient_1d(std::array::from_fn(|a| unsafe { V::load(src.add(a * row + b * V::LANES)) }));
    }
    for i in 0..ALPHA {
        let transformed = gradient_1d(std::array::from_fn(|b| columns[b][i]));
        for (j, v) in transformed.into_iter().enumerate() {
            // SAFETY: 6·i + j < POINTS: the caller's bounds.
            unsafe { v.store(dst.add((i * ALPHA + j) * point), Activation::Identity) };
        }
    }
}

/// G, the filter transform's matrix.
const G: [[f32; 3]; ALPHA] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// The filter transform `G g Gᵀ` of one 3x3 filter `g` (row-major), point `ξ` at `[ξ]`.
pub(super) fn filter(g: &[f32; 9]) -> [f32; POINTS] {
    // G g: (6, 3).
    let left: [[f32; 3]; ALPHA] =
        std::array::from_fn(|i| std::array::from_fn(|c| (0..3).map(|k| G[i][k] * g[k * 3 + c]).sum()));
    std::array::from_fn(|p| {
        let (i, j) = (p / ALPHA, p % ALPHA);
        (0..3).map(|c| left[i][c] * G[j][c]).sum()
    })
}

/// The adjoint of [`filter`]: `Gᵀ u G` for a transformed gradient `u` (point `ξ` at `[ξ]`),
/// the 3x3 filter gradient, row-major.
pub(super) fn filter_gradient(u: &[f32; POINTS]) -> [f32; 9] {
    // Gᵀ u: (3, 6).
    let left: [[f32; ALPHA]; 3] = std::array::from_fn(|k| {
        std::array::from_fn(|j| (0..ALPHA).map(|i| G[i][k] * u[i * ALPHA + j]).sum())
    });
    std::array::from_fn(|t| {
        let (k, c) = (t / 3, t % 3);
        (0..ALPHA).map(|j| left[k][j] * G[j][c]).sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter transform and its adjoint: `<filter(g), u> = <g, filter_gradient(u)>`
    /// for random `g` and `u` (in f32: equal to about 1e-5 of the terms' size).
    #[test]
    fn filter_gradient_is_the_adjoint_of_filter() {
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0
        };
        for _ in 0..20 {
            let g: [f32; 9] = std::array::from_fn(|_| next());
            let u: [f32; POINTS] = std::array::from_fn(|_| next());
            let left: f32 = filter(&g).iter().zip(&u).map(|(a, b)| a * b).sum();
            let right: f32 = g.iter().zip(&filter_gradient(&u)).map(|(a, b)| a * b).sum();
            assert!((left - right).abs() <= 1e-5 * (1.0 + left.abs()), "{left} vs {right}");
        }
    }

    /// A filter with one tap at the centre transforms to `G[i][1]·G[j][1]`.
    #[test]
    fn centre_tap_transforms_to_the_middle_column_of_g() {
        let mut g = [0.0; 9];
        g[4] = 1.0;
        let u = filter(&g);
        for (p, &v) in u.iter().enumerate() {
            assert_eq!(v, G[p / ALPHA][1] * G[p % ALPHA][1]);
        }
    }
}
