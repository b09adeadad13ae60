//! Bad inputs and what each gets: the tests behind the rows of `docs/bad_inputs.md`. Each
//! feeds one mistake a user makes (a CSV or IDX file that is not what the reader expects; a
//! data set, layer, optimizer, loss or training setting out of its domain; a checkpoint that
//! does not fit the model) and asserts the error variant and the key parts of its message:
//! what was expected and what came; for the few inputs that are not errors, it asserts what
//! is read instead.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use keel_layers::data::idx::{IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
use keel_layers::{
    clip_grad_norm, evaluate, fit, load_optimizer_state, load_safetensors, predict_classes,
    save_optimizer_state, save_safetensors, stratified_split, Adam, AdamConfig, BatchNorm, BceWithLogits,
    Column, Conv2d, Conv2dConfig, CsvReader, Dataset, Dense, Dropout, Embedding, FitConfig, Gru, Init, Layer,
    LayerError, Loss, Lstm, MaxPool2d, Mode, Optimizer, RecurrentConfig, RmsProp, RmspropConfig, Scaler,
    Sequential, Sgd, SgdConfig, SoftmaxCrossEntropy, Tensor, ZeroVariance,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use safetensors::tensor::{Dtype, TensorView};

/// A file of this test process, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    /// A file named after `name` holding `bytes`.
    fn new(name: &str, bytes: &[u8]) -> Self {
        let file = TempFile(temp_path(name));
        std::fs::write(&file.0, bytes).unwrap();
        file
    }

    /// The path as error messages show it.
    fn shown(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A path in the temp dir unique to this process and `name`.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("keel-bad-inputs-{}-{name}", std::process::id()))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The message of a `LayerError::Data` (panics on success or another error).
fn data_error<T: std::fmt::Debug>(result: keel_layers::Result<T>) -> String {
    match result {
        Err(LayerError::Data(message)) => message,
        other => panic!("expected LayerError::Data, got {other:?}"),
    }
}

/// Asserts that `message` holds every one of `parts`.
fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} should contain {part:?}");
    }
}

