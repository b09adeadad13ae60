//! Beam search (`recurrent::beam`) on hand-made "models": fixed tables of next-token logits
//! given the last one or two tokens. It finds the best sequence where greedy decoding does
//! not; width 1 is greedy decoding; a beam as wide as the number of sequences equals an
//! exhaustive search over all of them (with and without length normalisation); the state
//! rows follow their beams when the beams are re-ranked (`select_beams`); it stops as soon as
//! no live beam can win; bad inputs are errors or documented panics.

use keel_layers::nn::{argmax, select_beams};
use keel_layers::{BeamSearch, Hypothesis, LayerError, Result, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Next-token logits over `vocab` tokens (the last one, `vocab - 1`, is the end token) given
/// the last `order` tokens of the history, the history padded with the start token
/// `vocab` on the left.
struct Table {
    vocab: usize,
    order: usize,
    logits: Vec<f32>,
}

impl Table {
    fn end(&self) -> u32 {
        self.vocab as u32 - 1
    }

    fn start(&self) -> u32 {
        self.vocab as u32
    }

    /// A table of logits drawn uniformly from `[-3, 3)`, seeded.
    fn random(vocab: usize, order: usize, seed: u64) -> Table {
        let mut rng = StdRng::seed_from_u64(seed);
        let rows = (vocab + 1).pow(order as u32);
        let logits = (0..rows * vocab).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * 3.0).collect();
        Table { vocab, order, logits }
    }

    /// The row for a history whose last `order` tokens (start-padded) are `context`.
    fn row_for_context(&self, context: &[u32]) -> &[f32] {
        let index = context.iter().fold(0, |index, &t| index * (self.vocab + 1) + t as usize);
        &self.logits[index * self.vocab..][..self.vocab]
    }

    /// The last `order` tokens of `history`, start-padded.
    fn context(&self, history: &[u32]) -> Vec<u32> {
        let mut context = vec![self.start(); self.order];
        for &t in history {
            context.remove(0);
            context.push(t);
        }
        context
    }

    fn row(&self, history: &[u32]) -> &[f32] {
        self.row_for_context(&self.context(history))
    }

    /// The total log-probability of `tokens` followed by the end token, in f64.
    fn log_prob(&self, tokens: &[u32]) -> f64 {
        let mut history = Vec::new();
        let mut total = 0.0;
        for &t in tokens.iter().chain([self.end()].iter()) {
            total += log_softmax(self.row(&history))[t as usize];
            history.push(t);
        }
        total
    }

    /// Greedy decoding: the arg-max at every step, until the end token or `max_len` tokens.
    fn greedy(&self, max_len: usize) -> (Vec<u32>, bool) {
        let mut tokens = Vec::new();
        while tokens.len() < max_len {
            let t = argmax(self.row(&tokens)) as u32;
            if t == self.end() {
                return (tokens, true);
            }
            tokens.push(t);
        }
        (tokens, false)
    }

    /// The best finished sequence of at most `max_len` tokens (the end token included) by
    /// `log_prob / len^alpha`, over all of them: `(tokens, log_prob, score)`.
    fn exhaustive(&self, max_len: usize, alpha: f64) -> (Vec<u32>, f64, f64) {
        let mut best: Option<(Vec<u32>, f64, f64)> = None;
        let mut prefixes = vec![Vec::new()];
        for len in 1..=max_len {
            for prefix in &prefixes {
                let log_prob = self.log_prob(prefix);
                let score = log_prob / (len as f64).powf(alpha);
                if best.as_ref().is_none_or(|b| score > b.2) {
                    best = Some((prefix.clone(), log_prob, score));
                }
            }
            prefixes = prefixes
                .iter()
                .flat_map(|p| (0..self.end()).map(move |t| [p.as_slice(), &[t]].concat()))
                .collect();
        }
        best.unwrap()
    }

    /// Beam search on the table, the model's state being the context of each beam: a
    /// `(1, beams, order)` tensor reordered by the parents with `select_beams`, as a recurrent
    /// model's is. `check` sees each step's parents and the histories of its beams, tracked
    /// independently of the state.
    fn beam(&self, search: &BeamSearch, mut check: impl FnMut(&[usize], &[Vec<u32>])) -> Result<Hypothesis> {
        let order = self.order;
        let mut state = Tensor::from_vec(&[1, 1, order], vec![self.start() as f32; order]).unwrap();
        let mut reordered = Tensor::default();
        let mut histories: Vec<Vec<u32>> = vec![Vec::new()];
        let mut first = true;
        search.search(self.start(), self.end(), |tokens, parents, logits| {
            // Reorder the state rows by the parents, then shift each beam's token in.
            select_beams(&state, parents, &mut reordered)?;
            let n = tokens.len();
            state.resize(&[1, n, order]);
            for (b, &t) in tokens.iter().enumerate() {
                let context = &reordered.data()[b * order..][..order];
                let row = &mut state.data_mut()[b * order..][..order];
                row[..order - 1].copy_from_slice(&context[1..]);
                row[order - 1] = t as f32;
            }
            // The histories, tracked from the tokens (the start token is none of them).
            histories = parents.iter().map(|&p| histories[p].clone()).collect();
            if !first {
                histories.iter_mut().zip(tokens).for_each(|(h, &t)| h.push(t));
            }
            first = false;
            check(parents, &histories);
            logits.resize(&[n, self.vocab]);
            for (b, history) in histories.iter().enumerate() {
                let context: Vec<u32> =
                    state.data()[b * order..][..order].iter().map(|&t| t as u32).collect();
                assert_eq!(context, self.context(history), "state row {b} left its beam");
                logits.data_mut()[b * self.vocab..][..self.vocab]
                    .copy_from_slice(self.row_for_context(&context));
            }
            Ok(())
        })
    }
}

fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &z| m.max(z as f64));
    let log_sum = max + logits.iter().map(|&z| (z as f64 - max).exp()).sum::<f64>().ln();
    logits.iter().map(|&z| z as f64 - log_sum).collect()
}

/// A first-order table over `a`, `b`, `$` (tokens 0, 1, 2; `^` is 3) from the probabilities of
/// the next token after `a`, after `b` and after `^` (a 0 is a logit of `-inf`).
fn table_from_probs(after_a: [f32; 3], after_b: [f32; 3], after_start: [f32; 3]) -> Table {
    // Rows by previous token: a, b, $ (never a previous token), ^.
    let rows = [after_a, after_b, [1.0; 3], after_start];
    Table { vocab: 3, order: 1, logits: rows.iter().flatten().map(|p| p.ln()).collect() }
}

#[test]
fn beam_finds_the_best_sequence_where_greedy_does_not() {
    // After ^: a 0.6, b 0.4. After a: $ 0.34, a 0.33, b 0.33. After b: $ 0.9.
    // Greedy: a $ (0.6·0.34 = 0.204); best: b $ (0.4·0.9 = 0.36).
    let table = table_from_probs([0.33, 0.33, 0.34], [0.05, 0.05, 0.9], [0.6, 0.4, 1e-6]);
    assert_eq!(table.greedy(5), (vec![0], true));
    let (best, log_prob, _) = table.exhaustive(5, 0.0);
    assert_eq!(best, vec![1]);
    let found = table.beam(&BeamSearch::new(2, 5), |_, _| {}).unwrap();
    assert_eq!(found.tokens, vec![1]);
    assert!(found.finished);
    assert!((found.log_prob - log_prob).abs() < 1e-9 && (found.log_prob - 0.36f64.ln()).abs() < 1e-5);
    assert_eq!(found.score, found.log_prob);
    // Width 1 is greedy and misses it.
    let narrow = table.beam(&BeamSearch::new(1, 5), |_, _| {}).unwrap();
    assert_eq!(narrow.tokens, vec![0]);
    assert!((narrow.log_prob - 0.204f64.ln()).abs() < 1e-6);
}

#[test]
fn width_one_is_greedy_decoding() {
    for seed in 0..60 {
        let (vocab, order, max_len) = (2 + seed as usize % 5, 1 + seed as usize % 2, 1 + seed as usize % 7);
        let table = Table::random(vocab, order, seed);
        let (tokens, finished) = table.greedy(max_len);
        let found = table.beam(&BeamSearch::new(1, max_len), |_, _| {}).unwrap();
        assert_eq!((found.tokens.clone(), found.finished), (tokens, finished), "seed {seed}");
        if found.finished {
            assert!((found.log_prob - table.log_prob(&found.tokens)).abs() < 1e-9, "seed {seed}");
        }
    }
}

