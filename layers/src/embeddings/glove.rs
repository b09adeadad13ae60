//! GloVe (Pennington, Socher and Manning 2014): word vectors fitted to the logarithms of
//! co-occurrence counts, as Stanford's `glove.c` computes them.
//!
//! 1. [`count_cooccurrences`]: `X_ij` sums `1/d` over every time word `j` appears `d <= window`
//!    positions from word `i` within a document, both directions (`glove.c`'s symmetric
//!    window), so `X` is symmetric;
//! 2. [`Glove::train`]: passes over the nonzero entries in a fresh seeded order each epoch,
//!    one AdaGrad step of [`glove_step`] each, on
//!    `J = Σ_ij f(X_ij)·(w_i·w̃_j + b_i + b̃_j - ln X_ij)²/2`,
//!    `f(x) = min(1, (x/x_max)^α)`;
//! 3. the word vectors are `w_i + w̃_i` (`glove.c`'s default output: the two sets of vectors
//!    play symmetric roles).
//!
//! **Threads and determinism.** Each epoch's shuffled order is cut into `threads` shards,
//! trained in rounds of `sync_entries` entries each and merged in shard order (the rounds of
//! [`rounds`](super::rounds)), so a run depends only on the seed, the entries and the thread
//! count (`glove.c`'s Hogwild threads race on shared rows).

use std::collections::HashMap;
use std::time::Instant;

use keel_kernels::embed::{glove_step, GloveConfig};
use keel_kernels::isa::current_isa;
use rand::seq::SliceRandom;
use rand::RngExt;

use super::rounds::{run_rounds, shard_count, Shard};
use super::similarity::WordVectors;
use super::vocab::Vocab;
use super::{check_corpus, generator, EpochStats};
use crate::error::{LayerError, Result};

/// One nonzero co-occurrence entry `X_ij`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cooccurrence {
    /// `i`, the word.
    pub word: u32,
    /// `j`, the context word.
    pub context: u32,
    /// `X_ij > 0`.
    pub count: f32,
}

/// The nonzero entries of the co-occurrence matrix of `corpus` (ids below `vocab_len`) with
/// `1/distance` weights within `window` (see the module docs), sorted by `(word, context)`.
/// Sums are kept in `f64`, then rounded.
///
/// Errors: `window = 0`, an id out of range, an empty corpus.
///
/// ```
/// use keel_layers::embeddings::count_cooccurrences;
/// # fn main() -> keel_layers::Result<()> {
/// // One document of ids 0 1 2: 0 and 1 are 1 apart, 0 and 2 are 2 apart.
/// let entries = count_cooccurrences(&[vec![0, 1, 2]], 3, 2)?;
/// let count = |i, j| entries.iter().find(|e| (e.word, e.context) == (i, j)).map(|e| e.count);
/// assert_eq!((count(0, 1), count(0, 2), count(2, 0), count(0, 0)), (Some(1.0), Some(0.5), Some(0.5), None));
/// # Ok(())
/// # }
/// ```
pub fn count_cooccurrences(
    corpus: &[Vec<u32>],
    vocab_len: usize,
    window: usize,
) -> Result<Vec<Cooccurrence>> {
    if window == 0 {
        return Err(LayerError::Data("co-occurrences: window must be >= 1".into()));
    }
    check_corpus(corpus, vocab_len)?;
    let mut counts: HashMap<(u32, u32), f64> = HashMap::new();
    for document in corpus {
        for (pos, &word) in document.iter().enumerate() {
            for distance in 1..=window.min(pos) {
                let other = document[pos - distance];
                let weight = 1.0 / distance as f64;
                *counts.entry((word, other)).or_default() += weight;
                *counts.entry((other, word)).or_default() += weight;
            }
        }
    }
    let mut entries: Vec<Cooccurrence> = counts
        .into_iter()
        .map(|((word, context), count)| Cooccurrence { word, context, count: count as f32 })
        .collect();
    entries.sort_unstable_by_key(|e| (e.word, e.context));
    Ok(entries)
}

/// GloVe's training settings; `Default` is `glove.c`'s demo (50 dimensions, window 10,
/// 25 epochs, its step defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct GloveTrainConfig {
    /// The length of the vectors.
    pub dim: usize,
    /// Passes over the entries.
    pub epochs: usize,
    /// Seeds the initial vectors and the order of each epoch.
    pub seed: u64,
    /// `x_max`, `α`, the AdaGrad rate and the gradient clip of each step.
    pub step: GloveConfig,
    /// Shards trained in parallel (0: the threads of the rayon pool, capped by
    /// `keel_kernels::parallel::set_max_threads`). The result depends on it.
    pub threads: usize,
    /// Entries each shard reads between two merges (100 000).
    pub sync_entries: usize,
}

impl Default for GloveTrainConfig {
    fn default() -> Self {
        GloveTrainConfig {
            dim: 50,
            epochs: 25,
            seed: 1,
            step: GloveConfig::default(),
            threads: 0,
            sync_entries: 100_000,
        }
    }
}