/// Values in [-1, 1) with both signs from a multiplicative hash.
fn tensor(shape: &[usize], seed: u32) -> Tensor {
    let values = (0..shape.iter().product::<usize>())
        .map(|i| ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect();
    Tensor::from_vec(shape, values).unwrap()
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// Every parameter and buffer value of `model`, in visiting order.
fn values(model: &mut dyn Layer) -> Vec<Vec<f32>> {
    let mut all = Vec::new();
    model.visit_params(&mut |_, param| all.push(param.value.data().to_vec()));
    model.visit_buffers(&mut |_, buffer| all.push(buffer.data().to_vec()));
    all
}

// ---------------------------------------------------------------------------------------
// CSV files (`CsvReader`)
// ---------------------------------------------------------------------------------------

/// A text header read by a headerless reader: the first name is not a number, and the
/// message asks whether line 1 is a header row.
#[test]
fn csv_text_header_not_declared() {
    let file = TempFile::new("text-header.csv", b"width,height,label\n1,2,0\n");
    let message = data_error(CsvReader::headerless().read_classes(&file.0));
    assert_contains(
        &message,
        &[
            &format!("{}:1: column 1", file.shown()),
            "\"width\" is not a finite number",
            "is line 1 a header row? (use CsvReader::with_header)",
        ],
    );
}

/// Numeric column names and a text label name, read as class indices without a header: the
/// label `"class"` on line 1 is not a number.
#[test]
fn csv_numeric_header_not_declared_read_as_class_indices() {
    let file = TempFile::new("numeric-header-indices.csv", b"1,2,class\n0.5,0.25,0\n0.75,0.5,1\n");
    let message = data_error(CsvReader::headerless().read_class_indices(&file.0));
    assert_contains(&message, &[&format!("{}:1: label \"class\" is not a number", file.shown())]);
}

/// The same file read as class names: numeric column names and a text label look like a
/// sample of a class named "class", which nothing tells from data; the reader must be told
/// with `CsvReader::with_header` (a known limit, as for an all-numeric header below).
#[test]
fn csv_numeric_header_not_declared_read_as_class_names() {
    let file = TempFile::new("numeric-header-names.csv", b"1,2,class\n0.5,0.25,a\n0.75,0.5,b\n");
    let data = CsvReader::headerless().read_classes(&file.0).unwrap();
    assert_eq!(data.classes, ["a", "b", "class"]);
    assert_eq!(data.dataset.labels, [2, 0, 1]);
    let declared = CsvReader::with_header().read_classes(&file.0).unwrap();
    assert_eq!(declared.classes, ["a", "b"]);
}

/// A header of numbers only, not declared: nothing tells it from data, so it is read as a
/// sample (the reader must be told with `CsvReader::with_header`).
#[test]
fn csv_all_numeric_header_not_declared_is_read_as_a_sample() {
    let file = TempFile::new("all-numeric-header.csv", b"1,2,3\n0.5,0.25,0\n0.75,0.5,1\n");
    let data = CsvReader::headerless().read_class_indices(&file.0).unwrap();
    assert_eq!(data.dataset.len(), 3);
    assert_eq!(data.dataset.labels, [3, 0, 1]);
    assert_eq!(data.classes, ["0", "1", "2", "3"]);
}

/// A `;`-separated file read with the default `,`: one column, and the delimiter it
/// probably uses.
#[test]
fn csv_wrong_delimiter() {
    let file = TempFile::new("semicolons.csv", b"a;b;label\n1;2;x\n3;4;y\n");
    let message = data_error(CsvReader::with_header().read_classes(&file.0));
    assert_contains(
        &message,
        &[&format!("{}:1: 1 column found on line 1; is the delimiter ';'?", file.shown())],
    );
}

/// `NaN`, `inf` and `-inf` feature tokens: not finite numbers, naming line and column, and
/// the option that accepts them.
#[test]
fn csv_nan_and_inf_tokens() {
    for (name, text, expected) in [
        ("nan", "a,b,label\n1,2,x\n3,NaN,y\n", ":3: column 2 (\"b\"): \"NaN\" is not a finite number"),
        ("inf", "a,b,label\ninf,2,x\n", ":2: column 1 (\"a\"): \"inf\" is not a finite number"),
        ("minus-inf", "a,b,label\n1,-inf,x\n", ":2: column 2 (\"b\"): \"-inf\" is not a finite number"),
    ] {
        let file = TempFile::new(&format!("{name}.csv"), text.as_bytes());
        let message = data_error(CsvReader::with_header().read_classes(&file.0));
        assert_contains(&message, &[&format!("{}{expected}", file.shown()), "CsvReader::allow_non_finite"]);
    }
}

/// A row with fewer fields than the first: the line and both counts.
#[test]
fn csv_ragged_rows() {
    let file = TempFile::new("ragged.csv", b"a,b,label\n1,2,x\n3,y\n");
    let message = data_error(CsvReader::with_header().read_classes(&file.0));
    assert_contains(&message, &[&format!("{}:3: expected 3 fields, got 2", file.shown())]);
}

/// An empty file: what rows were expected.
#[test]
fn csv_empty_file() {
    let file = TempFile::new("empty.csv", b"");
    let message = data_error(CsvReader::with_header().read_classes(&file.0));
    assert_contains(
        &message,
        &[&format!("{}: empty file: expected a header row and rows of features and a label", file.shown())],
    );
}

/// A label column name that is not in the header: the names there are.
#[test]
fn csv_missing_label_column() {
    let file = TempFile::new("iris.csv", b"sepal length,sepal width,species\n5.1,3.5,setosa\n");
    let reader = CsvReader::with_header().label(Column::Name("class".into()));
    let message = data_error(reader.read_classes(&file.0));
    assert_contains(
        &message,
        &[
            &file.shown(),
            "no column named \"class\" for the label",
            "expected one of [\"sepal length\", \"sepal width\", \"species\"]",
        ],
    );
}

/// Class indices that skip a class: no error; the classes are named `"0"` up to the largest
/// index, so index 1 is a class without samples and the labels stay as written.
#[test]
fn csv_class_indices_with_a_class_not_in_the_data() {
    let file = TempFile::new("gap.csv", b"1.0,0\n2.0,2\n3.0,2\n");
    let data = CsvReader::headerless().read_class_indices(&file.0).unwrap();
    assert_eq!(data.classes, ["0", "1", "2"]);
    assert_eq!(data.dataset.labels, [0, 2, 2]);
}

/// Class names read from a file that lacks one of the training classes: the codes should
/// be the training file's, so the same name gets the same index in both.
/// `read_classes` numbers the classes a file holds; `read_classes_of` takes the training
/// file's, and names a label it does not know.
#[test]
fn csv_class_names_missing_from_one_file() {
    let train = TempFile::new("train.csv", b"x,species\n1,setosa\n2,versicolor\n3,virginica\n");
    let test = TempFile::new("test.csv", b"x,species\n1,versicolor\n2,virginica\n");
    let train = CsvReader::with_header().read_classes(&train.0).unwrap();
    let alone = CsvReader::with_header().read_classes(&test.0).unwrap();
    assert_eq!(alone.dataset.labels, [0, 1], "read alone, the test file has its own codes");
    let test_data = CsvReader::with_header().read_classes_of(&test.0, &train.classes).unwrap();
    assert_eq!(test_data.classes, train.classes);
    assert_eq!(test_data.dataset.labels, [1, 2]);
    let unknown = TempFile::new("unknown.csv", b"x,species\n1,versicolor\n2,daisy\n");
    let message = data_error(CsvReader::with_header().read_classes_of(&unknown.0, &train.classes));
    assert_contains(
        &message,
        &[&format!("{}:3:", unknown.shown()), "label \"daisy\" is not one of the 3 classes"],
    );
}

/// A gzip file cut short: the file and the broken stream.
#[test]
fn csv_truncated_gzip() {
    let compressed = gzip(b"a,b,label\n1,2,x\n3,4,y\n5,6,z\n");
    for (name, end) in [("half", compressed.len() / 2), ("no-trailer", compressed.len() - 4)] {
        let file = TempFile::new(&format!("truncated-{name}.csv.gz"), &compressed[..end]);
        let message = data_error(CsvReader::with_header().read_classes(&file.0));
        assert_contains(&message, &[&format!("{}: gzip stream: ", file.shown())]);
        assert!(message.contains("incomplete") || message.contains("unexpected end of file"), "{message}");
    }
}

/// A path with no file: the path and the system's reason.
#[test]
fn csv_file_does_not_exist() {
    let path = temp_path("no-such-file.csv");
    let message = data_error(CsvReader::with_header().read_classes(&path));
    assert_contains(&message, &[&format!("{}: cannot read: ", path.display()), "No such file"]);
}

/// A scale of 0 for a CSV or IDX read: the value and the domain.
#[test]
fn scale_zero() {
    let csv = TempFile::new("scale.csv", b"a,b,label\n1,2,x\n");
    let message = data_error(CsvReader::with_header().scale(0.0).read_classes(&csv.0));
    assert_contains(&message, &[&csv.shown(), "scale must be finite and non-zero, got 0"]);
    let (images, labels) = idx_pair("scale", 2, 2);
    let message = data_error(Dataset::from_idx(&images.0, &labels.0, 0.0));
    assert_contains(&message, &["IDX scale: expected a positive finite number, found 0"]);
}

// ---------------------------------------------------------------------------------------
// IDX files (`Dataset::from_idx`)
// ---------------------------------------------------------------------------------------

/// The bytes of an IDX images file of `count` images of 2x2 pixels.
fn idx_images(count: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> =
        [IDX_IMAGES_MAGIC, count, 2, 2].iter().flat_map(|word| word.to_be_bytes()).collect();
    bytes.extend((0..4 * count).map(|i| i as u8));
    bytes
}

/// The bytes of an IDX labels file of `count` labels.
fn idx_labels(count: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = [IDX_LABELS_MAGIC, count].iter().flat_map(|word| word.to_be_bytes()).collect();
    bytes.extend((0..count).map(|i| (i % 10) as u8));
    bytes
}

/// A pair of IDX files: `images` images and `labels` labels.
fn idx_pair(name: &str, images: u32, labels: u32) -> (TempFile, TempFile) {
    (
        TempFile::new(&format!("{name}-images-idx3-ubyte"), &idx_images(images)),
        TempFile::new(&format!("{name}-labels-idx1-ubyte"), &idx_labels(labels)),
    )
}

/// The labels file passed as the images file: both magic numbers.
#[test]
fn idx_wrong_magic() {
    let (images, labels) = idx_pair("magic", 10, 10);
    let message = data_error(Dataset::from_idx(&labels.0, &images.0, 255.0));
    assert_contains(
        &message,
        &[
            &labels.shown(),
            "bad magic number: expected 0x00000803 (IDX images, 3 dimensions), found 0x00000801",
        ],
    );
}

/// An images file cut short: the byte counts expected and found.
#[test]
fn idx_truncated() {
    let labels = TempFile::new("truncated-labels-idx1-ubyte", &idx_labels(10));
    let images = TempFile::new("truncated-images-idx3-ubyte", &idx_images(10)[..50]);
    let message = data_error(Dataset::from_idx(&images.0, &labels.0, 255.0));
    assert_contains(
        &message,
        &[
            &images.shown(),
            "truncated: expected 56 bytes (16-byte header + 10 images of 2x2 bytes), found 50",
        ],
    );
}

/// A header whose count times rows times columns overflows `usize`: no panic, no allocation,
/// and the sizes the header claims.
#[test]
fn idx_dimension_product_overflow() {
    let header: Vec<u8> =
        [IDX_IMAGES_MAGIC, u32::MAX, u32::MAX, u32::MAX].iter().flat_map(|word| word.to_be_bytes()).collect();
    let images = TempFile::new("overflow-images-idx3-ubyte", &header);
    let labels = TempFile::new("overflow-labels-idx1-ubyte", &idx_labels(10));
    let message = data_error(Dataset::from_idx(&images.0, &labels.0, 255.0));
    assert_contains(
        &message,
        &[
            &images.shown(),
            "truncated: expected more than usize::MAX bytes",
            "4294967295 images of 4294967295x4294967295 bytes",
            "found 16",
        ],
    );
}

/// Fewer labels than images: both counts and both files.
#[test]
fn idx_label_count_mismatch() {
    let (images, labels) = idx_pair("count", 10, 9);
    let message = data_error(Dataset::from_idx(&images.0, &labels.0, 255.0));
    assert_contains(
        &message,
        &[&labels.shown(), &format!("expected 10 labels, one per image of {}, found 9", images.shown())],
    );
}

// ---------------------------------------------------------------------------------------
// Data sets, preprocessing and splits
// ---------------------------------------------------------------------------------------

/// Two rows of features, three labels.
#[test]
fn dataset_new_with_mismatched_counts() {
    match Dataset::new(Tensor::zeros(&[2, 3]), vec![0, 1, 2]) {
        Err(LayerError::Shape { layer, expected, actual }) => {
            assert_eq!(layer, "dataset");
            assert_eq!(expected, "features (3, ...), one row per label");
            assert_eq!(actual, [2, 3]);
        }
        other => panic!("expected LayerError::Shape, got {other:?}"),
    }
}

/// A slice past the end: the range and the set's size.
#[test]
fn dataset_slice_out_of_range() {
    let data = Dataset::new(Tensor::zeros(&[2, 3]), vec![0, 1]).unwrap();
    assert_contains(&data_error(data.slice(1..3)), &["samples 1..3 of a set of 2"]);
}

/// An index past the end: the index and the number of samples.
#[test]
fn dataset_select_out_of_range() {
    let data = Dataset::new(Tensor::zeros(&[2, 3]), vec![0, 1]).unwrap();
    assert_contains(
        &data_error(data.select(&[0, 5])),
        &["sample index 5: expected an index below the 2 samples"],
    );
}

/// A sample shape of another size than the samples: the requested shape and both counts.
#[test]
fn dataset_sample_shape_of_another_size() {
    let data = Dataset::new(Tensor::zeros(&[2, 3]), vec![0, 1]).unwrap();
    match data.with_sample_shape(&[2, 2]) {
        Err(error @ LayerError::TensorLength { .. }) => {
            assert_eq!(error.to_string(), "tensor of shape [2, 2, 2] needs 8 values, got 6");
        }
        other => panic!("expected LayerError::TensorLength, got {other:?}"),
    }
}

/// Data of another length than the shape's product.
#[test]
fn tensor_data_of_the_wrong_length() {
    match Tensor::from_vec(&[2, 3], vec![0.0; 5]) {
        Err(error @ LayerError::TensorLength { .. }) => {
            assert_eq!(error.to_string(), "tensor of shape [2, 3] needs 6 values, got 5");
        }
        other => panic!("expected LayerError::TensorLength, got {other:?}"),
    }
}

/// Training features whose second column is 5 in every sample.
fn constant_column() -> Tensor {
    Tensor::from_vec(&[3, 2], vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]).unwrap()
}

/// A constant feature under `ZeroVariance::Error`: the feature, its value, and the policy
/// that accepts it, for both scalers.
#[test]
fn scaler_zero_variance_error_policy() {
    let message = data_error(Scaler::standard(&constant_column(), ZeroVariance::Error));
    assert_contains(
        &message,
        &[
            "scaler: feature 1 is 5 in every training sample, so its standard deviation is 0",
            "expected a varying feature (ZeroVariance::Unchanged leaves it as it is)",
        ],
    );
    let message = data_error(Scaler::min_max(&constant_column(), ZeroVariance::Error));
    assert_contains(&message, &["scaler: feature 1 is 5 in every training sample, so its range is 0"]);
}

/// A constant feature under `ZeroVariance::Unchanged`: no error; that feature is left as it
/// is (center 0, scale 1) while the others are scaled.
#[test]
fn scaler_zero_variance_unchanged_policy() {
    let scaler = Scaler::min_max(&constant_column(), ZeroVariance::Unchanged).unwrap();
    assert_eq!(scaler.center(), [1.0, 0.0]);
    assert_eq!(scaler.scale(), [2.0, 1.0]);
    let mut features = constant_column();
    scaler.transform(&mut features).unwrap();
    assert_eq!(features.data(), [0.0, 5.0, 0.5, 5.0, 1.0, 5.0]);
}

/// A negative (or NaN) fraction: both fractions and their domain.
#[test]
fn stratified_split_fraction_out_of_range() {
    let labels = [0, 1, 0, 1];
    let message = data_error(stratified_split(&labels, -0.1, 0.2, 0));
    assert_contains(
        &message,
        &["split fractions dev -0.1 and test 0.2 must be in [0, 1] and sum to at most 1"],
    );
    let message = data_error(stratified_split(&labels, 0.1, f64::NAN, 0));
    assert_contains(&message, &["dev 0.1 and test NaN must be in [0, 1]"]);
}

/// Dev and test fractions summing past 1.
#[test]
fn stratified_split_fractions_over_one() {
    let message = data_error(stratified_split(&[0, 1, 0, 1], 0.6, 0.6, 0));
    assert_contains(
        &message,
        &["split fractions dev 0.6 and test 0.6 must be in [0, 1] and sum to at most 1"],
    );
}

// ---------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------

/// Asserts a `LayerError::Shape` from `layer` whose expected shape holds every one of
/// `expected` and whose actual shape is `actual`.
fn assert_shape_error(result: keel_layers::Result<()>, layer: &str, expected: &[&str], actual: &[usize]) {
    match result {
        Err(LayerError::Shape { layer: name, expected: domain, actual: came }) => {
            assert_eq!(name, layer);
            assert_contains(&domain, expected);
            assert_eq!(came, actual);
        }
        other => panic!("expected LayerError::Shape from {layer}, got {other:?}"),
    }
}

/// Asserts a `LayerError::Argument` of `owner`'s `what` whose domain holds `expected` and
/// whose value is `actual`.
fn assert_argument_error<T: std::fmt::Debug>(
    result: keel_layers::Result<T>,
    owner: &str,
    what: &str,
    expected: &str,
    actual: &str,
) {
    match result {
        Err(LayerError::Argument { owner: o, what: w, expected: e, actual: a }) => {
            assert_eq!((o.as_str(), w.as_str()), (owner, what));
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
            assert_eq!(a, actual);
        }
        other => panic!("expected LayerError::Argument of {owner} {what}, got {other:?}"),
    }
}

/// 5 features into a layer of 4, and a sample without a batch dimension.
#[test]
fn dense_wrong_input_shape() {
    let mut dense = Dense::new(4, 3, Init::He, &mut rng()).unwrap();
    assert_shape_error(
        dense.forward(&Tensor::zeros(&[2, 5]), Mode::Train),
        "dense(4 -> 3)",
        &["(batch >= 1, 4)"],
        &[2, 5],
    );
    assert_shape_error(
        dense.forward(&Tensor::zeros(&[4]), Mode::Eval),
        "dense(4 -> 3)",
        &["(batch >= 1, 4)"],
        &[4],
    );
}

/// A 3x3 image into a 5x5 kernel: the size the kernel needs.
#[test]
fn conv2d_input_smaller_than_kernel() {
    let mut conv = Conv2d::new(Conv2dConfig::new(1, 2, 5), Init::He, &mut rng()).unwrap();
    assert_shape_error(
        conv.forward(&Tensor::zeros(&[1, 1, 3, 3]), Mode::Train),
        "conv2d(1 -> 2, 5x5, stride 1x1, pad 0x0)",
        &["(batch >= 1, 1, h, w) with h + 2·0 >= 5 and w + 2·0 >= 5", "got kh = 5"],
        &[1, 1, 3, 3],
    );
}

/// A 3-D input, and an image smaller than the window.
#[test]
fn maxpool2d_wrong_input() {
    let mut pool = MaxPool2d::new(2);
    let name = "maxpool2d(2x2, stride 2x2, pad 0x0)";
    assert_shape_error(
        pool.forward(&Tensor::zeros(&[1, 4, 4]), Mode::Train),
        name,
        &["(batch >= 1, channels >= 1, h, w)"],
        &[1, 4, 4],
    );
    assert_shape_error(
        pool.forward(&Tensor::zeros(&[1, 1, 1, 1]), Mode::Train),
        name,
        &["with h + 2·0 >= 2 and w + 2·0 >= 2"],
        &[1, 1, 1, 1],
    );
}

/// One sample through batch norm in training mode: one value per channel cannot be
/// normalised (evaluation mode takes it).
#[test]
fn batchnorm_batch_of_one_in_training() {
    let mut norm = BatchNorm::new_1d(3);
    assert_shape_error(
        norm.forward(&Tensor::zeros(&[1, 3]), Mode::Train),
        "batchnorm1d(3)",
        &["more than 1 value per channel when training (batch·spatial >= 2)"],
        &[1, 3],
    );
    norm.forward(&Tensor::zeros(&[1, 3]), Mode::Eval).unwrap();
}

/// 4 features per step into an LSTM of input size 3.
#[test]
fn lstm_wrong_feature_size() {
    let mut lstm = Lstm::new(RecurrentConfig::new(3, 4), &mut rng()).unwrap();
    assert_shape_error(
        lstm.forward(&Tensor::zeros(&[5, 2, 4]), Mode::Train),
        "lstm(3 -> 4)",
        &["(seq >= 1, batch >= 1, 3)"],
        &[5, 2, 4],
    );
}

/// Asserts a `LayerError::Index` of the embedding `(10, 4)` at `position` with `value`.
fn assert_embedding_index_error(result: keel_layers::Result<()>, position: usize, value: &str) {
    match result {
        Err(error @ LayerError::Index { .. }) => assert_eq!(
            error.to_string(),
            format!(
                "embedding(10, 4): index {value} at position {position} is not valid: \
                 expected a whole number in 0..10"
            )
        ),
        other => panic!("expected LayerError::Index, got {other:?}"),
    }
}

/// Token ids 12 and -1 in a table of 10 rows: the position and the value.
#[test]
fn embedding_index_out_of_range() {
    let mut embedding = Embedding::new(10, 4, None, &mut rng()).unwrap();
    let ids = Tensor::from_vec(&[1, 3], vec![1.0, 12.0, 3.0]).unwrap();
    assert_embedding_index_error(embedding.forward(&ids, Mode::Train), 1, "12");
    let ids = Tensor::from_vec(&[3], vec![-1.0, 2.0, 3.0]).unwrap();
    assert_embedding_index_error(embedding.forward(&ids, Mode::Train), 0, "-1");
}

/// Token ids 2.5 and NaN: not whole numbers.
#[test]
fn embedding_non_integer_index() {
    let mut embedding = Embedding::new(10, 4, None, &mut rng()).unwrap();
    let ids = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 2.5, 3.0]).unwrap();
    assert_embedding_index_error(embedding.forward(&ids, Mode::Train), 2, "2.5");
    let ids = Tensor::from_vec(&[2], vec![4.0, f32::NAN]).unwrap();
    assert_embedding_index_error(embedding.forward(&ids, Mode::Eval), 1, "NaN");
}

