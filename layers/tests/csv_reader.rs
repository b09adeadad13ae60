//! The CSV loader (`CsvReader`): every option on a small file, and every kind of bad input
//! as a `LayerError::Data` whose message names the file, the line, the column and the cause.

use std::io::Write;
use std::path::PathBuf;

use flate2::write::GzEncoder;
use flate2::Compression;
use keel_layers::{Column, CsvData, CsvReader, LayerError, OneHot, Tensor, MAX_CLASS_INDEX};

/// A file holding `text` (gzipped if `gzip`) that is removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str, gzip: bool) -> Self {
        let path = std::env::temp_dir().join(format!("keel-csv-reader-{}-{name}", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        if gzip {
            let mut encoder = GzEncoder::new(file, Compression::fast());
            encoder.write_all(text.as_bytes()).unwrap();
            encoder.finish().unwrap();
        } else {
            file.write_all(text.as_bytes()).unwrap();
        }
        TempFile(path)
    }

    fn plain(name: &str, text: &str) -> Self {
        Self::new(name, text, false)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The message of a data error (panics on success or another error).
fn message<T: std::fmt::Debug>(result: keel_layers::Result<T>) -> String {
    match result {
        Err(LayerError::Data(message)) => message,
        other => panic!("expected a data error, got {other:?}"),
    }
}

/// Asserts that reading `text` with `reader` as class names fails with a message holding
/// the file's path followed by `expected`.
fn assert_error(reader: &CsvReader, name: &str, text: &str, expected: &str) {
    let file = TempFile::plain(name, text);
    let message = message(reader.read_classes(&file.0));
    let located = format!("{}{expected}", file.0.display());
    assert!(message.contains(&located), "{name}: expected {located:?} in {message:?}");
}

const IRIS: &str = "sepal length,sepal width,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n6.3,3.3,virginica\n4.9,3.0,setosa\n";

#[test]
fn a_header_row_gives_names_and_class_names_map_to_sorted_indices() {
    let file = TempFile::plain("iris.csv", IRIS);
    let data = CsvReader::with_header().read_classes(&file.0).unwrap();
    assert_eq!(data.feature_names, ["sepal length", "sepal width"]);
    assert_eq!(data.label_name.as_deref(), Some("species"));
    assert_eq!(data.classes, ["setosa", "versicolor", "virginica"]);
    assert_eq!(data.dataset.labels, [0, 1, 2, 0]);
    assert_eq!(data.dataset.features.shape(), [4, 2]);
    assert_eq!(data.dataset.features.data(), [5.1, 3.5, 7.0, 3.2, 6.3, 3.3, 4.9, 3.0]);
    assert_eq!(data.feature_index("sepal width").unwrap(), 1);
    assert!(message(data.feature_index("petal")).contains("no feature column named \"petal\""));
}

#[test]
fn the_class_order_depends_only_on_the_set_of_labels_and_numbers_sort_numerically() {
    let first = TempFile::plain("order-a.csv", "x,y\n1,b\n2,a\n3,c\n");
    let second = TempFile::plain("order-b.csv", "x,y\n1,c\n2,b\n3,a\n");
    let reader = CsvReader::with_header();
    assert_eq!(reader.read_classes(&first.0).unwrap().classes, ["a", "b", "c"]);
    assert_eq!(reader.read_classes(&second.0).unwrap().classes, ["a", "b", "c"]);
    assert_eq!(reader.read_classes(&second.0).unwrap().dataset.labels, [2, 1, 0]);
    // "10" after "9", not between "1" and "2" as bytes would sort it.
    let numeric = TempFile::plain("order-numeric.csv", "x,y\n1,10\n2,9\n3,-1\n4,9\n");
    let data = reader.read_classes(&numeric.0).unwrap();
    assert_eq!(data.classes, ["-1", "9", "10"]);
    assert_eq!(data.dataset.labels, [2, 1, 0, 1]);
}

#[test]
fn the_label_column_by_index_or_name_and_the_others_are_features_in_order() {
    let file = TempFile::plain("label-first.csv", "diagnosis,radius,texture\nM,17.9,10.3\nB,13.5,14.3\n");
    for label in [Column::Index(0), Column::Name("diagnosis".into())] {
        let data = CsvReader::with_header().label(label).read_classes(&file.0).unwrap();
        assert_eq!(data.feature_names, ["radius", "texture"]);
        assert_eq!(data.label_name.as_deref(), Some("diagnosis"));
        assert_eq!(data.classes, ["B", "M"]);
        assert_eq!(data.dataset.labels, [1, 0]);
        assert_eq!(data.dataset.features.data(), [17.9, 10.3, 13.5, 14.3]);
    }
    let file = TempFile::plain("label-middle.csv", "x,y,z\n1,20,2\n3,10,4\n");
    let middle = CsvReader::with_header().label(Column::Index(1)).read_classes(&file.0).unwrap();
    assert_eq!(middle.feature_names, ["x", "z"]);
    assert_eq!(middle.classes, ["10", "20"]);
    assert_eq!(middle.dataset.labels, [1, 0]);
    assert_eq!(middle.dataset.features.data(), [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn delimiters_quotes_spaces_and_gzip() {
    let text = "a;b;\"the class\"\n 1 ; 2 ;\"x; y\"\n3;4;z\n";
    for gzip in [false, true] {
        let file = TempFile::new(&format!("semicolon-{gzip}"), text, gzip);
        let data = CsvReader::with_header().delimiter(b';').read_classes(&file.0).unwrap();
        assert_eq!(data.label_name.as_deref(), Some("the class"));
        assert_eq!(data.classes, ["x; y", "z"]);
        assert_eq!(data.dataset.features.data(), [1.0, 2.0, 3.0, 4.0]);
    }
    let tabs = TempFile::plain("tabs.tsv", "1\t2\t0\n3\t4\t1\n");
    let data = CsvReader::headerless().delimiter(b'\t').read_class_indices(&tabs.0).unwrap();
    assert_eq!(data.dataset.labels, [0, 1]);
    assert!(data.feature_names.is_empty() && data.label_name.is_none());
}

#[test]
fn headerless_files_and_class_indices_as_written() {
    let file = TempFile::plain("indices.csv", "0.5,3\n1.5,0\n\n2.5,3.0\n");
    let data = CsvReader::headerless().scale(0.5).read_class_indices(&file.0).unwrap();
    assert_eq!(data.dataset.labels, [3, 0, 3]);
    assert_eq!(data.classes, ["0", "1", "2", "3"]);
    assert_eq!(data.dataset.features.data(), [1.0, 3.0, 5.0]);
}

#[test]
fn regression_targets_are_a_column_tensor() {
    let file = TempFile::plain("targets.csv", "age,bmi,progression\n59,32.1,151\n48,21.6,75.5\n");
    let data: CsvData<Tensor> = CsvReader::with_header().read_targets(&file.0).unwrap();
    assert_eq!(data.dataset.labels.shape(), [2, 1]);
    assert_eq!(data.dataset.labels.data(), [151.0, 75.5]);
    assert_eq!(data.dataset.features.data(), [59.0, 32.1, 48.0, 21.6]);
    assert!(data.classes.is_empty());
    let bad = TempFile::plain("bad-target.csv", "x,y\n1,2\n3,inf\n");
    let error = message(CsvReader::with_header().read_targets(&bad.0));
    assert!(
        error.contains(&format!("{}:3: target \"inf\" is not a finite number", bad.0.display())),
        "{error}"
    );
}

#[test]
fn a_numeric_first_row_declared_a_header_is_read_as_names() {
    let file = TempFile::plain("numeric-header.csv", "1,2,3\n4,5,0\n");
    let data = CsvReader::with_header().read_class_indices(&file.0).unwrap();
    assert_eq!(data.feature_names, ["1", "2"]);
    assert_eq!(data.label_name.as_deref(), Some("3"));
    assert_eq!(data.dataset.len(), 1);
}

#[test]
fn non_finite_values_are_errors_naming_line_and_column_unless_allowed() {
    let text = "a,b,label\n1,2,x\n3,NaN,y\n,4,x\n5,-inf,y\n";
    let file = TempFile::plain("non-finite.csv", text);
    let error = message(CsvReader::with_header().read_classes(&file.0));
    let path = file.0.display();
    assert!(
        error.contains(&format!("{path}:3: column 2 (\"b\"): \"NaN\" is not a finite number")),
        "{error}"
    );
    assert!(error.contains("allow_non_finite"), "{error}");
    for (name, text, expected) in [
        (
            "empty-field",
            "a,b,label\n1,2,x\n,4,x\n",
            ":3: column 1 (\"a\"): empty field: expected a finite number",
        ),
        ("inf", "a,b,label\n1,inf,x\n", ":2: column 2 (\"b\"): \"inf\" is not a finite number"),
        ("overflow", "a,b,label\n1e39,2,x\n", ":2: column 1 (\"a\"): \"1e39\" is not a finite number"),
        ("word", "a,b,label\n1,2,x\n1,two,x\n", ":3: column 2 (\"b\"): \"two\" is not a finite number"),
    ] {
        assert_error(&CsvReader::with_header(), name, text, expected);
    }
    let data = CsvReader::with_header().allow_non_finite(true).read_classes(&file.0).unwrap();
    let values = data.dataset.features.data();
    assert_eq!(&values[..2], [1.0, 2.0]);
    assert!(values[3].is_nan() && values[4].is_nan());
    assert_eq!(values[7], f32::NEG_INFINITY);
}

#[test]
fn a_wrong_delimiter_is_named() {
    let semicolons = "a;b;label\n1;2;x\n";
    assert_error(
        &CsvReader::with_header(),
        "wrong-delimiter",
        semicolons,
        ":1: 1 column found on line 1; is the delimiter ';'?",
    );
    assert_error(
        &CsvReader::headerless(),
        "wrong-delimiter-data",
        "1;2;0\n",
        ":1: 1 column found on line 1; is the delimiter ';'?",
    );
    assert_error(
        &CsvReader::with_header().delimiter(b';'),
        "wrong-delimiter-tab",
        "a\tb\tc\n",
        ":1: 1 column found on line 1; is the delimiter '\\t'?",
    );
    assert_error(
        &CsvReader::with_header(),
        "one-column",
        "a\n1\n",
        ":1: 1 column found on line 1: expected at least 2",
    );
    // A field holding another delimiter.
    assert_error(
        &CsvReader::with_header(),
        "mixed-delimiters",
        "a,b,label\n1,5;2,x\n",
        ":2: column 2 (\"b\"): \"5;2\" is not a finite number; is the delimiter ';'?",
    );
}

#[test]
fn a_header_row_not_declared_is_suggested() {
    assert_error(
        &CsvReader::headerless(),
        "undeclared-header",
        "width,height,label\n1,2,0\n",
        ":1: column 1: \"width\" is not a finite number; is line 1 a header row?",
    );
}

#[test]
fn ragged_rows_are_errors_naming_the_line() {
    assert_error(
        &CsvReader::with_header(),
        "ragged-short",
        "a,b,c\n1,2,x\n1,x\n",
        ":3: expected 3 fields, got 2",
    );
    assert_error(
        &CsvReader::with_header(),
        "ragged-long",
        "a,b,c\n1,2,x,4\n",
        ":2: expected 3 fields, got 4",
    );
    // Blank lines are skipped but still counted.
    assert_error(
        &CsvReader::with_header(),
        "ragged-after-blank",
        "a,b,c\n\n   \n1,2\n",
        ":4: expected 3 fields, got 2",
    );
}

#[test]
fn label_columns_that_do_not_exist_are_errors() {
    let reader = CsvReader::with_header().label(Column::Name("specie".into()));
    assert_error(
        &reader,
        "unknown-name",
        IRIS,
        ": no column named \"specie\" for the label: expected one of [\"sepal length\"",
    );
    let reader = CsvReader::with_header().label(Column::Index(3));
    assert_error(
        &reader,
        "index-past-end",
        IRIS,
        ": label column index 3: expected an index below the 3 columns",
    );
    let reader = CsvReader::headerless().label(Column::Name("species".into()));
    assert_error(
        &reader,
        "name-without-header",
        "1,2,0\n",
        ": a column is given by name (Name(\"species\"))",
    );
    assert_error(
        &CsvReader::with_header(),
        "empty-label",
        "a,b,c\n1,2,\n",
        ":2: column 3 (\"c\"): empty label",
    );
}

#[test]
fn empty_files_and_header_only_files_are_errors() {
    assert_error(&CsvReader::with_header(), "empty", "", ": empty file: expected a header row and rows");
    assert_error(&CsvReader::headerless(), "empty-headerless", "\n\n", ": empty file: expected rows");
    assert_error(
        &CsvReader::with_header(),
        "header-only",
        "a,b,c\n",
        ": no samples: the header row is the only row",
    );
    let missing = message(CsvReader::with_header().read_classes("no/such/file.csv"));
    assert!(missing.contains("no/such/file.csv: cannot read"), "{missing}");
}

#[test]
fn class_indices_must_be_whole_non_negative_numbers() {
    let reader = CsvReader::headerless();
    for (name, text, expected) in [
        ("fraction", "1,0.5\n", ":1: label 0.5 is not a class index"),
        ("negative", "1,0\n1,-2\n", ":2: label -2 is not a class index"),
        ("word", "1,cat\n", ":1: label \"cat\" is not a number"),
        // Found by the csv fuzz target: one large index made 266,666,668 class names (6.4 GB).
        ("huge", "1,266666667\n", ":1: label 266666667 is not a class index"),
        ("u32 max", "1,0\n1,4294967295\n", ":2: label 4294967295 is not a class index"),
    ] {
        let file = TempFile::plain(name, text);
        let error = message(reader.read_class_indices(&file.0));
        assert!(error.contains(&format!("{}{expected}", file.0.display())), "{name}: {error}");
    }
    // The largest index taken names every class up to it.
    let file = TempFile::plain("largest", &format!("1,{MAX_CLASS_INDEX}\n"));
    let data = reader.read_class_indices(&file.0).unwrap();
    assert_eq!(data.classes.len(), MAX_CLASS_INDEX as usize + 1);
}

#[test]
fn windows_line_ends_and_a_byte_order_mark_are_read() {
    let file = TempFile::plain("excel.csv", "\u{feff}age,label\r\n30,yes\r\n40,no\r\n");
    let data = CsvReader::with_header().read_classes(&file.0).unwrap();
    assert_eq!(data.feature_names, ["age"]);
    assert_eq!(data.label_name.as_deref(), Some("label"));
    assert_eq!(data.classes, ["no", "yes"]);
    assert_eq!(data.dataset.features.data(), [30.0, 40.0]);
}

#[test]
fn categorical_text_features_become_codes_that_one_hot_expands() {
    let text = "colour,size,grade,label\nred,1.5,B,yes\ngreen,2.5,A,no\nred,3.5,C,no\nblue,4.5,A,yes\n";
    let file = TempFile::plain("categorical.csv", text);
    let data = CsvReader::with_header()
        .categorical(Column::Name("grade".into()))
        .categorical(Column::Index(0))
        .read_classes(&file.0)
        .unwrap();
    assert_eq!(
        data.categories,
        [
            (0, vec!["blue".to_string(), "green".into(), "red".into()]),
            (2, vec!["A".into(), "B".into(), "C".into()])
        ]
    );
    assert_eq!(data.dataset.features.data(), [2.0, 1.5, 1.0, 1.0, 2.5, 0.0, 2.0, 3.5, 2.0, 0.0, 4.5, 0.0]);
    let one_hot = OneHot::fit(&data.dataset.features, &[0, 2]).unwrap();
    let encoded = one_hot.transform(&data.dataset.features).unwrap();
    assert_eq!(encoded.shape(), [4, 7]);
    assert_eq!(&encoded.data()[..7], [0.0, 0.0, 1.0, 1.5, 0.0, 1.0, 0.0]);
    // A categorical column after the label is numbered among the features.
    let file = TempFile::plain("categorical-after-label.csv", "label,x,kind\n1,0.5,b\n0,0.25,a\n");
    let data = CsvReader::with_header()
        .label(Column::Index(0))
        .categorical(Column::Last)
        .read_class_indices(&file.0)
        .unwrap();
    assert_eq!(data.categories, [(1, vec!["a".to_string(), "b".into()])]);
    assert_eq!(data.dataset.features.data(), [0.5, 1.0, 0.25, 0.0]);
}

#[test]
fn categorical_columns_that_clash_or_are_empty_are_errors() {
    let text = "a,b,label\nx,1,0\n";
    let reader = CsvReader::with_header().categorical(Column::Last);
    assert_error(
        &reader,
        "categorical-label",
        text,
        ": column 3 (\"label\") is the label, so it cannot be a categorical feature",
    );
    let reader = CsvReader::with_header().categorical(Column::Index(0)).categorical(Column::Name("a".into()));
    assert_error(
        &reader,
        "categorical-twice",
        text,
        ": column 1 (\"a\") is given twice as a categorical feature",
    );
    let reader = CsvReader::with_header().categorical(Column::Name("z".into()));
    assert_error(&reader, "categorical-unknown", text, ": no column named \"z\" for the categorical feature");
    let reader = CsvReader::with_header().categorical(Column::Index(0));
    assert_error(
        &reader,
        "categorical-empty",
        "a,b,label\nx,1,0\n,2,1\n",
        ":3: column 1 (\"a\"): empty category",
    );
    let reader = CsvReader::headerless().categorical(Column::Name("a".into()));
    assert_error(&reader, "categorical-no-header", "x,1,0\n", ": a column is given by name");
}
