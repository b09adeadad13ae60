//! Word embeddings: vocabulary and tokens, the sampling rules, word2vec learning which words
//! co-occur, determinism, co-occurrence counts and GloVe's falling cost, nearest neighbours
//! and analogies on hand-built vectors, and the algebra of debiasing.

use keel_layers::embeddings::{
    bias_direction, bias_direction_pca, count_cooccurrences, equalize, keep_probabilities, neutralize,
    projection, read_documents_gz, tokenize, Glove, GloveTrainConfig, UnigramTable, Vocab, Word2Vec,
    Word2VecConfig, WordVectors,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

fn norm(a: &[f32]) -> f64 {
    dot(a, a).sqrt()
}

#[test]
fn tokens_and_vocabulary() {
    assert_eq!(
        tokenize("Don't PANIC: it's 42 o'clock -- 'quoted'!"),
        words("don't panic it's o'clock quoted")
    );
    let docs = vec![words("b a c a b a"), words("d c a"), words("e")];
    let vocab = Vocab::from_documents(&docs, 2).unwrap();
    // Most frequent first, ties alphabetical; "d" and "e" (seen once) dropped.
    assert_eq!(vocab.words(), &words("a b c")[..]);
    assert_eq!(vocab.counts(), &[4, 2, 2]);
    assert_eq!((vocab.id("c"), vocab.id("d")), (Some(2), None));
    assert_eq!(vocab.total(), 8);
    // Unknown words vanish from the documents, and documents left empty with them.
    assert_eq!(vocab.encode(&docs), vec![vec![1, 0, 2, 0, 1, 0], vec![2, 0]]);
    assert!(Vocab::from_documents(&docs, 10).is_err());
}

#[test]
fn bundled_corpus_reads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/fortunes-corpus.txt.gz");
    let docs = read_documents_gz(path).unwrap();
    let total: usize = docs.iter().map(Vec::len).sum();
    assert!(docs.len() > 10_000 && total > 350_000, "{} documents, {total} words", docs.len());
    let vocab = Vocab::from_documents(&docs, 5).unwrap();
    assert_eq!(vocab.word(0), "the");
    assert!(read_documents_gz("no/such/file.gz").is_err());
}

#[test]
fn subsampling_keeps_rare_words_and_thins_frequent_ones() {
    let counts = [100_000u64, 10_000, 1_000, 100, 10, 1];
    let total: u64 = counts.iter().sum();
    let sample = 1e-3;
    let keep = keep_probabilities(&counts, sample);
    for (i, (&c, &k)) in counts.iter().zip(&keep).enumerate() {
        let f = c as f64 / total as f64;
        let expected = (((f / sample).sqrt() + 1.0) * sample / f).min(1.0);
        assert!((f64::from(k) - expected).abs() < 1e-6, "word {i}: {k} vs {expected}");
    }
    assert!(keep.windows(2).all(|w| w[0] <= w[1]), "more frequent, less kept: {keep:?}");
    assert_eq!(keep[3..], [1.0, 1.0, 1.0], "words rarer than the threshold are always kept");
    // The most frequent word (f ≈ 0.9) is kept about √(t/f) of the time.
    assert!((keep[0] - 0.0344).abs() < 1e-3, "{}", keep[0]);
    assert!(keep_probabilities(&counts, 0.0).iter().all(|&k| k == 1.0));
}

#[test]
fn unigram_table_draws_count_to_the_three_quarters() {
    let counts = [81u64, 16, 1, 1];
    let table = UnigramTable::new(&counts, 0.75).unwrap();
    let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
    let total: f64 = weights.iter().sum();
    for (id, w) in weights.iter().enumerate() {
        assert!((table.probability(id as u32) - w / total).abs() < 1e-12);
    }
    // An even grid of uniform draws lands in each slice in proportion to its width.
    let n = 100_000;
    let mut hits = [0usize; 4];
    for k in 0..n {
        hits[table.sample((k as f64 + 0.5) / n as f64) as usize] += 1;
    }
    for (id, &h) in hits.iter().enumerate() {
        assert!((h as f64 / n as f64 - weights[id] / total).abs() < 2.0 / n as f64, "{id}: {hits:?}");
    }
    // Flatter than the counts: 81/1 becomes 27/1.
    assert!((table.probability(0) / table.probability(3) - 27.0).abs() < 1e-9);
    assert_eq!(table.sample(0.0), 0);
    assert_eq!(table.sample(0.999_999_999), 3);
    assert!(UnigramTable::new(&[3, 0], 0.75).is_err());
    assert!(UnigramTable::new(&[], 0.75).is_err());
}

