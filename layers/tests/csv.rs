//! Reading the bundled CSV layout (`Dataset::from_csv_gz`): good files load, and every kind
//! of bad input is a `LayerError::Data` naming the file, the line and what was wrong.

use std::io::Write;
use std::path::PathBuf;

use flate2::write::GzEncoder;
use flate2::Compression;
use keel_layers::{Dataset, LayerError};

/// Writes `text` gzipped to a file of its own and returns its path.
fn gz_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("keel-{}-{name}.csv.gz", std::process::id()));
    let mut encoder = GzEncoder::new(std::fs::File::create(&path).unwrap(), Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap();
    path
}

/// The message of a data error (panics on anything else).
fn data_error(result: keel_layers::Result<Dataset>) -> String {
    match result {
        Err(LayerError::Data(message)) => message,
        other => panic!("expected a data error, got {other:?}"),
    }
}

#[test]
fn a_good_file_loads_scaled() {
    let path = gz_file("good", "0,2,4,1\n8,16,0,0\n");
    let data = Dataset::from_csv_gz(&path, 16.0).unwrap();
    assert_eq!(data.features.shape(), [2, 3]);
    assert_eq!(data.features.data(), [0.0, 0.125, 0.25, 0.5, 1.0, 0.0]);
    assert_eq!(data.labels, [1, 0]);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn non_finite_values_and_scales_are_errors_naming_line_and_column() {
    for (name, text, expected) in [
        ("nan", "1,2,0\n3,NaN,1\n", ":2: column 2: \"NaN\" is not a finite number"),
        ("inf", "inf,2,0\n", ":1: column 1: \"inf\" is not a finite number"),
        ("minus-inf", "1,-inf,0\n", ":1: column 2: \"-inf\" is not a finite number"),
        ("overflow", "1e39,2,0\n", ":1: column 1: \"1e39\" is not a finite number"),
        ("word", "1,x,0\n", ":1: column 2: \"x\" is not a finite number"),
        ("label", "1,2,0.5\n", ":1: label 0.5 is not a class index"),
        ("nan-label", "1,2,NaN\n", ":1: label NaN is not a class index"),
        ("ragged", "1,2,0\n1,0\n", ":2: expected 3 fields, got 2"),
    ] {
        let path = gz_file(name, text);
        let message = data_error(Dataset::from_csv_gz(&path, 1.0));
        assert!(message.contains(expected), "{name}: {message}");
        assert!(message.contains(&path.display().to_string()), "{name}: {message}");
        std::fs::remove_file(path).unwrap();
    }
    let path = gz_file("scale", "1,2,0\n");
    for scale in [0.0, f32::NAN, f32::INFINITY] {
        assert!(data_error(Dataset::from_csv_gz(&path, scale)).contains("scale must be finite and non-zero"));
    }
    std::fs::remove_file(path).unwrap();
}
