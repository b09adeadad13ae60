//! Word embeddings: learning word vectors from a corpus and using them.
//!
//! One concern per file:
//! - [`corpus`](read_documents_gz): reading documents of word tokens ([`tokenize`]);
//! - [`Vocab`]: the words kept, their ids and counts;
//! - sampling: the unigram^¾ negative-sampling table ([`UnigramTable`]) and frequent-word
//!   subsampling ([`keep_probabilities`]);
//! - [`Word2Vec`]: skip-gram with negative sampling ([`Word2VecConfig`]);
//! - [`Glove`]: co-occurrence counts ([`count_cooccurrences`]) and GloVe's weighted least
//!   squares ([`GloveTrainConfig`]);
//! - [`WordVectors`]: cosine similarity, nearest neighbours, analogies `a : b :: c : ?`;
//! - debiasing ([`neutralize`], [`equalize`], bias directions [`bias_direction`] and
//!   [`bias_direction_pca`]), as the course does it after Bolukbasi et al. 2016.
//!
//! Every training step runs in `keel_kernels::embed` ([`sgns_step`], [`glove_step`]), and
//! similarity scores in its [`cosine_similarity`].
//!
//! [`sgns_step`]: keel_kernels::embed::sgns_step
//! [`glove_step`]: keel_kernels::embed::glove_step
//! [`cosine_similarity`]: keel_kernels::embed::cosine_similarity

mod corpus;
mod debias;
mod glove;
mod rounds;
mod sampling;
mod sgns;
mod similarity;
mod vocab;

use std::fmt;

use rand::rngs::StdRng;
use rand::SeedableRng;

pub use corpus::{read_documents_gz, tokenize};
pub use debias::{bias_direction, bias_direction_pca, equalize, neutralize, projection};
pub use glove::{count_cooccurrences, Cooccurrence, Glove, GloveTrainConfig};
pub use sampling::{keep_probabilities, UnigramTable};
pub use sgns::{Word2Vec, Word2VecConfig};
pub use similarity::{cosine, WordVectors};
pub use vocab::Vocab;

use crate::error::{LayerError, Result};

/// What one epoch of an embedding trainer did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The mean loss: per (center, context) group for word2vec, per co-occurrence entry
    /// (`½·f(x)·(…)²`) for GloVe, each taken before its step.
    pub loss: f64,
    /// What the epoch read: corpus words (before subsampling) for word2vec, co-occurrence
    /// entries for GloVe.
    pub items: u64,
    /// Wall time of the epoch.
    pub seconds: f64,
    /// The learning rate at the end of the epoch.
    pub lr: f64,
}

impl EpochStats {
    /// `items / seconds`.
    pub fn items_per_sec(&self) -> f64 {
        self.items as f64 / self.seconds.max(1e-9)
    }
}

impl fmt::Display for EpochStats {
    /// `epoch   3: loss 2.3456 | lr 1.23e-2 | 123456 items/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "epoch {:>3}: loss {:.4} | lr {:.2e} | {:.0} items/s",
            self.epoch,
            self.loss,
            self.lr,
            self.items_per_sec()
        )
    }
}

/// Checks that every id of `corpus` is below `vocab_len` and that it holds a word; returns
/// its word count.
fn check_corpus(corpus: &[Vec<u32>], vocab_len: usize) -> Result<u64> {
    for (d, document) in corpus.iter().enumerate() {
        if let Some(p) = document.iter().position(|&id| id as usize >= vocab_len) {
            return Err(LayerError::Index {
                layer: "corpus".into(),
                position: p,
                value: format!("{} (document {d})", document[p]),
                expected: format!("a word id in 0..{vocab_len}"),
            });
        }
    }
    let words: u64 = corpus.iter().map(|d| d.len() as u64).sum();
    if words == 0 {
        return Err(LayerError::Data("embedding training: the corpus has no word".into()));
    }
    Ok(words)
}

/// The generator of stream `(epoch, stream)` of a run seeded with `seed` (SplitMix-style
/// mixing, so nearby seeds and streams give unrelated sequences).
fn generator(seed: u64, epoch: u64, stream: u64) -> StdRng {
    let mut z = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}
