//! A character-level LSTM language model on the bundled English word list, then new words
//! sampled from it one character at a time:
//!
//! ```text
//! cargo run --release --example char_lm
//! ```
//!
//! - data: the words of `data/words-american-english.txt.gz` that are lower-case letters
//!   only (no proper nouns, no `'s`), each written `^word$` with start and end markers, split
//!   by a seeded shuffle into 95% training and 5% held-out words. The model reads `^word`
//!   and predicts `word$`, one character ahead at every step (many-to-many). Words of the
//!   same length are batched together, so no padding is needed;
//! - model: `Embedding(28 -> 16)`, `Lstm(16 -> 256)`, [`FlattenSteps`] (every step a row),
//!   `Dense(256 -> 28)`, softmax cross-entropy over the `seq·batch` targets (so its mean is per
//!   character); the four layers are held in a small `CharLm` layer of its own rather than a
//!   `Sequential`, so the sampler can reach the LSTM's state;
//! - training: Adam (learning rate 3e-3), batches of up to 64 words in a seeded random
//!   order, the gradients clipped to a total norm of 1 before every step (`clip_grad_norm`);
//! - report: per epoch, the training loss (per character), the **held-out perplexity**
//!   `exp(mean cross-entropy per character of the held-out words)` (28 would be a uniform
//!   guess) and the characters per second; then words generated one character at a time
//!   from `^` until `$` ([`Sampler`]: 10 at temperature 0.5, 10 at 1.0, and greedy
//!   completions of a few prefixes), the LSTM's state carried from step to step, each marked
//!   as in the training words, in the held-out words, or new.
//!
//! On the reference machine (2 threads, shared) 3 epochs take about 45 s (some 40,000
//! training characters/s) and reach a held-out perplexity of 5.81 per character (7.05 after
//! the first epoch); most sampled words are new but word-like (`portentation`, `swinked`,
//! `underhandaries`), some are real words.
//!
//! The thread count follows rayon (`RAYON_NUM_THREADS`, default: all cores).

mod words;

use std::collections::HashSet;
use std::time::Instant;

use keel::kernels::optim::AdamConfig;
use keel::layers::{
    clip_grad_norm, zero_grad, Adam, Decoding, Dense, Embedding, FlattenSteps, Init, Layer, Loss, Lstm,
    LstmConfig, Mode, Optimizer, Param, Result, Sampler, SoftmaxCrossEntropy, Tensor,
};
use keel::layers::{SeedableRng, StdRng};
use rand::seq::SliceRandom;
use words::{character, read_words, token, END, START, VOCAB};

/// `Embedding → Lstm → FlattenSteps → Dense` on `(seq, batch)` token ids (as `f32`), giving
/// logits `(seq·batch, VOCAB)`, rows `t·batch + b`.
struct CharLm {
    embedding: Embedding,
    lstm: Lstm,
    steps: FlattenSteps,
    dense: Dense,
}

impl Layer for CharLm {
    fn name(&self) -> String {
        format!(
            "char_lm[{}, {}, {}, {}]",
            self.embedding.name(),
            self.lstm.name(),
            self.steps.name(),
            self.dense.name()
        )
    }

    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()> {
        self.embedding.forward(input, mode)?;
        self.lstm.forward(self.embedding.output(), mode)?;
        self.steps.forward(self.lstm.output(), mode)?;
        self.dense.forward(self.steps.output(), mode)
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        self.dense.backward(self.steps.output(), grad_output)?;
        self.steps.backward(self.lstm.output(), self.dense.grad_input())?;
        self.lstm.backward(self.embedding.output(), self.steps.grad_input())?;
        self.embedding.backward(input, self.lstm.grad_input())
    }

    fn output(&self) -> &Tensor {
        self.dense.output()
    }

    fn grad_input(&self) -> &Tensor {
        self.embedding.grad_input()
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        self.embedding.visit_params(&mut |name, p| visit(&format!("embedding.{name}"), p));
        self.lstm.visit_params(&mut |name, p| visit(&format!("lstm.{name}"), p));
        self.dense.visit_params(&mut |name, p| visit(&format!("dense.{name}"), p));
    }
}

