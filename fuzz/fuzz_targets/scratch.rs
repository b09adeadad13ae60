//! A file per fuzzing process for the loaders, which read paths.

use std::path::PathBuf;

/// Writes `bytes` to this process's scratch file `name` and returns its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("keel-fuzz-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).expect("the scratch file is writable");
    path
}
