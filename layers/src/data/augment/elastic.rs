//! Elastic displacement fields (Simard, Steinkraus and Platt, 2003): uniform noise smoothed
//! by a separable Gaussian and scaled by `alpha`.

use rand::rngs::StdRng;
use rand::RngExt;

use super::Elastic;

/// The smoothing of one configuration and image size: the Gaussian's taps, computed once.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Smoothing {
    /// `alpha · g(k)` for `k` in `-radius..=radius`, `g` the Gaussian normalised to sum 1
    /// (the scale by `alpha` rides on the second pass).
    taps: Vec<f32>,
    /// The normalised Gaussian `g(k)` (first pass).
    gauss: Vec<f32>,
    height: usize,
    width: usize,
}

impl Smoothing {
    /// The taps of a Gaussian of `elastic.sigma`, truncated at `ceil(3σ)` (and at the image
    /// size, beyond which every tap would read outside).
    pub(super) fn new(elastic: Elastic, height: usize, width: usize) -> Self {
        let sigma = f64::from(elastic.sigma);
        let radius = ((3.0 * sigma).ceil() as usize).clamp(1, height.max(width));
        let weights: Vec<f64> = (0..=2 * radius)
            .map(|k| (-((k as f64 - radius as f64).powi(2)) / (2.0 * sigma * sigma)).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let gauss = weights.iter().map(|w| (w / total) as f32).collect();
        let alpha = f64::from(elastic.alpha);
        let taps = weights.iter().map(|w| (alpha * w / total) as f32).collect();
        Smoothing { taps, gauss, height, width }
    }

    /// The scratch one sample needs: the x and y displacement planes and a plane for the
    /// first pass, `3·H·W` values.
    pub(super) fn field_len(&self) -> usize {
        3 * self.height * self.width
    }

    /// Draws a displacement field into `field` (`3·H·W` values, overwritten) and returns
    /// its first `2·H·W`: `d_x` `(H, W)` then `d_y` `(H, W)`, each `alpha · G_σ * r` for
    /// `r` uniform in `[-1, 1]`, zero outside the image.
    pub(super) fn displacement<'f>(&self, field: &'f mut [f32], rng: &mut StdRng) -> &'f [f32] {
        let plane = self.height * self.width;
        let (fields, scratch) = field.split_at_mut(2 * plane);
        fields.iter_mut().for_each(|v| *v = 2.0 * rng.random::<f32>() - 1.0);
        for d in fields.chunks_exact_mut(plane) {
            self.rows(d, scratch);
            self.columns(scratch, d);
        }
        &field[..2 * plane]
    }

    /// `out[y][x] = Σ_k g(k) · input[y][x + k]`, zero past the row's ends.
    fn rows(&self, input: &[f32], out: &mut [f32]) {
        let radius = self.gauss.len() / 2;
        for (row_in, row_out) in input.chunks_exact(self.width).zip(out.chunks_exact_mut(self.width)) {
            for (x, o) in row_out.iter_mut().enumerate() {
                let first = x.saturating_sub(radius);
                let last = (x + radius).min(self.width - 1);
                *o = (first..=last).map(|xx| self.gauss[xx + radius - x] * row_in[xx]).sum();
            }
        }
    }

    /// `out[y][x] = Σ_k alpha · g(k) · input[y + k][x]`, zero past the column's ends.
    fn columns(&self, input: &[f32], out: &mut [f32]) {
        let (w, radius) = (self.width, self.taps.len() / 2);
        for y in 0..self.height {
            let first = y.saturating_sub(radius);
            let last = (y + radius).min(self.height - 1);
            let row_out = &mut out[y * w..(y + 1) * w];
            row_out.fill(0.0);
            for yy in first..=last {
                let tap = self.taps[yy + radius - y];
                let row_in = &input[yy * w..(yy + 1) * w];
                row_out.iter_mut().zip(row_in).for_each(|(o, &v)| *o += tap * v);
            }
        }
    }
}
