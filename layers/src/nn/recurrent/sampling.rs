//! Decoding a trained model one step at a time (one-to-many): turn the logits of a step into
//! the next token, which is fed back as the next step's input while the recurrent layer's
//! state is carried over (`final_state` of one step as `set_initial_state` of the next).
//!
//! - **greedy** decoding takes the arg-max of the logits;
//! - **sampling with a temperature** `T` draws from `softmax(logits / T)`: `T = 1` is the
//!   model's own distribution, `T < 1` sharpens it towards the arg-max (its limit at
//!   `T → 0`, which is how `T = 0` is read), `T > 1` flattens it towards uniform.
//!
//! Draws come from a caller's seeded [`StdRng`], so a seed gives the same sequence again.
//! `examples/char_lm.rs` runs the whole loop on a character-level LSTM.

use rand::rngs::StdRng;
use rand::RngExt;

/// How the next token is chosen from a step's logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decoding {
    /// The arg-max (the first maximum on ties).
    Greedy,
    /// A draw from `softmax(logits / T)`; `T = 0` is [`Decoding::Greedy`].
    Temperature(f32),
}

/// The index of the largest of `logits`, the first one on ties (NaNs are never chosen unless
/// all values are NaN, then 0).
///
/// # Panics
/// On empty `logits`.
pub fn argmax(logits: &[f32]) -> usize {
    assert!(!logits.is_empty(), "argmax of no logits");
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] || logits[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

/// Writes `softmax(logits / temperature)` into `probs` (computed in f64, the maximum
/// subtracted first); with `temperature = 0`, a one-hot vector at the [`argmax`].
///
/// # Panics
/// If `probs` and `logits` differ in length, are empty, or `temperature` is negative or not
/// finite.
pub fn softmax_with_temperature(logits: &[f32], temperature: f32, probs: &mut [f32]) {
    assert_eq!(logits.len(), probs.len(), "logits and probabilities differ in length");
    assert!(temperature >= 0.0 && temperature.is_finite(), "temperature {temperature} is not >= 0");
    if temperature == 0.0 {
        probs.fill(0.0);
        probs[argmax(logits)] = 1.0;
        return;
    }
    let max = logits[argmax(logits)] as f64;
    let inverse = 1.0 / temperature as f64;
    let mut sum = 0.0f64;
    for (p, &z) in probs.iter_mut().zip(logits) {
        let e = ((z as f64 - max) * inverse).exp();
        *p = e as f32;
        sum += e;
    }
    let scale = (1.0 / sum) as f32;
    probs.iter_mut().for_each(|p| *p *= scale);
}

/// A draw of an index from the distribution `probs` (non-negative, summing to about 1): the
/// first index whose running sum exceeds a uniform `u ∈ [0, 1)` scaled by the total (so
/// rounding in the sum cannot run past the end); zero-probability indices are never drawn
/// (when all are zero, or NaN, the draw is 0).
///
/// # Panics
/// On empty `probs`.
pub fn sample(probs: &[f32], rng: &mut StdRng) -> usize {
    assert!(!probs.is_empty(), "sample from no probabilities");
    let total: f64 = probs.iter().map(|&p| p as f64).sum();
    let u = rng.random::<f64>() * total;
    let mut running = 0.0f64;
    let mut last = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            running += p as f64;
            last = i;
            if u < running {
                return i;
            }
        }
    }
    last
}

/// Chooses next tokens from logits by a [`Decoding`], keeping its probability buffer between
/// calls (a steady-state step allocates nothing).
///
/// ```
/// use keel_layers::{Decoding, Sampler, SeedableRng, StdRng};
/// let mut rng = StdRng::seed_from_u64(0);
/// let logits = [0.0, 3f32.ln()]; // probabilities 1/4 and 3/4
/// assert_eq!(Sampler::new(Decoding::Greedy).next(&logits, &mut rng), 1);
/// let mut sampler = Sampler::new(Decoding::Temperature(1.0));
/// let ones = (0..1000).filter(|_| sampler.next(&logits, &mut rng) == 1).count();
/// assert!((700..800).contains(&ones));
/// assert!((sampler.probs()[1] - 0.75).abs() < 1e-6);
/// // A low temperature sharpens the distribution towards the arg-max.
/// let mut cold = Sampler::new(Decoding::Temperature(0.1));
/// cold.next(&logits, &mut rng);
/// assert!(cold.probs()[1] > 0.9999);
/// ```
#[derive(Debug, Clone)]
pub struct Sampler {
    decoding: Decoding,
    probs: Vec<f32>,
}

impl Sampler {
    /// A sampler choosing by `decoding`.
    ///
    /// # Panics
    /// On a temperature that is negative or not finite.
    pub fn new(decoding: Decoding) -> Self {
        if let Decoding::Temperature(t) = decoding {
            assert!(t >= 0.0 && t.is_finite(), "temperature {t} is not >= 0");
        }
        Sampler { decoding, probs: Vec::new() }
    }

    /// The decoding it applies.
    pub fn decoding(&self) -> Decoding {
        self.decoding
    }

    /// The next token for one step's `logits` (`classes` values); `rng` is drawn from only
    /// when sampling at a temperature above 0.
    pub fn next(&mut self, logits: &[f32], rng: &mut StdRng) -> usize {
        match self.decoding {
            Decoding::Greedy | Decoding::Temperature(0.0) => argmax(logits),
            Decoding::Temperature(t) => {
                self.probs.resize(logits.len(), 0.0);
                softmax_with_temperature(logits, t, &mut self.probs);
                sample(&self.probs, rng)
            }
        }
    }

    /// The probabilities of the last [`Sampler::next`] at a temperature above 0.
    pub fn probs(&self) -> &[f32] {
        &self.probs
    }
}
