//! Beam-search decoding: instead of committing to the best next token at every step as
//! greedy decoding does ([`sampling`](super::sampling)), keep the `width` best partial
//! sequences (*beams*) by total log-probability, extend each by every token, keep the
//! `width` best extensions, and set aside those that end. Width 1 is greedy decoding.
//!
//! The search knows nothing of the model: each step it hands a closure the last token of
//! every live beam and which beam of the previous step each one continues (its *parent*), and
//! the closure returns their logits. A recurrent model keeps one state row per beam: it
//! reorders its states by the parents ([`select_beams`] on `final_state`, then
//! `set_initial_state`), runs one step on the tokens, and writes the logits.
//! `examples/seq2seq_attention.rs` decodes an encoder-decoder this way.
//!
//! Scores are log-probabilities from a log-softmax of the logits, computed and summed in
//! f64. Optionally (the course's *length normalisation*) hypotheses are ranked by
//! `log_prob / len^α`, which keeps a long hypothesis from losing merely for having more
//! factors below 1.

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// A decoded sequence and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// The generated tokens, without the start token and without the end token.
    pub tokens: Vec<u32>,
    /// The sum of the log-probabilities of every chosen token, the end token included.
    pub log_prob: f64,
    /// What hypotheses are ranked by: `log_prob / len^α`, with `len` the tokens generated
    /// (the end token counted) and `α` the length penalty; `log_prob` when `α = 0`.
    pub score: f64,
    /// Whether it ended with the end token (`false`: cut at the maximum length).
    pub finished: bool,
}

/// Beam-search decoding (see the module docs): `width` beams, at most `max_len` tokens
/// generated (the end token included), hypotheses ranked by `log_prob / len^α` with the
/// length penalty `α` (0 by default: the total log-probability).
///
/// Each step, every live beam `b` (total log-probability `L_b`) and token `v` make a
/// candidate of log-probability `L_b + log softmax(logits_b)_v`; the `width` best candidates
/// are kept, and those whose token is the end token are set aside as finished, the others
/// are the next step's live beams, best first. Ties go to the lower beam, then the lower
/// token (so width 1 takes the first arg-max, as [`argmax`](super::argmax) does); a candidate
/// whose log-probability is not finite (a logit of `-inf`, such as a masked token, or NaN) is
/// never kept. The search stops when no beam is live, after `max_len` steps, or when no live
/// beam can still beat the best finished hypothesis (every further token adds a log-probability
/// `<= 0`, so a beam at `L <= 0` can reach at most `L / max_len^α`): stopping early never
/// changes the result.
///
/// The result is the best finished hypothesis (the first found among equals); if none
/// finished within `max_len` tokens, the best beam cut there (`finished == false`).
///
/// ```
/// use keel_layers::{BeamSearch, Tensor};
///
/// // A "model" whose next-token logits depend on the last token only: tokens 0 and 1, the
/// // end token 2, the start token 3. Greedy takes 0 (p = 0.6) and then ends with p = 0.34;
/// // taking 1 (p = 0.4) and ending with p = 0.9 is better overall.
/// let probs = |last: u32| match last {
///     0 => [0.33f32, 0.33, 0.34],
///     1 => [0.05, 0.05, 0.9],
///     _ => [0.6, 0.4, 1e-6],
/// };
/// let step = |tokens: &[u32], _parents: &[usize], logits: &mut Tensor| {
///     let rows = tokens.iter().flat_map(|&t| probs(t).map(f32::ln)).collect();
///     *logits = Tensor::from_vec(&[tokens.len(), 3], rows)?;
///     Ok(())
/// };
/// let greedy = BeamSearch::new(1, 10).search(3, 2, step).unwrap();
/// let beam = BeamSearch::new(2, 10).search(3, 2, step).unwrap();
/// assert_eq!((greedy.tokens, beam.tokens), (vec![0], vec![1]));
/// assert!((beam.log_prob - 0.36f64.ln()).abs() < 1e-5 && beam.finished);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamSearch {
    width: usize,
    max_len: usize,
    length_penalty: f64,
}

/// A live beam: its tokens so far (without the start token) and their total log-probability.
#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    log_prob: f64,
}

/// An extension of beam `beam` by `token`, of total log-probability `log_prob`.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    log_prob: f64,
    beam: usize,
    token: u32,
}