#[test]
fn a_beam_as_wide_as_the_candidates_equals_exhaustive_search() {
    for seed in 0..20 {
        // 3 tokens and the end token, up to 4 tokens: at most 3³·4 = 108 candidates at a step,
        // so a beam of 108 keeps every sequence.
        let (vocab, max_len) = (4, 4);
        let table = Table::random(vocab, 1 + seed as usize % 2, 100 + seed);
        for alpha in [0.0, 0.7, 1.0] {
            let (tokens, log_prob, score) = table.exhaustive(max_len, alpha);
            let search = BeamSearch::new(108, max_len).with_length_penalty(alpha);
            let found = table.beam(&search, |_, _| {}).unwrap();
            assert_eq!(found.tokens, tokens, "seed {seed}, alpha {alpha}");
            assert!(found.finished);
            assert!((found.log_prob - log_prob).abs() < 1e-9, "seed {seed}, alpha {alpha}");
            assert!((found.score - score).abs() < 1e-9, "seed {seed}, alpha {alpha}");
        }
    }
}

#[test]
fn narrow_beams_return_consistent_hypotheses_no_better_than_exhaustive() {
    for seed in 0..30 {
        let table = Table::random(5, 2, 200 + seed);
        let max_len = 6;
        for (width, alpha) in [(2, 0.0), (3, 0.7), (4, 1.0)] {
            let (_, _, best_score) = table.exhaustive(max_len, alpha);
            let search = BeamSearch::new(width, max_len).with_length_penalty(alpha);
            let found = table.beam(&search, |_, _| {}).unwrap();
            if found.finished {
                let log_prob = table.log_prob(&found.tokens);
                assert!((found.log_prob - log_prob).abs() < 1e-9, "seed {seed}");
                let len = (found.tokens.len() + 1) as f64;
                assert!((found.score - log_prob / len.powf(alpha)).abs() < 1e-9);
                assert!(found.score <= best_score + 1e-12);
            }
        }
    }
}

#[test]
fn states_follow_their_beams_when_the_beams_are_re_ranked() {
    // Second-order tables: the next token depends on the last two, read from the state rows.
    // `Table::beam` asserts at every step that each reordered state row is its beam's context.
    let mut reranked = 0;
    let mut duplicated = 0;
    for seed in 0..20 {
        let table = Table::random(6, 2, 300 + seed);
        let found = table
            .beam(&BeamSearch::new(3, 8), |parents, histories| {
                if parents.iter().enumerate().any(|(b, &p)| p != b) {
                    reranked += 1;
                }
                let mut distinct = parents.to_vec();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.len() < parents.len() {
                    duplicated += 1;
                }
                assert_eq!(parents.len(), histories.len());
            })
            .unwrap();
        if found.finished {
            assert!((found.log_prob - table.log_prob(&found.tokens)).abs() < 1e-9, "seed {seed}");
        }
    }
    // The test is not vacuous: beams changed rank and a beam had two children.
    assert!(reranked > 10 && duplicated > 10, "{reranked} re-rankings, {duplicated} duplications");
}

