//! word2vec: skip-gram with negative sampling (Mikolov et al. 2013), trained as `word2vec.c`
//! and gensim train it.
//!
//! For each document, each kept word (after frequent-word subsampling) is a center `c`; a
//! window size `b` is drawn uniformly in `1..=window` (word2vec's "reduced window", which
//! weights near words more), and each word `o` within `b` positions is a context: one group
//! (`c`, `o`, `k` negatives drawn from the unigram^¾ table) and one SGD step of
//! [`sgns_step`] on `-ln σ(u_o·v_c) - Σ ln σ(-u_n·v_c)`. The learning rate decays linearly
//! from `lr` to `min_lr` over all epochs, by the share of corpus words already read.
//!
//! **Threads and determinism.** The documents of an epoch are cut into `threads` shards of
//! about equal word counts, each with its own generator seeded from `(seed, epoch, shard)`.
//! Shards train in rounds of about `sync_words` words: every shard starts the round from the
//! shared matrices, trains a private copy, and the round ends by adding every shard's change
//! to the shared matrices, in shard order. So a run depends only on the seed, the corpus and
//! the thread count, never on timing (`word2vec.c`'s Hogwild threads race on shared rows);
//! with one thread the shard trains the shared matrices in place.

use std::ops::Range;
use std::time::Instant;

use keel_kernels::embed::sgns_step;
use keel_kernels::isa::{current_isa, with_isa};
use rand::rngs::StdRng;
use rand::RngExt;
use rayon::prelude::*;

use super::sampling::{keep_probabilities, UnigramTable};
use super::similarity::WordVectors;
use super::vocab::Vocab;
use super::{check_corpus, generator, EpochStats};
use crate::error::{LayerError, Result};

/// word2vec's hyper-parameters; `Default` is gensim's `Word2Vec(sg=1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Word2VecConfig {
    /// The length of the vectors (100).
    pub dim: usize,
    /// The largest distance between a center and a context word (5).
    pub window: usize,
    /// Negative samples per (center, context) pair (5).
    pub negatives: usize,
    /// Passes over the corpus (5).
    pub epochs: usize,
    /// The learning rate at the start (0.025) ...
    pub lr: f32,
    /// ... decaying linearly to this at the end (0.0001).
    pub min_lr: f32,
    /// The subsampling threshold of [`keep_probabilities`] (1e-3; 0 keeps every word).
    pub sample: f64,
    /// The exponent of the negative-sampling distribution (0.75).
    pub ns_exponent: f64,
    /// Seeds the initial vectors, the subsampling, windows and negatives.
    pub seed: u64,
    /// Shards trained in parallel (0: the threads of the rayon pool, capped by
    /// `keel_kernels::parallel::set_max_threads`). The result depends on it.
    pub threads: usize,
    /// Words each shard reads between two merges (10 000).
    pub sync_words: usize,
}

impl Default for Word2VecConfig {
    fn default() -> Self {
        Word2VecConfig {
            dim: 100,
            window: 5,
            negatives: 5,
            epochs: 5,
            lr: 0.025,
            min_lr: 0.0001,
            sample: 1e-3,
            ns_exponent: 0.75,
            seed: 1,
            threads: 0,
            sync_words: 10_000,
        }
    }
}

impl Word2VecConfig {
    /// Errors on a field out of its domain, naming it.
    fn check(&self) -> Result<()> {
        let bad = |what: &str, expected: &str| {
            Err(LayerError::Data(format!("word2vec: {what} must be {expected}")))
        };
        if self.dim == 0 || self.window == 0 || self.epochs == 0 || self.sync_words == 0 {
            return bad("dim, window, epochs and sync_words", ">= 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return bad("lr and min_lr", "finite with 0 <= min_lr <= lr, lr > 0");
        }
        if !(self.sample >= 0.0 && self.sample.is_finite()) {
            return bad("sample", "finite and >= 0");
        }
        Ok(())
    }
}

/// A trained skip-gram model: the input (word) vectors, which are the embeddings, and the
/// output (context) vectors, both `(vocab, dim)` row-major; and what each epoch did.
#[derive(Debug, Clone)]
pub struct Word2Vec {
    /// The length of the vectors.
    pub dim: usize,
    /// `(vocab, dim)`: `v_w`, the embeddings.
    pub input: Vec<f32>,
    /// `(vocab, dim)`: `u_w`, the vectors of words as contexts.
    pub output: Vec<f32>,
    /// One entry per epoch: the mean loss per (center, context) group, words read and their
    /// rate, the learning rate at the end.
    pub history: Vec<EpochStats>,
}

/// What [`train_round`] reads, shared by every shard.
struct Setup<'a> {
    corpus: &'a [Vec<u32>],
    keep: Vec<f32>,
    table: UnigramTable,
    cfg: &'a Word2VecConfig,
    /// Words of all epochs together, for the learning-rate decay.
    total_words: u64,
    threads: u64,
}

