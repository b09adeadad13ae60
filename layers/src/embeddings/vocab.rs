//! The vocabulary: the words kept for training, their ids and counts.

use std::collections::HashMap;

use crate::error::{LayerError, Result};

/// The words seen at least `min_count` times, with their counts, most frequent first (ties
/// in alphabetical order, so the ids do not depend on hashing): id 0 is the most frequent
/// word.
///
/// ```
/// use keel_layers::embeddings::{tokenize, Vocab};
/// # fn main() -> keel_layers::Result<()> {
/// let documents = vec![tokenize("The cat sat. The dog sat!"), tokenize("A cat.")];
/// assert_eq!(documents[0], ["the", "cat", "sat", "the", "dog", "sat"]);
/// let vocab = Vocab::from_documents(&documents, 2)?; // the words seen at least twice
/// assert_eq!(vocab.words(), ["cat", "sat", "the"]); // equal counts: alphabetical
/// assert_eq!(vocab.id("dog"), None);
/// assert_eq!(vocab.encode(&documents), [vec![2, 0, 1, 2, 1], vec![0]]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    words: Vec<String>,
    counts: Vec<u64>,
    ids: HashMap<String, u32>,
}

impl Vocab {
    /// Counts the words of `documents` and keeps those seen at least `min_count` times
    /// (word2vec's `min_count`: rare words have too few contexts to learn from).
    ///
    /// Errors: no word reaches `min_count`, or more words than `u32` ids reach.
    pub fn from_documents(documents: &[Vec<String>], min_count: u64) -> Result<Vocab> {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for word in documents.iter().flatten() {
            *counts.entry(word.as_str()).or_default() += 1;
        }
        let mut kept: Vec<(&str, u64)> =
            counts.into_iter().filter(|&(_, count)| count >= min_count).collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        Self::from_counts(kept.into_iter().map(|(word, count)| (word.to_owned(), count)))
    }

    /// A vocabulary of the given `(word, count)` pairs, ids in the order given.
    ///
    /// Errors: no word, a word twice, a count of 0, or more words than `u32` ids reach.
    pub fn from_counts(pairs: impl IntoIterator<Item = (String, u64)>) -> Result<Vocab> {
        let (mut words, mut counts, mut ids) = (Vec::new(), Vec::new(), HashMap::new());
        for (word, count) in pairs {
            let id =
                u32::try_from(words.len()).map_err(|_| LayerError::Data("more than 2^32 words".into()))?;
            if count == 0 {
                return Err(LayerError::Data(format!("vocabulary: word {word:?} has count 0")));
            }
            if ids.insert(word.clone(), id).is_some() {
                return Err(LayerError::Data(format!("vocabulary: word {word:?} appears twice")));
            }
            words.push(word);
            counts.push(count);
        }
        if words.is_empty() {
            return Err(LayerError::Data("vocabulary: no word (is min_count above every count?)".into()));
        }
        Ok(Vocab { words, counts, ids })
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Never true: a vocabulary holds at least one word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word`, if kept.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.ids.get(word).copied()
    }

    /// The word of `id` (panics if `id >= len()`).
    pub fn word(&self, id: u32) -> &str {
        &self.words[id as usize]
    }

    /// Every word, in id order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The count of every word, in id order.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The sum of the counts: the corpus length once unknown words are dropped.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Each document as the ids of its kept words; words not in the vocabulary are dropped
    /// (as word2vec does, which brings their neighbours closer), and documents left empty
    /// too.
    pub fn encode(&self, documents: &[Vec<String>]) -> Vec<Vec<u32>> {
        documents
            .iter()
            .map(|doc| doc.iter().filter_map(|word| self.id(word)).collect::<Vec<u32>>())
            .filter(|ids| !ids.is_empty())
            .collect()
    }
}
