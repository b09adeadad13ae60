//! `Dataset::from_idx`: small IDX files written to a temp dir under `target/`, plain and
//! gzipped, read back value for value; and one test per error, each asserting the variant,
//! the file named and the expected/found figures in the message.

use std::io::Write;
use std::path::PathBuf;

use flate2::write::GzEncoder;
use flate2::Compression;
use keel_layers::data::idx::{IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
use keel_layers::{Dataset, LayerError};

/// 3 images of 2x3 pixels with distinct bytes (0 and 255 included), and their labels.
const ROWS: u32 = 2;
const COLS: u32 = 3;
const PIXELS: [u8; 18] = [0, 1, 2, 3, 4, 255, 10, 20, 30, 40, 50, 60, 128, 7, 9, 11, 13, 200];
const LABELS: [u8; 3] = [7, 0, 9];

/// A fresh directory for one test (tests run in parallel, so each has its own).
fn temp_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("idx").join(test);
    // A leftover directory from an earlier run is replaced.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn images_file(magic: u32, count: u32, pixels: &[u8]) -> Vec<u8> {
    let mut bytes = words(&[magic, count, ROWS, COLS]);
    bytes.extend_from_slice(pixels);
    bytes
}

fn labels_file(magic: u32, labels: &[u8]) -> Vec<u8> {
    let mut bytes = words(&[magic, labels.len() as u32]);
    bytes.extend_from_slice(labels);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes the two files into `test`'s directory and reads them with scale 255.
fn load(test: &str, images: &[u8], labels: &[u8]) -> (Result<Dataset, LayerError>, PathBuf, PathBuf) {
    let dir = temp_dir(test);
    let (images_path, labels_path) =
        (dir.join("train-images-idx3-ubyte"), dir.join("train-labels-idx1-ubyte"));
    std::fs::write(&images_path, images).unwrap();
    std::fs::write(&labels_path, labels).unwrap();
    (Dataset::from_idx(&images_path, &labels_path, 255.0), images_path, labels_path)
}

fn valid_images() -> Vec<u8> {
    images_file(IDX_IMAGES_MAGIC, 3, &PIXELS)
}

fn valid_labels() -> Vec<u8> {
    labels_file(IDX_LABELS_MAGIC, &LABELS)
}

fn check_values(data: &Dataset) {
    assert_eq!(data.features.shape(), &[3, 6]);
    assert_eq!(data.labels, vec![7, 0, 9]);
    // Each value is exactly the byte over 255 in f32 (one correctly rounded division).
    for (value, &pixel) in data.features.data().iter().zip(&PIXELS) {
        assert_eq!(*value, f32::from(pixel) / 255.0);
    }
}

/// Asserts a `LayerError::Data` whose message names `path` and contains every `part`.
fn assert_data_error(result: Result<Dataset, LayerError>, path: &std::path::Path, parts: &[&str]) {
    let error = result.expect_err("the files are invalid");
    let LayerError::Data(message) = &error else { panic!("expected LayerError::Data, got {error:?}") };
    assert!(message.contains(&path.display().to_string()), "{message} should name {}", path.display());
    for part in parts {
        assert!(message.contains(part), "{message} should contain {part:?}");
    }
}

#[test]
fn reads_plain_files() {
    let (data, _, _) = load("plain", &valid_images(), &valid_labels());
    check_values(&data.unwrap());
}

#[test]
fn reads_gzipped_files_and_mixed_pairs() {
    let (data, _, _) = load("gzip", &gzip(&valid_images()), &gzip(&valid_labels()));
    check_values(&data.unwrap());
    let (data, _, _) = load("gzip_images_only", &gzip(&valid_images()), &valid_labels());
    check_values(&data.unwrap());
}

#[test]
fn scale_divides_and_sample_shape_gives_nchw() {
    let dir = temp_dir("scale");
    let (images, labels) = (dir.join("images"), dir.join("labels"));
    std::fs::write(&images, valid_images()).unwrap();
    std::fs::write(&labels, valid_labels()).unwrap();
    let data = Dataset::from_idx(&images, &labels, 1.0).unwrap();
    let expected: Vec<f32> = PIXELS.iter().map(|&p| f32::from(p)).collect();
    assert_eq!(data.features.data(), expected.as_slice());
    let data = data.with_sample_shape(&[1, ROWS as usize, COLS as usize]).unwrap();
    assert_eq!(data.features.shape(), &[3, 1, 2, 3]);
    for scale in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let error = Dataset::from_idx(&images, &labels, scale).unwrap_err();
        assert!(matches!(&error, LayerError::Data(m) if m.contains("scale")), "{error}");
    }
}

