//! The bundled word list as characters, shared by the character-level examples (`char_lm`,
//! `seq2seq_attention`): the token ids and the reader.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};

use flate2::read::GzDecoder;
use keel::layers::{LayerError, Result};

/// Token ids: `^` (start) 0, `a`..`z` 1..=26, `$` (end) 27.
pub const START: u32 = 0;
pub const END: u32 = 27;
pub const VOCAB: usize = 28;

/// The id of a lower-case letter.
pub fn token(c: u8) -> u32 {
    (c - b'a') as u32 + 1
}

/// The character of an id.
pub fn character(token: u32) -> char {
    match token {
        START => '^',
        END => '$',
        t => (b'a' + t as u8 - 1) as char,
    }
}

/// The distinct words of the gzipped list at `path` made of lower-case letters only (no
/// proper nouns, no `'s`), in file order.
pub fn read_words(path: &str) -> Result<Vec<String>> {
    let file = File::open(path).map_err(|e| LayerError::Data(format!("{path}: {e}")))?;
    let mut seen = HashSet::new();
    let mut words = Vec::new();
    for line in BufReader::new(GzDecoder::new(file)).lines() {
        let line = line.map_err(|e| LayerError::Data(format!("{path}: {e}")))?;
        let word = line.trim();
        if !word.is_empty() && word.bytes().all(|c| c.is_ascii_lowercase()) && seen.insert(word.to_string()) {
            words.push(word.to_string());
        }
    }
    Ok(words)
}
