//! Reading a text corpus: documents of lower-case word tokens.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{LayerError, Result};

/// The words of `text`, lower-cased: maximal runs of letters, with apostrophes kept inside a
/// word (`don't`, `o'clock`) and dropped at its ends; digits and punctuation separate words.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut finish = |word: &mut String| {
        let trimmed = word.trim_matches('\'');
        if !trimmed.is_empty() {
            words.push(trimmed.to_owned());
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphabetic() || (c == '\'' && !word.is_empty()) {
            word.extend(c.to_lowercase());
        } else {
            finish(&mut word);
        }
    }
    finish(&mut word);
    words
}

/// Reads a gzip-compressed text whose documents are separated by lines holding only `%`
/// (the BSD `fortune` format, as in the bundled `data/fortunes-corpus.txt.gz`); returns each
/// non-empty document's tokens ([`tokenize`]). Training windows do not cross documents.
///
/// Errors: the file cannot be opened or is not valid gzip / UTF-8 (naming the file and line).
pub fn read_documents_gz(path: impl AsRef<Path>) -> Result<Vec<Vec<String>>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| LayerError::Data(format!("{}: {e}", path.display())))?;
    let mut documents = Vec::new();
    let mut current = Vec::new();
    for (index, line) in BufReader::new(GzDecoder::new(file)).lines().enumerate() {
        let line = line.map_err(|e| LayerError::Data(format!("{}:{}: {e}", path.display(), index + 1)))?;
        if line.trim() == "%" {
            if !current.is_empty() {
                documents.push(std::mem::take(&mut current));
            }
        } else {
            current.extend(tokenize(&line));
        }
    }
    if !current.is_empty() {
        documents.push(current);
    }
    Ok(documents)
}