impl Setup<'_> {
    /// The learning rate after `done` words of the whole run.
    fn lr(&self, done: u64) -> f32 {
        let left = 1.0 - done as f64 / (self.total_words + 1) as f64;
        ((f64::from(self.cfg.lr) * left) as f32).max(self.cfg.min_lr)
    }
}

/// One shard's position and scratch within an epoch.
struct ShardState {
    documents: Range<usize>,
    next: usize,
    rng: StdRng,
    work: Vec<f32>,
    targets: Vec<u32>,
    kept: Vec<u32>,
    loss: f64,
    groups: u64,
}

/// A shard with its private copy of the matrices (empty with one thread).
struct Shard {
    state: ShardState,
    input: Vec<f32>,
    output: Vec<f32>,
    /// Whether the last round read any word (else its copy is stale and not merged).
    active: bool,
}

impl Word2Vec {
    /// Trains on `corpus` (documents of ids below `vocab.len()`, e.g. [`Vocab::encode`]'s),
    /// calling `on_epoch` after each epoch (to log it).
    ///
    /// Input vectors start uniform in `±0.5/dim`, output vectors at zero (`word2vec.c`).
    /// Errors: a configuration field out of domain, an id out of range, an empty corpus.
    pub fn train(
        corpus: &[Vec<u32>],
        vocab: &Vocab,
        cfg: &Word2VecConfig,
        on_epoch: &mut dyn FnMut(&EpochStats),
    ) -> Result<Word2Vec> {
        cfg.check()?;
        let words = check_corpus(corpus, vocab.len())?;
        let (n, dim) = (vocab.len(), cfg.dim);
        let mut rng = generator(cfg.seed, 0, 0);
        let scale = 0.5 / dim as f32;
        let mut input: Vec<f32> = (0..n * dim).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect();
        let mut output = vec![0.0f32; n * dim];
        let threads = match cfg.threads {
            0 => keel_kernels::parallel::current_num_threads(),
            t => t,
        }
        .clamp(1, corpus.len());
        let setup = Setup {
            corpus,
            keep: keep_probabilities(vocab.counts(), cfg.sample),
            table: UnigramTable::new(vocab.counts(), cfg.ns_exponent)?,
            cfg,
            total_words: words * cfg.epochs as u64,
            threads: threads as u64,
        };
        let isa = current_isa();
        let mut history = Vec::with_capacity(cfg.epochs);
        let mut shards: Vec<Shard> = Vec::new();
        for epoch in 1..=cfg.epochs {
            let start = Instant::now();
            let done_before = words * (epoch as u64 - 1);
            shards.clear();
            for (index, documents) in split_by_words(corpus, threads).into_iter().enumerate() {
                let copies = if threads > 1 { n * dim } else { 0 };
                shards.push(Shard {
                    state: ShardState {
                        next: documents.start,
                        documents,
                        rng: generator(cfg.seed, epoch as u64, index as u64 + 1),
                        work: vec![0.0; dim],
                        targets: Vec::with_capacity(cfg.negatives + 1),
                        kept: Vec::new(),
                        loss: 0.0,
                        groups: 0,
                    },
                    input: vec![0.0; copies],
                    output: vec![0.0; copies],
                    active: false,
                });
            }
            let mut done = done_before;
            loop {
                let round = if threads == 1 {
                    train_round(&mut shards[0].state, &setup, &mut input, &mut output, done)?
                } else {
                    let (shared_in, shared_out) = (&input, &output);
                    let rounds: Vec<Result<u64>> = shards
                        .par_iter_mut()
                        .map(|shard| {
                            if shard.state.next >= shard.state.documents.end {
                                shard.active = false;
                                return Ok(0);
                            }
                            shard.input.copy_from_slice(shared_in);
                            shard.output.copy_from_slice(shared_out);
                            let Shard { state, input, output, active } = shard;
                            *active = true;
                            with_isa(isa, || train_round(state, &setup, input, output, done))?
                        })
                        .collect();
                    let round = rounds.into_iter().sum::<Result<u64>>()?;
                    let active: Vec<&Shard> = shards.iter().filter(|s| s.active).collect();
                    merge(&mut input, &active.iter().map(|s| s.input.as_slice()).collect::<Vec<_>>());
                    merge(&mut output, &active.iter().map(|s| s.output.as_slice()).collect::<Vec<_>>());
                    round
                };
                if round == 0 {
                    break;
                }
                done += round;
            }
            let (loss, groups) =
                shards.iter().fold((0.0, 0), |(l, g), s| (l + s.state.loss, g + s.state.groups));
            let stats = EpochStats {
                epoch,
                loss: if groups == 0 { 0.0 } else { loss / groups as f64 },
                items: words,
                seconds: start.elapsed().as_secs_f64(),
                lr: f64::from(setup.lr(done)),
            };
            on_epoch(&stats);
            history.push(stats);
        }
        Ok(Word2Vec { dim, input, output, history })
    }

