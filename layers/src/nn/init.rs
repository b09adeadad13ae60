//! Weight initialisation, deterministic from a seeded generator.

use rand::rngs::StdRng;
use rand::RngExt;
use rand_distr::{Distribution, Normal};

/// How to fill a weight tensor. `fan_in` / `fan_out` are the inputs / outputs each weight
/// connects (for a dense layer `in` and `out`; for a convolution `in_c·kh·kw`, `out_c·kh·kw`).
///
/// ```
/// use keel_layers::{Init, SeedableRng, StdRng};
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut weights = vec![0.0f32; 1000];
/// Init::Uniform { low: -0.1, high: 0.1 }.fill(&mut weights, 10, 10, &mut rng);
/// assert!(weights.iter().all(|w| (-0.1..0.1).contains(w)));
/// Init::He.fill(&mut weights, 50, 10, &mut rng); // std √(2/50) = 0.2
/// let std = (weights.iter().map(|w| w * w).sum::<f32>() / 1000.0).sqrt();
/// assert!((std - 0.2).abs() < 0.02);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All zeros (biases; a weight initialised so never breaks symmetry).
    Zeros,
    /// Uniform in `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f32,
        /// Upper bound.
        high: f32,
    },
    /// Normal with mean 0 and the given standard deviation.
    Normal {
        /// Standard deviation.
        std: f32,
    },
    /// He (Kaiming) normal: std `√(2/fan_in)`, for ReLU networks.
    He,
    /// LeCun normal: std `√(1/fan_in)`, for tanh / SELU networks.
    LeCun,
    /// Xavier (Glorot) normal: std `√(2/(fan_in + fan_out))`.
    Xavier,
}

impl Init {
    /// Fills `values` according to the scheme.
    pub fn fill(self, values: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut StdRng) {
        let normal = |std: f32, values: &mut [f32], rng: &mut StdRng| {
            // std is finite and >= 0 for every scheme with fan_in >= 1.
            let dist = Normal::new(0.0f32, std.max(0.0)).expect("a finite standard deviation");
            values.iter_mut().for_each(|v| *v = dist.sample(rng));
        };
        match self {
            Init::Zeros => values.fill(0.0),
            Init::Uniform { low, high } => {
                values.iter_mut().for_each(|v| *v = low + (high - low) * rng.random::<f32>())
            }
            Init::Normal { std } => normal(std, values, rng),
            Init::He => normal((2.0 / fan_in.max(1) as f32).sqrt(), values, rng),
            Init::LeCun => normal((1.0 / fan_in.max(1) as f32).sqrt(), values, rng),
            Init::Xavier => normal((2.0 / (fan_in + fan_out).max(1) as f32).sqrt(), values, rng),
        }
    }
}