#[test]
fn select_beams_gathers_rows_of_every_layer() {
    // Two layers (blocks), three beams of width 2: value = 10·block + beam, then + 0.5.
    let state = Tensor::from_vec(
        &[2, 3, 2],
        (0..2)
            .flat_map(|l| {
                (0..3).flat_map(move |b| [10.0 * l as f32 + b as f32, 10.0 * l as f32 + b as f32 + 0.5])
            })
            .collect(),
    )
    .unwrap();
    let mut out = Tensor::from_vec(&[1], vec![f32::NAN]).unwrap();
    select_beams(&state, &[2, 0, 0, 1], &mut out).unwrap();
    assert_eq!(out.shape(), [2, 4, 2]);
    let expected = [2.0, 2.5, 0.0, 0.5, 0.0, 0.5, 1.0, 1.5, 12.0, 12.5, 10.0, 10.5, 10.0, 10.5, 11.0, 11.5];
    assert_eq!(out.data(), expected);
    match select_beams(&state, &[0, 3], &mut out) {
        Err(LayerError::Index { position: 1, value, .. }) => assert_eq!(value, "3"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(select_beams(&Tensor::zeros(&[3, 2]), &[0], &mut out), Err(LayerError::Shape { .. })));
}

#[test]
fn it_stops_once_no_live_beam_can_win() {
    // After ^: $ 0.9, a 0.05, b 0.05: the finished empty sequence beats every live beam at
    // once (log 0.05 < log 0.9), so one step is enough.
    let table = table_from_probs([0.4, 0.3, 0.3], [0.4, 0.3, 0.3], [0.05, 0.05, 0.9]);
    let mut steps = 0;
    let found = table.beam(&BeamSearch::new(3, 10), |_, _| steps += 1).unwrap();
    assert_eq!((found.tokens, steps), (vec![], 1));
    // With length normalisation (α = 1) a beam reaching 10 tokens could score up to
    // log 0.05 / 10 = -0.30, still below log 0.9 = -0.105: it stops too.
    let mut steps = 0;
    let search = BeamSearch::new(3, 10).with_length_penalty(1.0);
    table.beam(&search, |_, _| steps += 1).unwrap();
    assert_eq!(steps, 1);
    // After ^: $ 0.5: log 0.25 / 10 = -0.139 > log 0.5 = -0.69, so the search goes on.
    let table = table_from_probs([0.4, 0.3, 0.3], [0.4, 0.3, 0.3], [0.25, 0.25, 0.5]);
    let mut steps = 0;
    table.beam(&search, |_, _| steps += 1).unwrap();
    assert!(steps > 1);
}

#[test]
fn a_search_cut_at_max_len_returns_the_best_beam_unfinished() {
    // The end token is impossible (-inf): nothing finishes; the best beam is all `a`s.
    let table = table_from_probs([0.6, 0.4, 0.0], [0.6, 0.4, 0.0], [0.6, 0.4, 0.0]);
    let found = table.beam(&BeamSearch::new(2, 4).with_length_penalty(0.5), |_, _| {}).unwrap();
    assert_eq!(found.tokens, vec![0; 4]);
    assert!(!found.finished);
    assert!((found.log_prob - 4.0 * 0.6f64.ln()).abs() < 1e-6);
    assert!((found.score - found.log_prob / 2.0).abs() < 1e-9);
}

#[test]
fn masked_tokens_are_never_chosen() {
    // -inf logits (masked, here the end token 0) and NaN logits are never kept, even when the
    // beam is wider than the tokens left: only 1 and 3 are, and nothing finishes.
    let logits = [f32::NEG_INFINITY, 1.0, f32::NAN, 0.5];
    let mut first = true;
    let found = BeamSearch::new(4, 3)
        .search(9, 0, |tokens, _, out| {
            assert!(first || tokens.iter().all(|&t| t == 1 || t == 3), "{tokens:?}");
            first = false;
            *out = Tensor::from_vec(&[tokens.len(), 4], logits.repeat(tokens.len()))?;
            Ok(())
        })
        .unwrap();
    assert_eq!((found.tokens, found.finished), (vec![1, 1, 1], false));
    // Every logit -inf: nothing to return.
    let result = BeamSearch::new(2, 3).search(0, 1, |tokens, _, out| {
        *out = Tensor::from_vec(&[tokens.len(), 2], vec![f32::NEG_INFINITY; 2 * tokens.len()])?;
        Ok(())
    });
    assert!(matches!(result, Err(LayerError::State(_))), "{result:?}");
}

#[test]
fn bad_logits_and_step_errors_are_errors() {
    let search = BeamSearch::new(2, 5);
    // Not one row per beam.
    let result = search.search(0, 1, |_, _, out| {
        *out = Tensor::zeros(&[2, 3]);
        Ok(())
    });
    assert!(matches!(result, Err(LayerError::Shape { ref actual, .. }) if actual == &[2, 3]), "{result:?}");
    // A vocabulary without the end token.
    let result = search.search(0, 3, |tokens, _, out| {
        *out = Tensor::zeros(&[tokens.len(), 3]);
        Ok(())
    });
    assert!(matches!(result, Err(LayerError::Shape { .. })), "{result:?}");
    // A vocabulary that changes between steps (the end token least likely, so a second step
    // comes).
    let mut vocab = 4;
    let result = search.search(0, 3, |tokens, _, out| {
        let row: Vec<f32> = (0..vocab).map(|i| -(i as f32)).collect();
        *out = Tensor::from_vec(&[tokens.len(), vocab], row.repeat(tokens.len()))?;
        vocab += 1;
        Ok(())
    });
    assert!(matches!(result, Err(LayerError::Shape { .. })), "{result:?}");
    // The step's own error comes back as it was.
    let result = search.search(0, 1, |_, _, _| Err(LayerError::State("model failed".into())));
    assert_eq!(result, Err(LayerError::State("model failed".into())));
}

#[test]
#[should_panic(expected = "beam width must be at least 1")]
fn width_zero_panics() {
    BeamSearch::new(0, 5);
}

#[test]
#[should_panic(expected = "maximum length")]
fn max_len_zero_panics() {
    BeamSearch::new(3, 0);
}

#[test]
#[should_panic(expected = "length penalty")]
fn a_negative_length_penalty_panics() {
    BeamSearch::new(3, 5).with_length_penalty(-0.5);
}