impl BeamSearch {
    /// A search keeping `width` beams and generating at most `max_len` tokens (the end token
    /// included), without length normalisation.
    ///
    /// # Panics
    /// If `width` or `max_len` is 0.
    pub fn new(width: usize, max_len: usize) -> Self {
        assert!(width >= 1, "beam width must be at least 1");
        assert!(max_len >= 1, "beam search needs a maximum length of at least 1 token");
        BeamSearch { width, max_len, length_penalty: 0.0 }
    }

    /// The same search ranking hypotheses by `log_prob / len^alpha` (the course suggests
    /// `alpha = 0.7`; 0 ranks by the total log-probability, 1 by the mean per token).
    ///
    /// # Panics
    /// If `alpha` is negative or not finite.
    pub fn with_length_penalty(self, alpha: f64) -> Self {
        assert!(alpha >= 0.0 && alpha.is_finite(), "length penalty {alpha} is not >= 0");
        BeamSearch { length_penalty: alpha, ..self }
    }

    /// The number of beams kept.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The most tokens generated, the end token included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The length penalty `α`.
    pub fn length_penalty(&self) -> f64 {
        self.length_penalty
    }

    /// The ranking score of a hypothesis of `len` tokens and total `log_prob`.
    fn score(&self, log_prob: f64, len: usize) -> f64 {
        if self.length_penalty == 0.0 {
            log_prob
        } else {
            log_prob / (len as f64).powf(self.length_penalty)
        }
    }

    /// Decodes from `start` until `end` (see [`BeamSearch`]), asking `step` for the logits of
    /// the live beams at every step.
    ///
    /// `step(tokens, parents, logits)` gets the last token of each live beam (`n <= width` of
    /// them, best first) and `parents[b]`, the row of the previous call's beams that beam `b`
    /// continues; the first call gets `tokens = [start]`, `parents = [0]` (row 0 of the
    /// initial state). It must reorder its state rows by `parents` (row `b` of the new state
    /// is row `parents[b]` of the old; a row may be taken twice or not at all), run one step
    /// on `tokens`, and write the logits into `logits` (resizing it to `(n, vocab)`).
    ///
    /// # Shapes
    /// `logits`: `(n, vocab)` with `end < vocab`, `vocab` the same at every step.
    ///
    /// # Errors
    /// The first error of `step`; logits of another shape; a step where no candidate has a
    /// finite log-probability (every logit `-inf` or NaN) before any hypothesis finished
    /// (nothing to return).
    pub fn search<F>(&self, start: u32, end: u32, mut step: F) -> Result<Hypothesis>
    where
        F: FnMut(&[u32], &[usize], &mut Tensor) -> Result<()>,
    {
        let mut live = vec![Beam { tokens: Vec::new(), log_prob: 0.0 }];
        let (mut tokens, mut parents) = (vec![start], vec![0]);
        let mut logits = Tensor::default();
        let mut log_probs = Vec::new();
        let mut candidates = Vec::new();
        let mut vocab = None;
        let mut best: Option<Hypothesis> = None;
        for len in 1..=self.max_len {
            step(&tokens, &parents, &mut logits)?;
            let width = self.check_logits(&logits, live.len(), end, vocab)?;
            vocab = Some(width);
            // Every extension of every live beam with a finite log-probability.
            candidates.clear();
            for (beam, (row, b)) in logits.data().chunks_exact(width).zip(&live).enumerate() {
                log_softmax(row, &mut log_probs);
                for (token, &lp) in log_probs.iter().enumerate() {
                    let log_prob = b.log_prob + lp;
                    if log_prob.is_finite() {
                        candidates.push(Candidate { log_prob, beam, token: token as u32 });
                    }
                }
            }
            // The `width` best, best first: higher log-probability, then lower beam, then
            // lower token (a total order, so the choice is deterministic).
            let order = |a: &Candidate, b: &Candidate| {
                b.log_prob.total_cmp(&a.log_prob).then(a.beam.cmp(&b.beam)).then(a.token.cmp(&b.token))
            };
            if candidates.len() > self.width {
                candidates.select_nth_unstable_by(self.width - 1, order);
                candidates.truncate(self.width);
            }
            candidates.sort_unstable_by(order);
            // Ended candidates are set aside; the others are the next step's beams.
            let mut next = Vec::with_capacity(candidates.len());
            tokens.clear();
            parents.clear();
            for c in &candidates {
                let parent = &live[c.beam];
                if c.token == end {
                    let score = self.score(c.log_prob, len);
                    if best.as_ref().is_none_or(|best| score > best.score) {
                        let tokens = parent.tokens.clone();
                        best = Some(Hypothesis { tokens, log_prob: c.log_prob, score, finished: true });
                    }
                } else {
                    let mut beam_tokens = Vec::with_capacity(len);
                    beam_tokens.extend_from_slice(&parent.tokens);
                    beam_tokens.push(c.token);
                    next.push(Beam { tokens: beam_tokens, log_prob: c.log_prob });
                    tokens.push(c.token);
                    parents.push(c.beam);
                }
            }
            live = next;
            // No live beam left, or none that can still beat the best finished one.
            let bound = live.first().map(|b| self.score(b.log_prob, self.max_len));
            match (&best, bound) {
                (_, None) => break,
                (Some(best), Some(bound)) if best.score >= bound => break,
                _ => {}
            }
        }
        if let Some(best) = best {
            return Ok(best);
        }
        // Nothing ended within `max_len` tokens: the best beam cut there.
        let cut = live.into_iter().next().ok_or_else(|| {
            LayerError::State(
                "beam search: no candidate of finite log-probability (logits -inf or NaN)".into(),
            )
        })?;
        let score = self.score(cut.log_prob, cut.tokens.len());
        Ok(Hypothesis { tokens: cut.tokens, log_prob: cut.log_prob, score, finished: false })
    }

