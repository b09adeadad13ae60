//! Word vectors from the bundled fortunes corpus: word2vec (skip-gram with negative
//! sampling) and GloVe, then nearest neighbours and analogies.
//!
//! ```text
//! cargo run --release --example word2vec
//! ```
//!
//! The corpus is about 441,000 words of BSD `fortune` entries (quotes, jokes, prose);
//! entries are documents, and no training window crosses one. Words seen fewer than 5 times
//! are dropped. word2vec reads each kept word as a center and learns to tell its context
//! words (within a random window of up to 5) from 5 words drawn from the unigram^¾
//! distribution, `-ln σ(u_o·v_c) - Σ ln σ(-u_n·v_c)`; GloVe fits `w_i·w̃_j + b_i + b̃_j` to
//! `ln X_ij`, the log co-occurrence counts, weighted by `f(X_ij)`. A corpus this small gives
//! rough vectors: neighbours of common words are plausible, analogies are hit and miss.
//!
//! Both loss curves are written to `target/word2vec_loss.svg` and `target/glove_loss.svg`.

use keel::layers::embeddings::{
    count_cooccurrences, read_documents_gz, Glove, GloveTrainConfig, Vocab, Word2Vec, Word2VecConfig,
    WordVectors,
};
use keel::layers::plot_series;

/// Words whose neighbours are printed.
const PROBES: [&str; 6] = ["money", "love", "computer", "god", "war", "night"];
/// Analogies `a : b :: c : ?`.
const ANALOGIES: [[&str; 3]; 3] = [["he", "his", "she"], ["man", "men", "woman"], ["good", "better", "bad"]];

fn show(name: &str, vectors: &WordVectors) -> keel::layers::Result<()> {
    println!("\n{name}: nearest neighbours (cosine)");
    for word in PROBES {
        let neighbours = vectors.nearest(word, 5)?;
        let list: Vec<String> = neighbours.iter().map(|(w, s)| format!("{w} {s:.2}")).collect();
        println!("  {word:<9} {}", list.join(", "));
    }
    println!("{name}: analogies a : b :: c : ?");
    for [a, b, c] in ANALOGIES {
        let answers = vectors.analogy(a, b, c, 3)?;
        let list: Vec<String> = answers.iter().map(|(w, s)| format!("{w} {s:.2}")).collect();
        println!("  {a} : {b} :: {c} : {}", list.join(", "));
    }
    Ok(())
}

fn main() -> keel::layers::Result<()> {
    let documents = read_documents_gz("data/fortunes-corpus.txt.gz")?;
    let vocab = Vocab::from_documents(&documents, 5)?;
    let corpus = vocab.encode(&documents);
    let words: usize = corpus.iter().map(Vec::len).sum();
    println!(
        "{} documents, {} words in the vocabulary of {} words (min count 5), {} threads",
        corpus.len(),
        words,
        vocab.len(),
        keel::kernels::parallel::current_num_threads()
    );

    let cfg = Word2VecConfig { dim: 64, epochs: 10, seed: 42, ..Word2VecConfig::default() };
    println!(
        "\nword2vec: dim {}, window {}, {} negatives, subsampling {}",
        cfg.dim, cfg.window, cfg.negatives, cfg.sample
    );
    let w2v = Word2Vec::train(&corpus, &vocab, &cfg, &mut |e| {
        println!(
            "  epoch {}: loss {:.4} | lr {:.2e} | {:.0} words/s | {:.2} s",
            e.epoch,
            e.loss,
            e.lr,
            e.items_per_sec(),
            e.seconds
        )
    })?;
    let losses: Vec<f64> = w2v.history.iter().map(|e| e.loss).collect();
    let path = plot_series("target/word2vec_loss.svg", "word2vec loss per group", &[("skip-gram", &losses)])?;
    println!("  loss curve: {}", path.display());
    show("word2vec", &w2v.vectors(&vocab)?)?;

    let entries = count_cooccurrences(&corpus, vocab.len(), 10)?;
    let step = keel::kernels::embed::GloveConfig { x_max: 10.0, ..Default::default() };
    let glove_cfg = GloveTrainConfig { dim: 64, epochs: 15, seed: 42, step, ..GloveTrainConfig::default() };
    println!("\nGloVe: dim {}, window 10, {} nonzero co-occurrences", glove_cfg.dim, entries.len());
    let glove = Glove::train(&entries, vocab.len(), &glove_cfg, &mut |e| {
        println!("  epoch {:>2}: cost {:.4} | {:.0} entries/s", e.epoch, e.loss, e.items_per_sec())
    })?;
    let costs: Vec<f64> = glove.history.iter().map(|e| e.loss).collect();
    let path = plot_series("target/glove_loss.svg", "GloVe cost per entry", &[("GloVe", &costs)])?;
    println!("  cost curve: {}", path.display());
    show("GloVe", &glove.vectors(&vocab)?)?;
    Ok(())
}