/// Two topics whose words only ever appear with each other, shuffled into documents.
fn two_topic_corpus(seed: u64) -> (Vocab, Vec<Vec<u32>>) {
    let topics = [words("apple banana cherry grape lemon mango"), words("car truck bus train plane boat")];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut docs = Vec::new();
    for k in 0..300 {
        let mut doc = topics[k % 2].clone();
        doc.shuffle(&mut rng);
        docs.push(doc);
    }
    let vocab = Vocab::from_documents(&docs, 1).unwrap();
    let corpus = vocab.encode(&docs);
    (vocab, corpus)
}

fn small_w2v(seed: u64, threads: usize) -> Word2VecConfig {
    Word2VecConfig {
        dim: 16,
        window: 3,
        negatives: 4,
        epochs: 8,
        lr: 0.05,
        sample: 0.0,
        seed,
        threads,
        sync_words: 300,
        ..Word2VecConfig::default()
    }
}

/// Mean cosine within topics minus mean cosine across them.
fn topic_gap(vectors: &WordVectors) -> f64 {
    let topic = |w: &str| "apple banana cherry grape lemon mango".contains(w);
    let (mut within, mut across, mut nw, mut na) = (0.0, 0.0, 0, 0);
    for a in vectors.words() {
        for b in vectors.words() {
            if a < b {
                let s = f64::from(vectors.similarity(a, b).unwrap());
                if topic(a) == topic(b) {
                    within += s;
                    nw += 1;
                } else {
                    across += s;
                    na += 1;
                }
            }
        }
    }
    within / nw as f64 - across / na as f64
}

#[test]
fn skip_gram_brings_co_occurring_words_together() {
    let (vocab, corpus) = two_topic_corpus(3);
    for threads in [1, 2] {
        let model = Word2Vec::train(&corpus, &vocab, &small_w2v(5, threads), &mut |_| {}).unwrap();
        let vectors = model.vectors(&vocab).unwrap();
        let gap = topic_gap(&vectors);
        assert!(gap > 0.3, "{threads} threads: within-topic minus across-topic cosine {gap}");
        let nearest = vectors.nearest("apple", 3).unwrap();
        assert!(
            nearest.iter().all(|(w, _)| "banana cherry grape lemon mango".contains(w.as_str())),
            "{nearest:?}"
        );
        let history = &model.history;
        assert_eq!(history.len(), 8);
        assert!(history[7].loss < 0.85 * history[0].loss, "loss {} -> {}", history[0].loss, history[7].loss);
        assert!(history.iter().all(|e| e.items == 1800 && e.lr > 0.0));
        assert!(history[7].lr < history[0].lr, "linear decay");
    }
}

#[test]
fn skip_gram_is_deterministic_for_a_seed_and_thread_count() {
    let (vocab, corpus) = two_topic_corpus(4);
    for threads in [1, 2, 3] {
        let run = |seed| Word2Vec::train(&corpus, &vocab, &small_w2v(seed, threads), &mut |_| {}).unwrap();
        let (a, b, c) = (run(9), run(9), run(10));
        assert_eq!(a.input, b.input, "{threads} threads");
        assert_eq!(a.output, b.output);
        assert_eq!(
            a.history.iter().map(|e| e.loss).collect::<Vec<_>>(),
            b.history.iter().map(|e| e.loss).collect::<Vec<_>>()
        );
        assert_ne!(a.input, c.input, "another seed gives other vectors");
    }
    // Inside a two-thread pool, threads = 0 follows the pool: the same as threads = 2.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let in_pool = pool.install(|| Word2Vec::train(&corpus, &vocab, &small_w2v(9, 0), &mut |_| {}).unwrap());
    let two = Word2Vec::train(&corpus, &vocab, &small_w2v(9, 2), &mut |_| {}).unwrap();
    assert_eq!(in_pool.input, two.input);
}

#[test]
fn trainers_reject_bad_input() {
    let (vocab, corpus) = two_topic_corpus(1);
    let bad = [Word2VecConfig { dim: 0, ..small_w2v(1, 1) }, Word2VecConfig { lr: -1.0, ..small_w2v(1, 1) }];
    for cfg in bad {
        assert!(Word2Vec::train(&corpus, &vocab, &cfg, &mut |_| {}).is_err());
    }
    let out_of_range = vec![vec![0, 1, 99]];
    assert!(Word2Vec::train(&out_of_range, &vocab, &small_w2v(1, 1), &mut |_| {}).is_err());
    assert!(Word2Vec::train(&[vec![]], &vocab, &small_w2v(1, 1), &mut |_| {}).is_err());
    assert!(count_cooccurrences(&corpus, vocab.len(), 0).is_err());
    assert!(Glove::train(&[], vocab.len(), &GloveTrainConfig::default(), &mut |_| {}).is_err());
}