/// A trained GloVe model: word and context rows `(vocab, dim + 1)`, each a vector then its
/// bias, and what each epoch did.
///
/// ```
/// use keel_layers::embeddings::{count_cooccurrences, tokenize, Glove, GloveTrainConfig, Vocab};
/// # fn main() -> keel_layers::Result<()> {
/// let lines = ["the cat chased the mouse", "the dog chased the cat", "a mouse ate the cheese"];
/// let documents: Vec<Vec<String>> = lines.iter().map(|line| tokenize(line)).collect();
/// let vocab = Vocab::from_documents(&documents, 1)?;
/// let entries = count_cooccurrences(&vocab.encode(&documents), vocab.len(), 3)?;
/// let config = GloveTrainConfig { dim: 8, epochs: 20, threads: 1, ..Default::default() };
/// let glove = Glove::train(&entries, vocab.len(), &config, &mut |_epoch| {})?;
/// assert!(glove.history[19].loss < glove.history[0].loss);
/// assert_eq!(glove.vectors(&vocab)?.dim(), 8);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Glove {
    /// The length of the vectors.
    pub dim: usize,
    /// `(vocab, dim + 1)`: `w_i`, then `b_i`.
    pub word: Vec<f32>,
    /// `(vocab, dim + 1)`: `w̃_j`, then `b̃_j`.
    pub context: Vec<f32>,
    /// One entry per epoch: the mean cost per entry, the entries read and their rate.
    pub history: Vec<EpochStats>,
}

impl Glove {
    /// Fits vectors for `vocab_len` words to `entries` (from [`count_cooccurrences`]),
    /// calling `on_epoch` after each epoch. Vectors and biases start uniform in `±0.5/dim`
    /// and the AdaGrad sums at 1 (`glove.c`).
    ///
    /// Errors: `dim` or `epochs` of 0, no entry, an id `>= vocab_len`, a count that is not
    /// finite and positive, a step setting out of domain.
    pub fn train(
        entries: &[Cooccurrence],
        vocab_len: usize,
        cfg: &GloveTrainConfig,
        on_epoch: &mut dyn FnMut(&EpochStats),
    ) -> Result<Glove> {
        cfg.step.check()?;
        if cfg.dim == 0 || cfg.epochs == 0 || cfg.sync_entries == 0 || entries.is_empty() {
            return Err(LayerError::Data(
                "GloVe: dim, epochs, sync_entries and the entries must be >= 1".into(),
            ));
        }
        if let Some(p) = entries.iter().position(|e| e.word.max(e.context) as usize >= vocab_len) {
            return Err(LayerError::Index {
                layer: "GloVe co-occurrences".into(),
                position: p,
                value: format!("({}, {})", entries[p].word, entries[p].context),
                expected: format!("word ids in 0..{vocab_len}"),
            });
        }
        let row = cfg.dim + 1;
        let mut rng = generator(cfg.seed, 0, 0);
        let scale = 1.0 / cfg.dim as f32;
        let mut init =
            || -> Vec<f32> { (0..vocab_len * row).map(|_| (rng.random::<f32>() - 0.5) * scale).collect() };
        // Word rows, context rows, and their AdaGrad sums (from 1).
        let mut matrices = vec![init(), init(), vec![1.0f32; vocab_len * row], vec![1.0f32; vocab_len * row]];
        let shards = shard_count(cfg.threads, entries.len());
        let isa = current_isa();
        let mut order: Vec<usize> = (0..entries.len()).collect();
        let (mut history, mut copies) = (Vec::with_capacity(cfg.epochs), Vec::new());
        for epoch in 1..=cfg.epochs {
            let start = Instant::now();
            order.shuffle(&mut generator(cfg.seed, epoch as u64, 0));
            let mut parts: Vec<GloveShard<'_>> = order
                .chunks(entries.len().div_ceil(shards))
                .map(|order| GloveShard { entries, order, next: 0, cfg, row, cost: 0.0 })
                .collect();
            run_rounds(isa, &mut matrices, &mut parts, &mut copies, 0)?;
            let cost: f64 = parts.iter().map(|p| p.cost).sum();
            let stats = EpochStats {
                epoch,
                loss: cost / entries.len() as f64,
                items: entries.len() as u64,
                seconds: start.elapsed().as_secs_f64(),
                lr: f64::from(cfg.step.lr),
            };
            on_epoch(&stats);
            history.push(stats);
        }
        let context = matrices.swap_remove(1);
        let word = matrices.swap_remove(0);
        Ok(Glove { dim: cfg.dim, word, context, history })
    }

    /// The word vectors `w_i + w̃_i` under the vocabulary's words.
    pub fn vectors(&self, vocab: &Vocab) -> Result<WordVectors> {
        let row = self.dim + 1;
        let data = self
            .word
            .chunks_exact(row)
            .zip(self.context.chunks_exact(row))
            .flat_map(|(w, c)| w[..self.dim].iter().zip(&c[..self.dim]).map(|(a, b)| a + b))
            .collect();
        WordVectors::new(vocab.words().to_vec(), self.dim, data)
    }
}

/// One shard's part of an epoch's order, its position and its cost.
struct GloveShard<'a> {
    entries: &'a [Cooccurrence],
    order: &'a [usize],
    next: usize,
    cfg: &'a GloveTrainConfig,
    row: usize,
    cost: f64,
}

impl Shard for GloveShard<'_> {
    /// Steps through the next `sync_entries` entries on `[word, context, gradsq_word,
    /// gradsq_context]`.
    fn round(&mut self, matrices: &mut [&mut [f32]], _done: u64) -> Result<u64> {
        let [word, context, gradsq_word, gradsq_context] = matrices else {
            unreachable!("GloVe trains four matrices");
        };
        let row = self.row;
        let end = (self.next + self.cfg.sync_entries).min(self.order.len());
        for &k in &self.order[self.next..end] {
            let e = self.entries[k];
            let (i, j) = (e.word as usize * row, e.context as usize * row);
            self.cost += f64::from(glove_step(
                &self.cfg.step,
                e.count,
                &mut word[i..i + row],
                &mut context[j..j + row],
                &mut gradsq_word[i..i + row],
                &mut gradsq_context[j..j + row],
            )?);
        }
        let read = (end - self.next) as u64;
        self.next = end;
        Ok(read)
    }

    fn finished(&self) -> bool {
        self.next >= self.order.len()
    }
}
