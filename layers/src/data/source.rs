//! The bytes of a data file, plain or gzip-compressed: the compression is detected from the
//! file's first bytes, not its name, so `digits.csv` and `digits.csv.gz` read alike.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{LayerError, Result};

/// The first two bytes of every gzip stream (RFC 1952); neither a text file nor an IDX file
/// (which starts with `00 00`) begins with them.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The bytes of the file at `path`, gunzipped if they start with the gzip magic bytes;
/// errors name the file and say whether reading or gunzipping failed.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let fail = |what: String| LayerError::Data(format!("{}: {what}", path.display()));
    let raw = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut bytes = Vec::new();
    GzDecoder::new(raw.as_slice()).read_to_end(&mut bytes).map_err(|e| fail(format!("gzip stream: {e}")))?;
    Ok(bytes)
}
