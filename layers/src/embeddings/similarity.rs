//! Using word vectors: cosine similarity, nearest neighbours and analogies.

use std::collections::HashMap;

use keel_kernels::embed::cosine_similarity;

use crate::error::{LayerError, Result};

/// Word vectors under their words: a `(words, dim)` row-major matrix and the word of each
/// row. Similarities are cosines, `u·v/(‖u‖·‖v‖)` (0 against a zero vector), computed by
/// the kernel [`cosine_similarity`] against every row at once.
///
/// ```
/// use keel_layers::embeddings::WordVectors;
/// # fn main() -> keel_layers::Result<()> {
/// // Two dimensions: royalty, then gender.
/// let words = ["man", "woman", "king", "queen", "apple"].map(String::from).to_vec();
/// let data = vec![0.0, 1.0, 0.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 0.0];
/// let vectors = WordVectors::new(words, 2, data)?;
/// assert!(vectors.similarity("king", "queen")?.abs() < 1e-6); // orthogonal
/// assert_eq!(vectors.nearest("king", 1)?[0].0, "man");
/// // man : king :: woman : ?
/// assert_eq!(vectors.analogy("man", "king", "woman", 1)?[0].0, "queen");
/// assert!(vectors.similarity("king", "pear").is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WordVectors {
    words: Vec<String>,
    ids: HashMap<String, usize>,
    dim: usize,
    data: Vec<f32>,
}

impl WordVectors {
    /// Row `r` of `data` `(words.len(), dim)` is the vector of `words[r]`.
    ///
    /// Errors: `dim = 0`, `data` of another length, a word twice.
    pub fn new(words: Vec<String>, dim: usize, data: Vec<f32>) -> Result<WordVectors> {
        if dim == 0 || data.len() != words.len() * dim {
            return Err(LayerError::TensorLength {
                shape: vec![words.len(), dim],
                expected: words.len() * dim,
                actual: data.len(),
            });
        }
        let mut ids = HashMap::with_capacity(words.len());
        for (row, word) in words.iter().enumerate() {
            if ids.insert(word.clone(), row).is_some() {
                return Err(LayerError::Data(format!("word vectors: {word:?} appears twice")));
            }
        }
        Ok(WordVectors { words, ids, dim, data })
    }

    /// The length of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there is no word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The words, in row order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The `(words, dim)` matrix.
    pub fn matrix(&self) -> &[f32] {
        &self.data
    }

    /// The vector of `word`, if known.
    pub fn get(&self, word: &str) -> Option<&[f32]> {
        self.ids.get(word).map(|&row| &self.data[row * self.dim..][..self.dim])
    }

    /// The vector of `word`, or an error naming it.
    pub fn vector(&self, word: &str) -> Result<&[f32]> {
        self.get(word).ok_or_else(|| LayerError::Data(format!("word {word:?} is not in the vocabulary")))
    }

    /// `cos(e_a, e_b)`. Errors: a word not in the vocabulary.
    pub fn similarity(&self, a: &str, b: &str) -> Result<f32> {
        cosine(self.vector(a)?, self.vector(b)?)
    }

    /// The `k` words most similar to `word` (itself excluded), best first.
    pub fn nearest(&self, word: &str, k: usize) -> Result<Vec<(String, f32)>> {
        self.nearest_to(self.vector(word)?, k, &[word])
    }

    /// The `k` words whose vectors are most similar to `query` (of `dim` values), leaving
    /// out the words of `exclude`, best first (ties in row order).
    ///
    /// Errors: `query` not of `dim` values.
    pub fn nearest_to(&self, query: &[f32], k: usize, exclude: &[&str]) -> Result<Vec<(String, f32)>> {
        if query.len() != self.dim {
            return Err(LayerError::Shape {
                layer: "word vectors".into(),
                expected: format!("a query of {} values", self.dim),
                actual: vec![query.len()],
            });
        }
        let mut scores = vec![0.0f32; self.len()];
        cosine_similarity(query, &self.data, &mut scores)?;
        let excluded: Vec<usize> = exclude.iter().filter_map(|w| self.ids.get(*w).copied()).collect();
        let mut ranked: Vec<usize> = (0..self.len()).filter(|r| !excluded.contains(r)).collect();
        // NaN scores (from NaN vectors) rank last.
        let key = |r: &usize| if scores[*r].is_nan() { f32::NEG_INFINITY } else { scores[*r] };
        ranked.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.cmp(b)));
        Ok(ranked.into_iter().take(k).map(|r| (self.words[r].clone(), scores[r])).collect())
    }

    /// The analogy `a : b :: c : ?` ("man : king :: woman : queen"): the `k` words nearest
    /// to `ê_b - ê_a + ê_c` (the unit vectors, as gensim's `most_similar` and the course's
    /// `complete_analogy` take cosines), leaving out `a`, `b` and `c`.
    ///
    /// Errors: a word not in the vocabulary.
    pub fn analogy(&self, a: &str, b: &str, c: &str, k: usize) -> Result<Vec<(String, f32)>> {
        let (ea, eb, ec) = (unit(self.vector(a)?), unit(self.vector(b)?), unit(self.vector(c)?));
        let target: Vec<f32> = ea.iter().zip(&eb).zip(&ec).map(|((a, b), c)| b - a + c).collect();
        self.nearest_to(&target, k, &[a, b, c])
    }
}

/// The cosine similarity `u·v/(‖u‖·‖v‖)` of two vectors of one length (0 if either is zero).
///
/// Errors: lengths that differ or are 0.
pub fn cosine(u: &[f32], v: &[f32]) -> Result<f32> {
    let mut score = [0.0f32];
    cosine_similarity(u, v, &mut score)?;
    Ok(score[0])
}

/// `v/‖v‖` (a zero vector stays zero).
fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    v.iter().map(|&x| if norm == 0.0 { 0.0 } else { (f64::from(x) / norm) as f32 }).collect()
}
