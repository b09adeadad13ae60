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
//! about equal word counts, each with its own generator seeded from `(seed, epoch, shard)`,
//! trained in rounds of about `sync_words` words each, merged in shard order (the rounds of
//! [`rounds`](super::rounds)). So a run depends only on the seed, the corpus and the thread
//! count, never on timing (`word2vec.c`'s Hogwild threads race on shared rows); with one
//! thread the shard trains the shared matrices in place.

use std::ops::Range;
use std::time::Instant;

use keel_kernels::embed::sgns_step;
use keel_kernels::isa::current_isa;
use rand::rngs::StdRng;
use rand::RngExt;

use super::rounds::{run_rounds, shard_count, Shard};
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
///
/// ```
/// use keel_layers::embeddings::{tokenize, Vocab, Word2Vec, Word2VecConfig};
/// # fn main() -> keel_layers::Result<()> {
/// let lines = ["the cat chased the mouse", "the dog chased the cat", "a mouse ate the cheese"];
/// let documents: Vec<Vec<String>> = lines.iter().cycle().take(30).map(|line| tokenize(line)).collect();
/// let vocab = Vocab::from_documents(&documents, 1)?;
/// let corpus = vocab.encode(&documents);
/// let config =
///     Word2VecConfig { dim: 8, window: 2, epochs: 10, sample: 0.0, threads: 1, ..Default::default() };
/// let model = Word2Vec::train(&corpus, &vocab, &config, &mut |_epoch| {})?;
/// assert!(model.history[9].loss < model.history[0].loss);
/// let vectors = model.vectors(&vocab)?;
/// assert_eq!((vectors.len(), vectors.dim()), (vocab.len(), 8));
/// # Ok(())
/// # }
/// ```
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

/// What every shard reads.
struct Setup<'a> {
    corpus: &'a [Vec<u32>],
    keep: Vec<f32>,
    table: UnigramTable,
    cfg: &'a Word2VecConfig,
    /// Words of all epochs together, for the learning-rate decay.
    total_words: u64,
    shards: u64,
}

impl Setup<'_> {
    /// The learning rate after `done` words of the whole run.
    fn lr(&self, done: u64) -> f32 {
        let left = 1.0 - done as f64 / (self.total_words + 1) as f64;
        ((f64::from(self.cfg.lr) * left) as f32).max(self.cfg.min_lr)
    }
}

/// One shard's documents, position, generator and scratch within an epoch, and its sums.
struct SgnsShard<'a> {
    setup: &'a Setup<'a>,
    documents: Range<usize>,
    next: usize,
    rng: StdRng,
    work: Vec<f32>,
    targets: Vec<u32>,
    kept: Vec<u32>,
    loss: f64,
    groups: u64,
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
        let input: Vec<f32> = (0..n * dim).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect();
        // The input vectors, then the output vectors.
        let mut matrices = vec![input, vec![0.0f32; n * dim]];
        let shards = shard_count(cfg.threads, corpus.len());
        let setup = Setup {
            corpus,
            keep: keep_probabilities(vocab.counts(), cfg.sample),
            table: UnigramTable::new(vocab.counts(), cfg.ns_exponent)?,
            cfg,
            total_words: words * cfg.epochs as u64,
            shards: shards as u64,
        };
        let isa = current_isa();
        let (mut history, mut copies) = (Vec::with_capacity(cfg.epochs), Vec::new());
        for epoch in 1..=cfg.epochs {
            let start = Instant::now();
            let mut parts: Vec<SgnsShard<'_>> = split_by_words(corpus, shards)
                .into_iter()
                .enumerate()
                .map(|(index, documents)| SgnsShard {
                    setup: &setup,
                    next: documents.start,
                    documents,
                    rng: generator(cfg.seed, epoch as u64, index as u64 + 1),
                    work: vec![0.0; dim],
                    targets: Vec::with_capacity(cfg.negatives + 1),
                    kept: Vec::new(),
                    loss: 0.0,
                    groups: 0,
                })
                .collect();
            let done = run_rounds(isa, &mut matrices, &mut parts, &mut copies, words * (epoch as u64 - 1))?;
            let (loss, groups) = parts.iter().fold((0.0, 0), |(l, g), s| (l + s.loss, g + s.groups));
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
        let output = matrices.pop().expect("two matrices");
        let input = matrices.pop().expect("two matrices");
        Ok(Word2Vec { dim, input, output, history })
    }

    /// The input vectors under the vocabulary's words.
    pub fn vectors(&self, vocab: &Vocab) -> Result<WordVectors> {
        WordVectors::new(vocab.words().to_vec(), self.dim, self.input.clone())
    }
}

impl Shard for SgnsShard<'_> {
    /// Trains the next documents, about `sync_words` words, on `[input, output]`; `done`
    /// is the run's word count at the start of the round (every shard's), from which the
    /// learning rate decays.
    fn round(&mut self, matrices: &mut [&mut [f32]], done: u64) -> Result<u64> {
        let [input, output] = matrices else {
            unreachable!("word2vec trains two matrices");
        };
        let (setup, cfg) = (self.setup, self.setup.cfg);
        let dim = cfg.dim;
        let mut read = 0u64;
        while self.next < self.documents.end && read < cfg.sync_words as u64 {
            let document = &setup.corpus[self.next];
            self.next += 1;
            // Every shard reads at about this pace, so the run has read about `shards`
            // times this shard's words since the round began.
            let lr = setup.lr(done + setup.shards * read);
            read += document.len() as u64;
            self.kept.clear();
            for &word in document {
                let keep = setup.keep[word as usize];
                if keep >= 1.0 || keep > self.rng.random::<f32>() {
                    self.kept.push(word);
                }
            }
            for (pos, &center) in self.kept.iter().enumerate() {
                let reach = cfg.window - self.rng.random_range(0..cfg.window);
                let window = pos.saturating_sub(reach)..(pos + reach + 1).min(self.kept.len());
                for other in window.filter(|&other| other != pos) {
                    let context = self.kept[other];
                    self.targets.clear();
                    self.targets.push(context);
                    for _ in 0..cfg.negatives {
                        // A draw of the context word itself is skipped (word2vec.c).
                        let negative = setup.table.sample(self.rng.random::<f64>());
                        if negative != context {
                            self.targets.push(negative);
                        }
                    }
                    let row = &mut input[center as usize * dim..][..dim];
                    self.loss += f64::from(sgns_step(row, output, &self.targets, lr, &mut self.work)?);
                    self.groups += 1;
                }
            }
        }
        Ok(read)
    }

    fn finished(&self) -> bool {
        self.next >= self.documents.end
    }
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