#[test]
fn cooccurrences_weigh_by_inverse_distance_symmetrically() {
    let corpus = vec![vec![0, 1, 2, 0], vec![2, 2]];
    let entries = count_cooccurrences(&corpus, 3, 2).unwrap();
    let get =
        |i: u32, j: u32| entries.iter().find(|e| e.word == i && e.context == j).map_or(0.0, |e| e.count);
    // Document 1: (0,1) d1, (1,2) d1, (2,0) d1, (0,2) d2, (1,0) d2; document 2: (2,2) d1.
    assert_eq!(get(0, 1), 1.5);
    assert_eq!(get(1, 2), 1.0);
    assert_eq!(get(0, 2), 1.5);
    assert_eq!(get(2, 2), 2.0);
    assert_eq!(get(0, 0), 0.0);
    for e in &entries {
        assert_eq!(e.count, get(e.context, e.word), "symmetric");
    }
    assert!(entries.windows(2).all(|w| (w[0].word, w[0].context) < (w[1].word, w[1].context)));
}

#[test]
fn glove_cost_falls_and_topics_separate() {
    let (vocab, corpus) = two_topic_corpus(6);
    let entries = count_cooccurrences(&corpus, vocab.len(), 4).unwrap();
    for threads in [1, 2] {
        let cfg = GloveTrainConfig {
            dim: 8,
            epochs: 30,
            seed: 2,
            threads,
            sync_entries: 40,
            ..GloveTrainConfig::default()
        };
        let model = Glove::train(&entries, vocab.len(), &cfg, &mut |_| {}).unwrap();
        let costs: Vec<f64> = model.history.iter().map(|e| e.loss).collect();
        // Falling while far from the fit (near it, merged shards' steps jitter around it).
        assert!(costs[..10].windows(2).all(|w| w[1] < w[0]), "{threads} threads: {costs:?}");
        assert!(costs[29] < 0.2 * costs[0], "{threads} threads: {costs:?}");
        let again = Glove::train(&entries, vocab.len(), &cfg, &mut |_| {}).unwrap();
        assert_eq!(model.word, again.word, "deterministic for a seed and thread count");
        assert_eq!(model.context, again.context);
        // Words of the two topics never co-occur: GloVe has nothing to pull them together.
        let vectors = model.vectors(&vocab).unwrap();
        assert_eq!(vectors.dim(), 8);
        let gap = topic_gap(&vectors);
        assert!(gap > 0.3, "{threads} threads: {gap}");
    }
}

/// Two axes, gender and royalty, and an unrelated word.
fn royal_vectors() -> WordVectors {
    let rows: [(&str, [f32; 3]); 6] = [
        ("man", [1.0, 0.0, 0.3]),
        ("woman", [-1.0, 0.0, 0.3]),
        ("king", [1.0, 1.0, 0.3]),
        ("queen", [-1.0, 1.0, 0.3]),
        ("apple", [0.0, -1.0, 1.0]),
        ("zero", [0.0, 0.0, 0.0]),
    ];
    let words = rows.iter().map(|(w, _)| w.to_string()).collect();
    WordVectors::new(words, 3, rows.iter().flat_map(|(_, v)| *v).collect()).unwrap()
}

#[test]
fn analogies_and_neighbours_on_hand_built_vectors() {
    let v = royal_vectors();
    let answer = v.analogy("man", "king", "woman", 2).unwrap();
    assert_eq!(answer[0].0, "queen", "{answer:?}");
    assert!(
        answer.iter().all(|(w, _)| !["man", "king", "woman"].contains(&w.as_str())),
        "query words excluded"
    );
    assert_eq!(v.analogy("king", "man", "queen", 1).unwrap()[0].0, "woman");
    let nearest = v.nearest("king", 5).unwrap();
    assert_eq!(nearest.len(), 5);
    assert!(nearest.iter().all(|(w, _)| w != "king"));
    assert!(nearest[0].0 == "man" || nearest[0].0 == "queen");
    let zero = nearest.iter().find(|(w, _)| w == "zero").unwrap();
    assert_eq!(zero.1, 0.0, "a zero vector scores 0");
    assert!(nearest.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {nearest:?}");
    let s = v.similarity("man", "woman").unwrap();
    assert!((f64::from(s) - (-1.0 + 0.09) / 1.09).abs() < 1e-6);
    assert!(v.similarity("man", "duke").is_err());
    assert!(v.analogy("man", "king", "duchess", 1).is_err());
    assert!(matches!(v.nearest_to(&[1.0; 6], 2, &[]), Err(keel_layers::LayerError::Shape { .. })));
}

fn random_vec(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}

#[test]
fn neutralise_leaves_nothing_along_the_direction() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..20 {
        let (e, g) = (random_vec(&mut rng, 50), random_vec(&mut rng, 50));
        let n = neutralize(&e, &g).unwrap();
        let cos = dot(&n, &g) / (norm(&n) * norm(&g));
        assert!(cos.abs() < 1e-6, "cos(neutralised, g) = {cos}");
        // What was removed is exactly the projection.
        let p = projection(&e, &g).unwrap();
        for ((x, y), z) in e.iter().zip(&n).zip(&p) {
            assert!((x - y - z).abs() < 1e-6);
        }
        assert!(norm(&n) <= norm(&e) + 1e-6);
    }
    assert!(neutralize(&[1.0, 2.0], &[0.0, 0.0]).is_err());
    assert!(neutralize(&[1.0, 2.0], &[1.0]).is_err());
}