    /// The input vectors under the vocabulary's words.
    pub fn vectors(&self, vocab: &Vocab) -> Result<WordVectors> {
        WordVectors::new(vocab.words().to_vec(), self.dim, self.input.clone())
    }
}

/// Trains `state`'s next documents, about `sync_words` words, on `input`/`output`; `done`
/// is the run's word count at the start of the round (every shard's), from which the
/// learning rate decays. Returns the words read (0 once the shard is through).
fn train_round(
    state: &mut ShardState,
    setup: &Setup<'_>,
    input: &mut [f32],
    output: &mut [f32],
    done: u64,
) -> Result<u64> {
    let cfg = setup.cfg;
    let dim = cfg.dim;
    let mut read = 0u64;
    while state.next < state.documents.end && read < cfg.sync_words as u64 {
        let document = &setup.corpus[state.next];
        state.next += 1;
        // Every shard reads at about this pace, so the run has read about `threads` times
        // this shard's words since the round began.
        let lr = setup.lr(done + setup.threads * read);
        read += document.len() as u64;
        state.kept.clear();
        for &word in document {
            let keep = setup.keep[word as usize];
            if keep >= 1.0 || keep > state.rng.random::<f32>() {
                state.kept.push(word);
            }
        }
        for (pos, &center) in state.kept.iter().enumerate() {
            let reach = cfg.window - state.rng.random_range(0..cfg.window);
            let window = pos.saturating_sub(reach)..(pos + reach + 1).min(state.kept.len());
            for other in window.filter(|&other| other != pos) {
                let context = state.kept[other];
                state.targets.clear();
                state.targets.push(context);
                for _ in 0..cfg.negatives {
                    // A draw of the context word itself is skipped (word2vec.c).
                    let negative = setup.table.sample(state.rng.random::<f64>());
                    if negative != context {
                        state.targets.push(negative);
                    }
                }
                let row = &mut input[center as usize * dim..][..dim];
                state.loss += f64::from(sgns_step(row, output, &state.targets, lr, &mut state.work)?);
                state.groups += 1;
            }
        }
    }
    Ok(read)
}

/// `shared += Σ_s (copy_s - shared)`, element by element in shard order: every shard's
/// change over the round.
fn merge(shared: &mut [f32], copies: &[&[f32]]) {
    const CHUNK: usize = 1 << 14;
    shared.par_chunks_mut(CHUNK).enumerate().for_each(|(k, chunk)| {
        let at = k * CHUNK;
        for (i, value) in chunk.iter_mut().enumerate() {
            let base = *value;
            *value = copies.iter().fold(base, |sum, copy| sum + (copy[at + i] - base));
        }
    });
}

/// `parts` contiguous ranges of documents holding about equal word counts (each non-empty
/// when there are at least `parts` documents).
fn split_by_words(corpus: &[Vec<u32>], parts: usize) -> Vec<Range<usize>> {
    let total: usize = corpus.iter().map(Vec::len).sum();
    let mut ranges = Vec::with_capacity(parts);
    let (mut start, mut seen) = (0, 0);
    for (index, document) in corpus.iter().enumerate() {
        seen += document.len();
        let part = ranges.len() + 1;
        let left_docs = corpus.len() - index - 1;
        let left_parts = parts - part;
        if part < parts && (seen * parts >= total * part || left_docs == left_parts) {
            ranges.push(start..index + 1);
            start = index + 1;
        }
    }
    ranges.push(start..corpus.len());
    ranges
}