#[test]
fn bad_image_magic() {
    // The labels magic in the images file (a swapped pair).
    let (result, images, _) =
        load("bad_image_magic", &images_file(IDX_LABELS_MAGIC, 3, &PIXELS), &valid_labels());
    assert_data_error(result, &images, &["bad magic number", "expected 0x00000803", "found 0x00000801"]);
}

#[test]
fn bad_label_magic() {
    let (result, _, labels) = load("bad_label_magic", &valid_images(), &labels_file(0x0000_0802, &LABELS));
    assert_data_error(result, &labels, &["bad magic number", "expected 0x00000801", "found 0x00000802"]);
}

#[test]
fn truncated_images() {
    // 34 bytes expected (16 + 3·2·3), the last image cut short.
    let (result, images, _) = load("truncated_images", &valid_images()[..30], &valid_labels());
    assert_data_error(result, &images, &["truncated", "expected 34 bytes", "3 images of 2x3", "found 30"]);
}

#[test]
fn truncated_header() {
    let (result, images, _) = load("truncated_header", &valid_images()[..10], &valid_labels());
    assert_data_error(result, &images, &["truncated", "16-byte", "found 10 bytes"]);
}

#[test]
fn truncated_labels() {
    let (result, _, labels) = load("truncated_labels", &valid_images(), &valid_labels()[..10]);
    assert_data_error(result, &labels, &["truncated", "expected 11 bytes", "found 10"]);
}

#[test]
fn truncated_gzip_stream() {
    let compressed = gzip(&valid_images());
    let (result, images, _) = load("truncated_gzip", &compressed[..compressed.len() / 2], &valid_labels());
    assert_data_error(result, &images, &["gzip"]);
}

#[test]
fn trailing_bytes() {
    let mut images = valid_images();
    images.push(1);
    let (result, path, _) = load("trailing_bytes", &images, &valid_labels());
    assert_data_error(result, &path, &["trailing bytes", "expected 34 bytes", "found 35"]);
}

#[test]
fn count_mismatch() {
    let (result, images, labels) =
        load("count_mismatch", &valid_images(), &labels_file(IDX_LABELS_MAGIC, &[1, 2]));
    assert_data_error(result, &labels, &["expected 3 labels", "found 2", &images.display().to_string()]);
}

#[test]
fn zero_images() {
    let (result, images, _) = load("zero_images", &images_file(IDX_IMAGES_MAGIC, 0, &[]), &valid_labels());
    assert_data_error(result, &images, &["found 0 images of 2x3"]);
}

#[test]
fn missing_file() {
    let dir = temp_dir("missing");
    let (images, labels) = (dir.join("train-images-idx3-ubyte"), dir.join("train-labels-idx1-ubyte"));
    std::fs::write(&labels, valid_labels()).unwrap();
    assert_data_error(Dataset::from_idx(&images, &labels, 255.0), &images, &["cannot read"]);
    std::fs::write(&images, valid_images()).unwrap();
    std::fs::remove_file(&labels).unwrap();
    assert_data_error(Dataset::from_idx(&images, &labels, 255.0), &labels, &["cannot read"]);
}