#[test]
fn equalise_makes_the_pair_symmetric_about_the_direction() {
    let mut rng = StdRng::seed_from_u64(12);
    for _ in 0..20 {
        let (e1, e2, g) = (random_vec(&mut rng, 50), random_vec(&mut rng, 50), random_vec(&mut rng, 50));
        let (a, b) = equalize(&e1, &e2, &g).unwrap();
        let (pa, pb) = (dot(&a, &g) / norm(&g), dot(&b, &g) / norm(&g));
        assert!((pa + pb).abs() < 1e-5 * pa.abs().max(1.0), "projections {pa} and {pb}");
        assert!(pa.abs() > 1e-3, "the pair still differs along g");
        assert!((norm(&a) - norm(&b)).abs() < 1e-5 * norm(&a), "norms {} and {}", norm(&a), norm(&b));
        let (oa, ob) = (neutralize(&a, &g).unwrap(), neutralize(&b, &g).unwrap());
        for (x, y) in oa.iter().zip(&ob) {
            assert!((x - y).abs() < 1e-5, "orthogonal parts differ: {x} vs {y}");
        }
        // The shared orthogonal part is that of the pair's mean.
        let mean: Vec<f32> = e1.iter().zip(&e2).map(|(x, y)| 0.5 * (x + y)).collect();
        for (x, y) in oa.iter().zip(&neutralize(&mean, &g).unwrap()) {
            assert!((x - y).abs() < 1e-5);
        }
    }
    // Unit vectors that differ only along g come out of unit norm.
    let g = [0.0, 1.0, 0.0];
    let (a, b) = equalize(&[0.6, 0.8, 0.0], &[0.6, -0.2, 0.0], &g).unwrap();
    assert!((norm(&a) - 1.0).abs() < 1e-6 && (norm(&b) - 1.0).abs() < 1e-6, "{a:?} {b:?}");
    assert!((a[1] + b[1]).abs() < 1e-6 && a[1] > 0.0);
}

#[test]
fn bias_directions_find_the_axis_the_pairs_differ_on() {
    let mut rng = StdRng::seed_from_u64(13);
    let axis: Vec<f32> = {
        let v = random_vec(&mut rng, 20);
        let n = norm(&v) as f32;
        v.iter().map(|x| x / n).collect()
    };
    let mut pairs_owned = Vec::new();
    for k in 0..6 {
        let base = random_vec(&mut rng, 20);
        let t = 0.5 + 0.2 * k as f32;
        let noise = random_vec(&mut rng, 20);
        let a: Vec<f32> =
            base.iter().zip(&axis).zip(&noise).map(|((b, x), n)| b + t * x + 0.02 * n).collect();
        let b: Vec<f32> = base.iter().zip(&axis).map(|(b, x)| b - t * x).collect();
        pairs_owned.push((a, b));
    }
    let pairs: Vec<(&[f32], &[f32])> = pairs_owned.iter().map(|(a, b)| (&a[..], &b[..])).collect();
    let pca = bias_direction_pca(&pairs).unwrap();
    assert!((norm(&pca) - 1.0).abs() < 1e-6);
    assert!(dot(&pca, &axis) > 0.99, "pca direction · axis = {}", dot(&pca, &axis));
    let mean = bias_direction(&pairs).unwrap();
    assert!(dot(&mean, &axis) / norm(&mean) > 0.99);
    // Reversed pairs reverse the sign.
    let reversed: Vec<(&[f32], &[f32])> = pairs.iter().map(|&(a, b)| (b, a)).collect();
    assert!(dot(&bias_direction_pca(&reversed).unwrap(), &axis) < -0.99);
    assert!(bias_direction_pca(&[]).is_err());
}