/// A dense layer of 0 input features.
#[test]
fn dense_zero_features() {
    assert_argument_error(
        Dense::new(0, 3, Init::He, &mut rng()),
        "dense",
        "(in_features, out_features)",
        "sizes of at least 1",
        "(0, 3)",
    );
}

/// A drop probability of 1.5 (and NaN).
#[test]
fn dropout_p_out_of_range() {
    assert_argument_error(Dropout::new(1.5, 0), "dropout", "p", "0 <= p <= 1", "1.5");
    assert_argument_error(Dropout::new(f32::NAN, 0), "dropout", "p", "0 <= p <= 1", "NaN");
    assert_eq!(Dropout::new(1.5, 0).unwrap_err().to_string(), "dropout: p: expected 0 <= p <= 1, got 1.5");
}

/// 2 groups over 3 input channels.
#[test]
fn conv2d_groups_not_dividing_channels() {
    let config = Conv2dConfig::new(3, 4, 3).with_groups(2);
    assert_argument_error(
        Conv2d::new(config, Init::He, &mut rng()),
        "conv2d",
        "groups",
        "a divisor of c_in = 3 and c_out = 4",
        "2",
    );
}

/// A hidden size of 0 for an LSTM and a GRU: the constraints and the whole configuration.
#[test]
fn recurrent_hidden_size_zero() {
    let config = RecurrentConfig::new(3, 0);
    for (cell, result) in [
        ("lstm", Lstm::new(config, &mut rng()).map(|_| ())),
        ("gru", Gru::new(config, &mut rng()).map(|_| ())),
    ] {
        match result {
            Err(LayerError::Argument { owner, what, expected, actual }) => {
                assert_eq!((owner.as_str(), what.as_str()), (cell, "config"));
                assert_contains(&expected, &["hidden_size >= 1"]);
                assert_contains(&actual, &["hidden_size: 0"]);
            }
            other => panic!("{cell}: expected LayerError::Argument, got {other:?}"),
        }
    }
}

