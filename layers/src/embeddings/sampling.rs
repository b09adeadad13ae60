//! The two random choices of word2vec: which words to drop (frequent-word subsampling) and
//! which negatives to draw (the unigram distribution raised to ¾).

use crate::error::{LayerError, Result};

/// Draws word ids with probability `P(w) = count(w)^power / Σ count^power` (word2vec's
/// noise distribution, `power = 0.75`: frequent words are drawn less than their share, rare
/// ones more). A cumulative table searched by bisection, as gensim's `cum_table`.
#[derive(Debug, Clone, PartialEq)]
pub struct UnigramTable {
    /// `cumulative[i] = Σ_{j <= i} P(j)`, the last exactly 1.
    cumulative: Vec<f64>,
}

impl UnigramTable {
    /// The table of `counts^power`.
    ///
    /// Errors: no count, a count of 0 (no word could be drawn: not a vocabulary's), or a
    /// `power` that is negative or not finite.
    pub fn new(counts: &[u64], power: f64) -> Result<UnigramTable> {
        if counts.is_empty() || counts.contains(&0) {
            return Err(LayerError::Data("unigram table: counts must be non-empty and >= 1".into()));
        }
        if !(power.is_finite() && power >= 0.0) {
            return Err(LayerError::Data(format!(
                "unigram table: power must be finite and >= 0, got {power}"
            )));
        }
        let mut cumulative: Vec<f64> = counts
            .iter()
            .scan(0.0, |sum, &c| {
                *sum += (c as f64).powf(power);
                Some(*sum)
            })
            .collect();
        let total = *cumulative.last().expect("non-empty");
        cumulative.iter_mut().for_each(|c| *c /= total);
        *cumulative.last_mut().expect("non-empty") = 1.0;
        Ok(UnigramTable { cumulative })
    }

    /// The id whose slice of `[0, 1)` holds `u` (a uniform draw in `[0, 1)`).
    pub fn sample(&self, u: f64) -> u32 {
        let i = self.cumulative.partition_point(|&c| c <= u);
        i.min(self.cumulative.len() - 1) as u32
    }

    /// `P(id)`.
    pub fn probability(&self, id: u32) -> f64 {
        let i = id as usize;
        self.cumulative[i] - if i == 0 { 0.0 } else { self.cumulative[i - 1] }
    }

    /// The number of ids.
    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// Never true: a table has at least one id.
    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }
}

/// The probability of keeping each occurrence of each word under frequent-word subsampling
/// with threshold `sample` (word2vec.c's and gensim's formula, PyTorch tutorials' too):
/// with `f = count/total`,
///
/// ```text
/// keep(w) = min(1, (√(f/sample) + 1)·sample/f)
/// ```
///
/// so words rarer than about `sample` are always kept and a word of frequency `f ≫ sample`
/// is kept with probability about `√(sample/f)` (the paper's `1 - √(t/f)` discard rule).
/// `sample = 0` keeps everything.
pub fn keep_probabilities(counts: &[u64], sample: f64) -> Vec<f32> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&count| {
            if sample <= 0.0 || count == 0 {
                return 1.0;
            }
            let threshold = sample * total as f64;
            let c = count as f64;
            (((c / threshold).sqrt() + 1.0) * threshold / c).min(1.0) as f32
        })
        .collect()
}
