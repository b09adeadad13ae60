//! MNIST's IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte` and the `t10k-`
//! test pair), plain or gzip-compressed (`.gz` as downloaded), read into a [`Dataset`].
//!
//! The format (all integers big-endian `u32`):
//! - images: magic `0x00000803` (unsigned bytes, 3 dimensions), count `n`, `rows`, `cols`,
//!   then `n·rows·cols` pixel bytes, image after image, row-major;
//! - labels: magic `0x00000801` (unsigned bytes, 1 dimension), count `n`, then `n` label
//!   bytes.

use std::path::Path;

use super::source::read_bytes;
use super::Dataset;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// The magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// A `LayerError::Data` naming the file.
fn data_error(path: &Path, what: impl std::fmt::Display) -> LayerError {
    LayerError::Data(format!("{}: {what}", path.display()))
}

/// The big-endian `u32` fields of a header of `fields` words (the magic first), after
/// checking the file holds them and the magic is `magic`.
fn header(path: &Path, bytes: &[u8], magic: u32, what: &str, fields: usize) -> Result<Vec<u32>> {
    if bytes.len() < 4 * fields {
        return Err(data_error(
            path,
            format!(
                "truncated: expected a {}-byte IDX {what} header, found {} bytes",
                4 * fields,
                bytes.len()
            ),
        ));
    }
    let words: Vec<u32> = bytes[..4 * fields]
        .chunks_exact(4)
        .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
        .collect();
    if words[0] != magic {
        return Err(data_error(
            path,
            format!("bad magic number: expected {magic:#010x} (IDX {what}), found {:#010x}", words[0]),
        ));
    }
    Ok(words)
}

/// Checks that `bytes` is exactly a header of `header_len` bytes and a body of `body_len`.
fn check_length(path: &Path, bytes: &[u8], header_len: usize, body_len: usize, body: &str) -> Result<()> {
    let expected = header_len.checked_add(body_len);
    if expected != Some(bytes.len()) {
        let expected = expected.map_or_else(|| "more than usize::MAX".to_string(), |e| e.to_string());
        let problem =
            if bytes.len() < header_len.saturating_add(body_len) { "truncated" } else { "trailing bytes" };
        return Err(data_error(
            path,
            format!(
                "{problem}: expected {expected} bytes ({header_len}-byte header + {body}), found {}",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

impl Dataset {
    /// Reads an MNIST-style pair of IDX files (see the [module docs](crate::data::idx)), each plain
    /// or gzip-compressed (detected from its first bytes, not its name): features
    /// `(n, rows·cols)` holding each pixel byte divided by `scale` (255 brings them into
    /// [0, 1]), labels the `n` label bytes. View the images as NCHW with
    /// [`Dataset::with_sample_shape`]`(&[1, rows, cols])`.
    ///
    /// Every error is a [`LayerError::Data`] naming the file and what was expected and
    /// found: a file that cannot be read or gunzipped, a wrong magic number, a zero count
    /// or dimension, a file shorter (truncated) or longer than its header says, image and
    /// label counts that differ; also a `scale` that is not positive and finite.
    pub fn from_idx(
        images_path: impl AsRef<Path>,
        labels_path: impl AsRef<Path>,
        scale: f32,
    ) -> Result<Dataset> {
        let (images_path, labels_path) = (images_path.as_ref(), labels_path.as_ref());
        if !(scale.is_finite() && scale > 0.0) {
            return Err(LayerError::Data(format!(
                "IDX scale: expected a positive finite number, found {scale}"
            )));
        }

        let images = read_bytes(images_path)?;
        let words = header(images_path, &images, IDX_IMAGES_MAGIC, "images, 3 dimensions", 4)?;
        let (n, rows, cols) = (words[1] as usize, words[2] as usize, words[3] as usize);
        if n == 0 || rows == 0 || cols == 0 {
            return Err(data_error(
                images_path,
                format!(
                    "expected at least one image of at least 1x1 pixels, found {n} images of {rows}x{cols}"
                ),
            ));
        }
        let pixels = rows.checked_mul(cols).and_then(|w| w.checked_mul(n)).unwrap_or(usize::MAX);
        check_length(images_path, &images, 16, pixels, &format!("{n} images of {rows}x{cols} bytes"))?;

        let labels = read_bytes(labels_path)?;
        let words = header(labels_path, &labels, IDX_LABELS_MAGIC, "labels, 1 dimension", 2)?;
        let count = words[1] as usize;
        if count != n {
            return Err(data_error(
                labels_path,
                format!("expected {n} labels, one per image of {}, found {count}", images_path.display()),
            ));
        }
        check_length(labels_path, &labels, 8, n, &format!("{n} label bytes"))?;

        let values = images[16..].iter().map(|&pixel| f32::from(pixel) / scale).collect();
        let features = Tensor::from_vec(&[n, rows * cols], values)?;
        Ok(Dataset { features, labels: labels[8..].iter().map(|&label| u32::from(label)).collect() })
    }
}