/// `backward` on a fresh layer (every layer: `tests/backward_before_forward.rs`).
#[test]
fn backward_before_forward() {
    let mut dense = Dense::new(4, 3, Init::He, &mut rng()).unwrap();
    match dense.backward(&Tensor::zeros(&[2, 4]), &Tensor::zeros(&[2, 3])) {
        Err(LayerError::State(message)) => assert_eq!(message, "dense(4 -> 3): backward before forward"),
        other => panic!("expected LayerError::State, got {other:?}"),
    }
}

/// `backward` with an input or a gradient of another shape than the last forward's: the
/// error names the tensor that differs (the shape-preserving layers: activation, dropout,
/// batch norm).
#[test]
fn backward_with_another_shape_than_the_forward() {
    let mut relu = keel_layers::Activation::new(keel_layers::ActivationKind::Relu);
    relu.forward(&tensor(&[2, 3], 1), Mode::Train).unwrap();
    for (input, grad, what, actual) in
        [([2, 3], [3, 2], "gradient", [3, 2]), ([3, 2], [2, 3], "input", [3, 2])]
    {
        match relu.backward(&tensor(&input, 2), &tensor(&grad, 3)) {
            Err(LayerError::Shape { layer, expected, actual: got }) => {
                assert_eq!(layer, format!("relu ({what})"));
                assert_eq!(expected, "[2, 3], the shape of the last forward");
                assert_eq!(got, actual);
            }
            other => panic!("{what}: expected LayerError::Shape, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Optimizers
// ---------------------------------------------------------------------------------------

/// A learning rate of NaN.
#[test]
fn adam_lr_nan() {
    let config = AdamConfig { lr: f64::NAN, ..AdamConfig::default() };
    assert_argument_error(Adam::new(config), "adam", "lr", "0 <= lr <= f32::MAX", "NaN");
}

/// A learning rate beyond `f32::MAX` (1e40): finite as the `f64` it is given in, infinite
/// in the `f32` updates, so refused too.
#[test]
fn adam_lr_beyond_f32() {
    let config = AdamConfig { lr: 1e40, ..AdamConfig::default() };
    assert_argument_error(Adam::new(config), "adam", "lr", "0 <= lr <= f32::MAX", &1e40f64.to_string());
}

/// β1 = 1: the moving average would never move.
#[test]
fn adam_beta1_one() {
    let config = AdamConfig { beta1: 1.0, ..AdamConfig::default() };
    assert_argument_error(Adam::new(config), "adam", "beta1", "0 <= beta1 < 1", "1");
}

/// Nesterov without momentum.
#[test]
fn sgd_nesterov_without_momentum() {
    let config = SgdConfig { nesterov: true, ..SgdConfig::default() };
    assert_argument_error(
        Sgd::new(config),
        "sgd",
        "nesterov",
        "momentum > 0 and dampening = 0",
        "momentum = 0, dampening = 0",
    );
}

/// A dense layer `(in -> 3)` with gradients from one backward pass, as a step finds it.
fn dense_with_grads(in_features: usize) -> Dense {
    let mut dense = Dense::new(in_features, 3, Init::He, &mut rng()).unwrap();
    let x = tensor(&[2, in_features], 1);
    dense.forward(&x, Mode::Train).unwrap();
    dense.backward(&x, &tensor(&[2, 3], 2)).unwrap();
    dense
}

/// An Adam stepped on model A, then on model B of other parameter shapes: refused before
/// any update, naming the parameter and both shapes.
#[test]
fn optimizer_stepped_on_another_model() {
    let (mut a, mut b) = (dense_with_grads(4), dense_with_grads(5));
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    adam.step(&mut a).unwrap();
    let before = values(&mut b);
    match adam.step(&mut b) {
        Err(LayerError::Config { model, expected, actual }) => {
            assert_eq!(model, "adam");
            assert_contains(&expected, &["the model it has stepped before", "'weight' of shape [3, 4]"]);
            assert_eq!(actual, "shape [3, 5]");
        }
        other => panic!("expected LayerError::Config, got {other:?}"),
    }
    assert_eq!(values(&mut b), before);
}

/// The refused step should leave the optimizer as it was, so that the next step on its own
/// model is the one it would have taken.
#[test]
fn a_refused_step_leaves_the_step_count() {
    let (mut a, mut b) = (dense_with_grads(4), dense_with_grads(5));
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    adam.step(&mut a).unwrap();
    assert!(matches!(adam.step(&mut b), Err(LayerError::Config { .. })));
    assert_eq!(adam.state().step, 1);
}

/// A negative max norm.
#[test]
fn clip_grad_norm_negative_max_norm() {
    let mut model = dense_with_grads(4);
    let before = model.weight.grad.clone();
    assert_argument_error(
        clip_grad_norm(&mut model, -1.0),
        "clip_grad_norm",
        "max_norm",
        "max_norm >= 0",
        "-1",
    );
    assert_eq!(model.weight.grad, before);
}

// ---------------------------------------------------------------------------------------
// Losses
// ---------------------------------------------------------------------------------------

/// A label of 5 among 3 classes: an index error naming the loss, the row, the label and the
/// classes (`fit` and `evaluate` name the sample in its data set, see `fit_label_out_of_range`).
#[test]
fn cross_entropy_label_out_of_range() {
    let mut loss = SoftmaxCrossEntropy::new();
    match loss.forward(&Tensor::zeros(&[3, 3]), &[0, 5, 1]) {
        Err(error @ LayerError::Index { .. }) => assert_eq!(
            error.to_string(),
            "softmax_cross_entropy: index 5 at position 1 is not valid: expected a class index in 0..3"
        ),
        other => panic!("expected LayerError::Index, got {other:?}"),
    }
}

/// The same label in a data set given to `fit`: the sample's index in the training set (not
/// its row in the shuffled batch) and the epoch.
#[test]
fn fit_label_out_of_range() {
    let data = Dataset::new(Tensor::zeros(&[6, 2]), vec![0, 1, 1, 0, 9, 1]).unwrap();
    let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
    let error = fit(&mut linear_model(), &mut sgd, &mut SoftmaxCrossEntropy::new(), &data, &data, &quiet(2));
    match error {
        Err(error @ LayerError::InSample { sample: 4, epoch: Some(1), .. }) => {
            assert_contains(&error.to_string(), &["training sample 4 (epoch 1)", "index 9", "0..2"])
        }
        other => panic!("expected LayerError::InSample for sample 4, got {other:?}"),
    }
}

/// Two labels for three rows of logits: a shape error of the loss's targets.
#[test]
fn cross_entropy_wrong_number_of_labels() {
    let mut loss = SoftmaxCrossEntropy::new();
    match loss.forward(&Tensor::zeros(&[3, 3]), &[0, 1]) {
        Err(LayerError::Shape { layer, expected, actual }) => {
            assert_eq!(layer, "softmax_cross_entropy (targets)");
            assert_contains(&expected, &["3 class indices"]);
            assert_eq!(actual, [2]);
        }
        other => panic!("expected LayerError::Shape, got {other:?}"),
    }
}

/// A NaN logit: no error from the loss itself, a NaN loss (as in PyTorch); `fit` turns it
/// into `LayerError::NonFiniteLoss` (see `fit_on_nan_features`).
#[test]
fn cross_entropy_nan_logits() {
    let mut loss = SoftmaxCrossEntropy::new();
    let logits = Tensor::from_vec(&[2, 3], vec![0.0, f32::NAN, 1.0, 0.0, 1.0, 2.0]).unwrap();
    assert!(loss.forward(&logits, &[0, 2]).unwrap().is_nan());
}

/// Targets `(4)` for logits `(4, 1)`: both shapes.
#[test]
fn bce_targets_of_the_wrong_shape() {
    let mut loss = BceWithLogits::new();
    match loss.forward(&Tensor::zeros(&[4, 1]), &Tensor::zeros(&[4])) {
        Err(LayerError::Shape { layer, expected, actual }) => {
            assert_eq!(layer, "bce_with_logits (targets)");
            assert_eq!(expected, "[4, 1], the shape of the output");
            assert_eq!(actual, [4]);
        }
        other => panic!("expected LayerError::Shape, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------

/// 8 samples of 2 features in [-1, 1), classes alternating 0 and 1.
fn two_features() -> Dataset {
    let features = Tensor::from_vec(&[8, 2], (0..16).map(|i| i as f32 / 8.0 - 1.0).collect()).unwrap();
    Dataset::new(features, vec![0, 1, 0, 1, 0, 1, 0, 1]).unwrap()
}

/// Two linear layers 2 -> 8 -> 2.
fn linear_model() -> Sequential {
    let mut rng = rng();
    Sequential::new()
        .push(Dense::new(2, 8, Init::He, &mut rng).unwrap())
        .push(Dense::new(8, 2, Init::He, &mut rng).unwrap())
}

fn quiet(batch_size: usize) -> FitConfig {
    FitConfig { epochs: 3, batch_size, quiet: true, ..FitConfig::default() }
}

/// `fit` with `config` on the two-feature set, `train` and `dev` as given, Adam.
fn fit_with(train: &Dataset, dev: &Dataset, config: &FitConfig) -> keel_layers::Result<()> {
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    fit(&mut linear_model(), &mut adam, &mut SoftmaxCrossEntropy::new(), train, dev, config).map(|_| ())
}

/// No dev samples: both counts.
#[test]
fn fit_empty_dev_set() {
    let empty = Dataset { features: Tensor::zeros(&[0, 2]), labels: Vec::new() };
    let message = data_error(fit_with(&two_features(), &empty, &quiet(4)));
    assert_contains(&message, &["fit needs samples to train and evaluate on, got 8 train and 0 dev"]);
}

/// A batch size of 0: should be an argument error of `fit` naming the field and its value,
/// as hyper-parameters of layers and optimizers are.
#[test]
fn fit_batch_size_zero() {
    assert_argument_error(
        fit_with(&two_features(), &two_features(), &quiet(0)),
        "fit",
        "batch_size",
        "at least 1",
        "0",
    );
}

/// An early-stopping patience of 0: should be an argument error naming the field and value.
#[test]
fn fit_patience_zero() {
    let config = FitConfig { patience: Some(0), ..quiet(4) };
    assert_argument_error(
        fit_with(&two_features(), &two_features(), &config),
        "fit",
        "patience",
        "at least 1 epoch",
        "0",
    );
}

/// A learning rate of 1e30: the first step makes the weights ~1e29, and two such layers
/// overflow `f32` in the next forward pass.
#[test]
fn fit_diverging_loss() {
    let data = two_features();
    let mut sgd = Sgd::new(SgdConfig { lr: 1e30, ..SgdConfig::default() }).unwrap();
    let result = fit(&mut linear_model(), &mut sgd, &mut SoftmaxCrossEntropy::new(), &data, &data, &quiet(4));
    match result {
        Err(error @ LayerError::NonFiniteLoss { epoch: 1, step: 2, .. }) => {
            assert_contains(&error.to_string(), &["non-finite loss", "at epoch 1, step 2"]);
        }
        other => panic!("expected LayerError::NonFiniteLoss at epoch 1, step 2, got {other:?}"),
    }
}

/// Training features holding NaN: the first step's loss is NaN.
#[test]
fn fit_on_nan_features() {
    let mut data = two_features();
    data.features.data_mut()[3] = f32::NAN;
    match fit_with(&data, &two_features(), &quiet(8)) {
        Err(error @ LayerError::NonFiniteLoss { epoch: 1, step: 1, .. }) => {
            assert_contains(&error.to_string(), &["non-finite loss NaN at epoch 1, step 1"]);
        }
        other => panic!("expected LayerError::NonFiniteLoss at epoch 1, step 1, got {other:?}"),
    }
}

/// Four samples of NaN features, three of class 0.
fn nan_features() -> Dataset {
    Dataset::new(Tensor::from_vec(&[4, 2], vec![f32::NAN; 8]).unwrap(), vec![0, 0, 0, 1]).unwrap()
}

/// `evaluate` on NaN features: should be an error naming the NaN, not an accuracy.
#[test]
fn evaluate_nan_features() {
    let message =
        data_error(evaluate(&mut linear_model(), &mut SoftmaxCrossEntropy::new(), &nan_features(), 2));
    assert_contains(&message, &["NaN"]);
}

/// `predict_classes` on NaN features: should be an error naming the NaN, not class 0.
#[test]
fn predict_classes_nan_features() {
    let message = data_error(predict_classes(&mut linear_model(), &nan_features().features, 2));
    assert_contains(&message, &["NaN"]);
}

// ---------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------

/// The model of the checkpoint tests: weight `(2, 3)` and bias `(2)`.
fn small_model() -> Dense {
    Dense::new(3, 2, Init::He, &mut rng()).unwrap()
}

/// A safetensors file of `tensors` (name, type, shape), every value zero.
fn safetensors_file(name: &str, tensors: &[(&str, Dtype, &[usize])]) -> TempFile {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, dtype, shape)| vec![0; dtype.bitsize() / 8 * shape.iter().product::<usize>()])
        .collect();
    let views = tensors.iter().zip(&bytes).map(|((name, dtype, shape), bytes)| {
        (*name, TensorView::new(*dtype, shape.to_vec(), bytes).unwrap())
    });
    TempFile::new(name, &safetensors::serialize(views, None).unwrap())
}

/// Loads `path` into a fresh [`small_model`], asserts a `LayerError::Checkpoint` naming
/// `path` and the model unchanged, and returns the detail.
fn failed_load(path: &Path) -> String {
    let mut model = small_model();
    let before = values(&mut model);
    let detail = match load_safetensors(&mut model, path) {
        Err(LayerError::Checkpoint { path: named, detail }) => {
            assert_eq!(named, path.display().to_string());
            detail
        }
        other => panic!("expected LayerError::Checkpoint, got {other:?}"),
    };
    assert_eq!(values(&mut model), before, "a failed load changed the model");
    detail
}

/// A path with no file.
#[test]
fn checkpoint_file_missing() {
    assert_contains(&failed_load(&temp_path("no-such-checkpoint.safetensors")), &["No such file"]);
}

/// A saved checkpoint without its last bytes.
fn truncated_checkpoint(name: &str) -> TempFile {
    let saved = TempFile(temp_path(&format!("{name}-whole.safetensors")));
    save_safetensors(&mut small_model(), &saved.0).unwrap();
    let bytes = std::fs::read(&saved.0).unwrap();
    TempFile::new(&format!("{name}.safetensors"), &bytes[..bytes.len() - 4])
}

/// A checkpoint cut short: an error, the model unchanged, and the format library's reason.
#[test]
fn checkpoint_truncated() {
    let file = truncated_checkpoint("truncated");
    assert_contains(&failed_load(&file.0), &["incomplete metadata, file not fully covered"]);
}

/// The message of a truncated checkpoint should say that it is truncated.
#[test]
fn checkpoint_truncated_message_says_truncated() {
    let file = truncated_checkpoint("truncated-message");
    assert_contains(&failed_load(&file.0), &["truncated"]);
}

/// A weight `(3, 2)` for the model's `(2, 3)`: the tensor and both shapes.
#[test]
fn checkpoint_tensor_of_wrong_shape() {
    let file = safetensors_file(
        "wrong-shape.safetensors",
        &[("weight", Dtype::F32, &[3, 2]), ("bias", Dtype::F32, &[2])],
    );
    assert_eq!(failed_load(&file.0), "tensor weight: expected shape [2, 3], got [3, 2]");
}

/// A file without the bias (strict load).
#[test]
fn checkpoint_missing_tensor() {
    let file = safetensors_file("missing-tensor.safetensors", &[("weight", Dtype::F32, &[2, 3])]);
    assert_eq!(failed_load(&file.0), "tensor bias of the model is missing");
}

/// A file with a tensor the model does not have (strict load).
#[test]
fn checkpoint_unexpected_tensor() {
    let file = safetensors_file(
        "unexpected-tensor.safetensors",
        &[("weight", Dtype::F32, &[2, 3]), ("bias", Dtype::F32, &[2]), ("scale", Dtype::F32, &[2])],
    );
    assert_eq!(failed_load(&file.0), "tensor scale is not in the model");
}

/// A file of `F64` tensors.
#[test]
fn checkpoint_other_dtype() {
    let file =
        safetensors_file("f64.safetensors", &[("weight", Dtype::F64, &[2, 3]), ("bias", Dtype::F64, &[2])]);
    assert_eq!(failed_load(&file.0), "tensor weight: expected F32, got F64");
}

/// Saving into a directory that does not exist: an error naming the path, and nothing
/// written (the directory is still absent).
#[test]
fn save_into_missing_directory() {
    let directory = temp_path("no-such-directory");
    let _ = std::fs::remove_dir_all(&directory);
    let path = directory.join("model.safetensors");
    match save_safetensors(&mut small_model(), &path) {
        Err(LayerError::Checkpoint { path: named, detail }) => {
            assert_eq!(named, path.display().to_string());
            assert_contains(&detail, &["No such file or directory"]);
        }
        other => panic!("expected LayerError::Checkpoint, got {other:?}"),
    }
    assert!(!directory.exists(), "saving created {}", directory.display());
}

/// Adam's state file loaded into an RMSprop: both kinds, the file, and the optimizer as it
/// was.
#[test]
fn optimizer_state_of_another_kind() {
    let mut model = dense_with_grads(4);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    adam.step(&mut model).unwrap();
    let file = TempFile(temp_path("adam-state.safetensors"));
    save_optimizer_state(&mut model, &adam, &file.0).unwrap();
    let mut rmsprop = RmsProp::new(RmspropConfig::default()).unwrap();
    let before = rmsprop.state();
    match load_optimizer_state(&mut model, &mut rmsprop, &file.0) {
        Err(LayerError::Config { model, expected, actual }) => {
            assert_eq!(model, format!("rmsprop optimizer (from {})", file.shown()));
            assert_eq!(expected, "the state of an optimizer of kind \"rmsprop\"");
            assert_eq!(actual, "\"adam\"");
        }
        other => panic!("expected LayerError::Config, got {other:?}"),
    }
    assert_eq!(rmsprop.state(), before);
}