/// The lower-case, letters-only words of the list, without repeats, in the list's order.
/// A batch of words of one length `n`: inputs `^word` and targets `word$`, `n + 1` steps each,
/// time-major (step `t` of word `b` at `t·batch + b`).
struct Batch {
    inputs: Tensor,
    targets: Vec<u32>,
}

fn batch(words: &[&str]) -> Batch {
    let (batch, seq) = (words.len(), words[0].len() + 1);
    let mut inputs = vec![0.0; seq * batch];
    let mut targets = vec![0; seq * batch];
    for (b, word) in words.iter().enumerate() {
        let tokens: Vec<u32> = std::iter::once(START).chain(word.bytes().map(token)).chain([END]).collect();
        for t in 0..seq {
            inputs[t * batch + b] = tokens[t] as f32;
            targets[t * batch + b] = tokens[t + 1];
        }
    }
    Batch { inputs: Tensor::from_vec(&[seq, batch], inputs).expect("seq·batch values"), targets }
}

/// The words grouped by length, each group cut into batches of at most `size` (shuffled
/// within lengths and in batch order by `rng` if given).
fn batches(words: &[String], size: usize, rng: Option<&mut StdRng>) -> Vec<Batch> {
    let mut by_length: Vec<Vec<&str>> = Vec::new();
    for word in words {
        if by_length.len() <= word.len() {
            by_length.resize(word.len() + 1, Vec::new());
        }
        by_length[word.len()].push(word);
    }
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for same in &by_length {
        groups.extend(same.chunks(size).map(<[&str]>::to_vec));
    }
    if let Some(rng) = rng {
        groups.iter_mut().for_each(|group| group.shuffle(rng));
        groups.shuffle(rng);
    }
    groups.iter().map(|group| batch(group)).collect()
}

/// `(mean cross-entropy per character, characters)` of `model` over `batches`, in eval mode.
fn cross_entropy(
    model: &mut CharLm,
    loss: &mut SoftmaxCrossEntropy,
    batches: &[Batch],
) -> Result<(f64, usize)> {
    let (mut total, mut chars) = (0.0f64, 0usize);
    for batch in batches {
        model.forward(&batch.inputs, Mode::Eval)?;
        total += loss.forward(model.output(), &batch.targets)? as f64 * batch.targets.len() as f64;
        chars += batch.targets.len();
    }
    Ok((total / chars as f64, chars))
}

/// A word generated after `prefix` (fed first, one character a step), character by character
/// until `$` or `max_len` characters, the LSTM's state carried from each step to the next.
fn generate(
    model: &mut CharLm,
    sampler: &mut Sampler,
    prefix: &str,
    max_len: usize,
    rng: &mut StdRng,
) -> Result<String> {
    model.lstm.set_initial_state(None, None);
    let mut word = prefix.to_string();
    let mut next = START;
    let mut fed = std::iter::once(START).chain(prefix.bytes().map(token)).peekable();
    let mut logits = [0.0f32; VOCAB];
    while word.len() < max_len {
        let input = fed.next().unwrap_or(next);
        model.forward(&Tensor::from_vec(&[1, 1], vec![input as f32])?, Mode::Eval)?;
        let (h, c) = model.lstm.final_state();
        let (h, c) = (h.clone(), c.clone());
        model.lstm.set_initial_state(Some(h), Some(c));
        if fed.peek().is_some() {
            continue;
        }
        // `^` is never a target, so the model gives it next to no probability: rule it out.
        logits.copy_from_slice(model.output().data());
        logits[START as usize] = f32::NEG_INFINITY;
        next = sampler.next(&logits, rng) as u32;
        if next == END {
            break;
        }
        word.push(character(next));
    }
    model.lstm.set_initial_state(None, None);
    Ok(word)
}

