//! One sample's geometric transform: the draw of its flip, crop offset and affine
//! parameters, and the inverse-mapped bilinear resampling (see the module doc of
//! [`augment`](super) for the math).

use rand::rngs::StdRng;
use rand::RngExt;

use super::Augment;

/// The inverse map `u = M q + b` from an output position `q = p + d(p)` to the input
/// position sampled, for one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Warp {
    /// `A⁻¹`, row-major `[m00, m01, m10, m11]` on `(x, y)`.
    m: [f64; 4],
    /// `c + A⁻¹ (s - c - t)`, as `(x, y)`.
    b: [f64; 2],
    height: usize,
    width: usize,
}

impl Warp {
    /// Draws the transform of one `height x width` sample from `rng`, in a fixed order
    /// (flip, crop offset y then x, angle, scale, shear, translation x then y) whatever the
    /// configuration, so a parameter left at its identity value still takes its draw.
    pub(super) fn draw(config: &Augment, height: usize, width: usize, rng: &mut StdRng) -> Self {
        let flip = rng.random::<f32>() < config.flip;
        let pad = config.pad as i64;
        let crop_y = rng.random_range(-pad..=pad) as f64;
        let crop_x = rng.random_range(-pad..=pad) as f64;
        let angle = uniform(rng, config.rotation).to_radians();
        let scale = uniform(rng, config.scale);
        let shear = uniform(rng, config.shear).to_radians().tan();
        let (w, h) = (width as f64, height as f64);
        let t_x = uniform(rng, (-config.translate.0, config.translate.0)) * w;
        let t_y = uniform(rng, (-config.translate.1, config.translate.1)) * h;

        // A = R(θ) · Sh(φ) · S(k) · F, built from the right.
        let f = if flip { -1.0 } else { 1.0 };
        let (sin, cos) = angle.sin_cos();
        // Sh · S · F = [[k f, k tan φ], [0, k]].
        let sh = [scale * f, scale * shear, 0.0, scale];
        let a = [
            cos * sh[0] + sin * sh[2],
            cos * sh[1] + sin * sh[3],
            -sin * sh[0] + cos * sh[2],
            -sin * sh[1] + cos * sh[3],
        ];
        let det = a[0] * a[3] - a[1] * a[2];
        let m = [a[3] / det, -a[1] / det, -a[2] / det, a[0] / det];
        let (c_x, c_y) = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
        let (v_x, v_y) = (crop_x - c_x - t_x, crop_y - c_y - t_y);
        let b = [c_x + m[0] * v_x + m[1] * v_y, c_y + m[2] * v_x + m[3] * v_y];
        Warp { m, b, height, width }
    }

    /// Overwrites `out` `(channels, H, W)` with `sample` `(channels, H, W)` resampled
    /// bilinearly at `u = M (p + d(p)) + b` for each output pixel `p`, reading `fill` outside
    /// the image. `displacement` holds `d`: the x plane `(H, W)` then the y plane.
    pub(super) fn resample(
        &self,
        sample: &[f32],
        out: &mut [f32],
        channels: usize,
        displacement: Option<&[f32]>,
        fill: f32,
    ) {
        let (h, w) = (self.height, self.width);
        let plane = h * w;
        let [m00, m01, m10, m11] = self.m;
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let (mut q_x, mut q_y) = (x as f64, y as f64);
                if let Some(d) = displacement {
                    q_x += f64::from(d[i]);
                    q_y += f64::from(d[plane + i]);
                }
                let u_x = m00 * q_x + m01 * q_y + self.b[0];
                let u_y = m10 * q_x + m11 * q_y + self.b[1];
                // Outside (-1, W) x (-1, H) every neighbour is outside: the fill. This also
                // keeps the integer coordinates below far from overflow.
                if !(u_x > -1.0 && u_x < w as f64 && u_y > -1.0 && u_y < h as f64) {
                    (0..channels).for_each(|ch| out[ch * plane + i] = fill);
                    continue;
                }
                let (x0, y0) = (u_x.floor(), u_y.floor());
                let (f_x, f_y) = ((u_x - x0) as f32, (u_y - y0) as f32);
                let (x0, y0) = (x0 as isize, y0 as isize);
                for ch in 0..channels {
                    let src = &sample[ch * plane..(ch + 1) * plane];
                    let at = |yy: isize, xx: isize| {
                        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                            src[yy as usize * w + xx as usize]
                        } else {
                            fill
                        }
                    };
                    out[ch * plane + i] = if f_x == 0.0 && f_y == 0.0 {
                        at(y0, x0)
                    } else {
                        let top = lerp(at(y0, x0), at(y0, x0 + 1), f_x);
                        let bottom = lerp(at(y0 + 1, x0), at(y0 + 1, x0 + 1), f_x);
                        lerp(top, bottom, f_y)
                    };
                }
            }
        }
    }
}

/// A uniform draw from `[low, high]` in f64 (exactly `low` when `low == high`).
fn uniform(rng: &mut StdRng, (low, high): (f32, f32)) -> f64 {
    let (low, high) = (f64::from(low), f64::from(high));
    low + (high - low) * rng.random::<f64>()
}

/// `a + t (b - a)` for `t` in `[0, 1]`, clamped between `a` and `b` (rounding can step an
/// ulp past an end point); NaN in, NaN out.
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    let v = a + t * (b - a);
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    if v < low {
        low
    } else if v > high {
        high
    } else {
        v
    }
}