    /// Checks `logits` against `(beams, vocab)` (`vocab` that of the earlier steps if any,
    /// and above `end`); returns `vocab`.
    fn check_logits(&self, logits: &Tensor, beams: usize, end: u32, vocab: Option<usize>) -> Result<usize> {
        match (logits.shape(), vocab) {
            (&[rows, v], None) if rows == beams && v > end as usize => Ok(v),
            (&[rows, v], Some(vocab)) if rows == beams && v == vocab => Ok(v),
            _ => Err(LayerError::Shape {
                layer: "beam search (logits of a step)".into(),
                expected: match vocab {
                    Some(vocab) => format!("({beams} beams, {vocab})"),
                    None => format!("({beams} beams, vocab > end token {end})"),
                },
                actual: logits.shape().to_vec(),
            }),
        }
    }
}

/// `out = log softmax(logits)` in f64 (the maximum subtracted first). NaN logits are read as
/// `-inf` (probability 0); a row without any finite maximum gives `-inf` or NaN throughout,
/// which the search never keeps.
fn log_softmax(logits: &[f32], out: &mut Vec<f64>) {
    let max = logits.iter().filter(|z| !z.is_nan()).fold(f64::NEG_INFINITY, |m, &z| m.max(z as f64));
    let sum: f64 = logits.iter().filter(|z| !z.is_nan()).map(|&z| (z as f64 - max).exp()).sum();
    let log_sum = max + sum.ln();
    out.clear();
    out.extend(logits.iter().map(|&z| if z.is_nan() { f64::NEG_INFINITY } else { z as f64 - log_sum }));
}

/// Overwrites `out` with the beam rows `parents` of a recurrent state `state`
/// (`final_state` of [`Lstm`](crate::nn::Lstm), [`Gru`](crate::nn::Gru),
/// [`Rnn`](crate::nn::Rnn)): row `b` of `out` is row `parents[b]` of `state`, for every layer
/// and direction. This is the reordering a [`BeamSearch::search`] step does before it runs.
///
/// # Shapes
/// `state (num_layers·D, beams, hidden)` gives `out (num_layers·D, parents.len(), hidden)`.
///
/// # Errors
/// A `state` that is not 3-D, or a parent that is not one of its beams.
pub fn select_beams(state: &Tensor, parents: &[usize], out: &mut Tensor) -> Result<()> {
    let (blocks, beams, hidden) = match *state.shape() {
        [blocks, beams, hidden] => (blocks, beams, hidden),
        _ => {
            return Err(LayerError::Shape {
                layer: "select_beams (state)".into(),
                expected: "(num_layers·D, beams, hidden)".into(),
                actual: state.shape().to_vec(),
            })
        }
    };
    if let Some(position) = parents.iter().position(|&p| p >= beams) {
        return Err(LayerError::Index {
            layer: "select_beams (parents)".into(),
            position,
            value: parents[position].to_string(),
            expected: format!("a beam of the state, in 0..{beams}"),
        });
    }
    out.resize(&[blocks, parents.len(), hidden]);
    let (src, dst) = (state.data(), out.data_mut());
    for block in 0..blocks {
        for (b, &parent) in parents.iter().enumerate() {
            dst[(block * parents.len() + b) * hidden..][..hidden]
                .copy_from_slice(&src[(block * beams + parent) * hidden..][..hidden]);
        }
    }
    Ok(())
}