fn main() -> Result<()> {
    let words = read_words("data/words-american-english.txt.gz")?;
    let mut shuffled = words.clone();
    shuffled.shuffle(&mut StdRng::seed_from_u64(2026));
    let held_out_len = shuffled.len() / 20;
    let held_out: Vec<String> = shuffled[..held_out_len].to_vec();
    let train: Vec<String> = shuffled[held_out_len..].to_vec();
    let train_set: HashSet<&str> = train.iter().map(String::as_str).collect();
    let held_out_set: HashSet<&str> = held_out.iter().map(String::as_str).collect();
    println!(
        "{} lower-case words: {} train / {} held out; character LSTM on {} thread(s)",
        words.len(),
        train.len(),
        held_out.len(),
        rayon::current_num_threads()
    );

    let (embedding_dim, hidden, epochs, batch_size) = (16, 256, 3, 64);
    let mut rng = StdRng::seed_from_u64(7);
    let mut model = CharLm {
        embedding: Embedding::new(VOCAB, embedding_dim, None, &mut rng)?,
        lstm: Lstm::new(LstmConfig::new(embedding_dim, hidden), &mut rng)?,
        steps: FlattenSteps::new(),
        dense: Dense::new(hidden, VOCAB, Init::Xavier, &mut rng)?,
    };
    println!("{}", model.name());
    let mut adam = Adam::new(AdamConfig { lr: 3e-3, ..AdamConfig::default() })?;
    let mut loss = SoftmaxCrossEntropy::new();
    let held_out_batches = batches(&held_out, 512, None);
    let (entropy, _) = cross_entropy(&mut model, &mut loss, &held_out_batches)?;
    println!("before training: held-out perplexity {:.2} (uniform: {VOCAB})", entropy.exp());

    let mut order = StdRng::seed_from_u64(1);
    let start = Instant::now();
    for epoch in 1..=epochs {
        let epoch_start = Instant::now();
        let (mut total, mut chars) = (0.0f64, 0usize);
        for batch in batches(&train, batch_size, Some(&mut order)) {
            zero_grad(&mut model);
            model.forward(&batch.inputs, Mode::Train)?;
            total += loss.forward(model.output(), &batch.targets)? as f64 * batch.targets.len() as f64;
            chars += batch.targets.len();
            let grad = loss.backward(&batch.targets)?;
            model.backward(&batch.inputs, grad)?;
            clip_grad_norm(&mut model, 1.0)?;
            adam.step(&mut model)?;
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        let (entropy, _) = cross_entropy(&mut model, &mut loss, &held_out_batches)?;
        println!(
            "epoch {epoch}: train loss {:.4} per char, held-out loss {entropy:.4}, perplexity {:.3}; {:.0} chars/s ({seconds:.1} s)",
            total / chars as f64,
            entropy.exp(),
            chars as f64 / seconds
        );
    }
    let (entropy, chars) = cross_entropy(&mut model, &mut loss, &held_out_batches)?;
    println!(
        "held-out per-character perplexity {:.3} over {chars} characters ({} words), trained in {:.1} s",
        entropy.exp(),
        held_out.len(),
        start.elapsed().as_secs_f64()
    );

    let mark = |word: &str| {
        if train_set.contains(word) {
            "in the training words"
        } else if held_out_set.contains(word) {
            "held out (never trained on)"
        } else {
            "new"
        }
    };
    let mut sample_rng = StdRng::seed_from_u64(11);
    for temperature in [0.5, 1.0] {
        println!("sampled at temperature {temperature}:");
        let mut sampler = Sampler::new(Decoding::Temperature(temperature));
        for _ in 0..10 {
            let word = generate(&mut model, &mut sampler, "", 24, &mut sample_rng)?;
            println!("  {word:<24} {}", mark(&word));
        }
    }
    println!("greedy completions:");
    let mut greedy = Sampler::new(Decoding::Greedy);
    for prefix in ["", "un", "ch", "pre", "q", "z"] {
        let word = generate(&mut model, &mut greedy, prefix, 24, &mut sample_rng)?;
        println!("  {prefix:>4}… {word:<24} {}", mark(&word));
    }
    Ok(())
}
