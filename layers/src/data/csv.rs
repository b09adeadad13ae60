//! Reading a CSV file into a [`Dataset`]: [`CsvReader`] holds the options (header row,
//! delimiter, label column, categorical feature columns, whether missing and infinite
//! values are allowed) and reads a file, plain or gzip-compressed, into a [`CsvData`]: the
//! data set with the column names, the class names of its labels and the category names of
//! its categorical features.
//!
//! ```
//! use keel_layers::data::{Column, CsvReader};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A header row, `;`-separated, the class in the column named "species" given as text.
//! let path = std::env::temp_dir().join(format!("keel_doc_iris_{}.csv", std::process::id()));
//! std::fs::write(&path, "sepal;petal;species\n5.1;1.4;setosa\n6.3;4.9;versicolor\n5.0;1.3;setosa\n")?;
//! let iris = CsvReader::with_header().delimiter(b';').label(Column::Name("species".into())).read_classes(&path)?;
//! std::fs::remove_file(&path)?;
//!
//! // Features (3, 2); classes sorted by name, labels their indices.
//! assert_eq!(iris.dataset.features.shape(), &[3, 2]);
//! assert_eq!(iris.feature_names, ["sepal", "petal"]);
//! assert_eq!(iris.classes, ["setosa", "versicolor"]);
//! assert_eq!(iris.dataset.labels, [0, 1, 0]);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::path::Path;

use super::source::read_bytes;
use super::Dataset;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The largest class index [`CsvReader::read_class_indices`] takes: its classes are named
/// `0..=max`, so one stray large number would otherwise allocate millions of names.
pub const MAX_CLASS_INDEX: u32 = (1 << 20) - 1;

/// A column of a CSV file: the label's ([`CsvReader::label`]) or a categorical feature's
/// ([`CsvReader::categorical`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Column {
    /// The last column (the label's default).
    #[default]
    Last,
    /// The column at this position, counting from 0.
    Index(usize),
    /// The column of this name in the header row (the reader needs a header row).
    Name(String),
}

/// The delimiters suggested when a line splits into a single column.
const DELIMITER_GUESSES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The options of a CSV read; build one with [`CsvReader::with_header`] or
/// [`CsvReader::headerless`], adjust it, then read a file with [`CsvReader::read_classes`]
/// (class labels given as names), [`CsvReader::read_class_indices`] (class labels given as
/// indices) or [`CsvReader::read_targets`] (a numeric regression target).
///
/// The file may be gzip-compressed (recognised by its first bytes, whatever its name);
/// fields may be quoted (`"a, b"`), and spaces around fields are ignored. Every feature field
/// that is not categorical must be a finite number unless [`CsvReader::allow_non_finite`] is set; every label must be
/// present (and, for targets and indices, a finite number).
///
/// # Shapes
/// A file of `n` data rows and `c` columns gives features `(n, c - 1)` (every column but the
/// label, in file order) and `n` labels: class indices `Vec<u32>`, or targets `(n, 1)`.
///
/// # Errors
/// [`LayerError::Data`], its message naming the file, the line, and the column by number
/// (from 1) and name (when there is a header row): a file that cannot be read, an empty file,
/// a header row without data rows, a line that splits into one column (with the delimiter it
/// probably uses), a row with another number of fields than the first, a field that is not a
/// finite number, an empty label or category, a label or categorical column that does not
/// exist (the header's names are listed), a column given by name when the reader has no
/// header row, a categorical column that is the label or is given twice, and a `scale` that
/// is zero or not finite.
///
/// ```
/// use keel_layers::CsvReader;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join(format!("flowers-{}.csv", std::process::id()));
/// let text = "petal_length,petal_width,species\n1.4,0.2,setosa\n4.7,1.4,versicolor\n1.3,0.2,setosa\n";
/// std::fs::write(&path, text)?;
/// let csv = CsvReader::with_header().read_classes(&path)?;
/// assert_eq!(csv.classes, ["setosa", "versicolor"]);
/// assert_eq!(csv.dataset.labels, [0, 1, 0]);
/// assert_eq!(csv.dataset.features.shape(), &[3, 2]);
/// assert_eq!(csv.feature_index("petal_width")?, 1);
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CsvReader {
    header: bool,
    delimiter: u8,
    label: Column,
    categorical: Vec<Column>,
    allow_non_finite: bool,
    scale: f32,
}

/// What a [`CsvReader`] read: the data set, the names of its columns, the class names and
/// the category names.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvData<L = Vec<u32>> {
    /// Features `(samples, features)` and a label per sample.
    pub dataset: Dataset<L>,
    /// The header's name of each feature column, in feature order; empty without a header.
    pub feature_names: Vec<String>,
    /// The header's name of the label column; `None` without a header.
    pub label_name: Option<String>,
    /// The name of each class: class `i` is written `classes[i]` in the file. For
    /// [`CsvReader::read_classes`], the distinct labels in numeric order if every one is a
    /// number, otherwise in byte order (so the mapping depends only on the set of labels);
    /// for [`CsvReader::read_class_indices`], `"0"`, `"1"`, ... up to the largest index;
    /// empty for [`CsvReader::read_targets`].
    pub classes: Vec<String>,
    /// Each categorical feature ([`CsvReader::categorical`]), by its position among the
    /// features (increasing), and the names of its categories: code `i` stands for
    /// `names[i]`.
    pub categories: Vec<(usize, Vec<String>)>,
}

impl<L> CsvData<L> {
    /// The position among the features (the column of `dataset.features`) of the column
    /// named `name`; errors if there is no such feature, listing the names there are.
    pub fn feature_index(&self, name: &str) -> Result<usize> {
        self.feature_names.iter().position(|feature| feature == name).ok_or_else(|| {
            LayerError::Data(format!(
                "no feature column named {name:?}: expected one of {:?}",
                self.feature_names
            ))
        })
    }
}

/// The fields of a file before its labels are interpreted.
struct Table {
    feature_names: Vec<String>,
    label_name: Option<String>,
    /// `(rows, width)` feature values, row-major, divided by the scale (category codes are
    /// not).
    values: Vec<f32>,
    width: usize,
    /// Each row's label field and the line it is on.
    labels: Vec<(String, u64)>,
    /// Each categorical feature's position among the features and its category names.
    categories: Vec<(usize, Vec<String>)>,
}

impl CsvReader {
    /// A reader of files whose first row names the columns: comma-separated, the label in
    /// the last column, no missing or infinite values, features as written (scale 1).
    pub fn with_header() -> Self {
        CsvReader {
            header: true,
            delimiter: b',',
            label: Column::Last,
            categorical: Vec::new(),
            allow_non_finite: false,
            scale: 1.0,
        }
    }

    /// A reader of files whose first row is already data; otherwise as
    /// [`CsvReader::with_header`]. A label column cannot be named without a header row.
    pub fn headerless() -> Self {
        CsvReader { header: false, ..Self::with_header() }
    }

    /// The byte separating fields: `b','` (the default), `b';'`, `b'\t'`, ...
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The column holding the label (by default the last).
    pub fn label(mut self, label: Column) -> Self {
        self.label = label;
        self
    }

    /// Reads feature `column` as categories given as text (`"red"`, `"M"`, `"1"`): each
    /// distinct value becomes a code `0, 1, ...` in the order [`CsvData::classes`] describes
    /// for labels (not divided by the scale), and [`CsvData::categories`] keeps the names.
    /// [`OneHot`](super::OneHot) then expands the codes into indicator columns. Call once per
    /// categorical column; an empty field in it is an error.
    pub fn categorical(mut self, column: Column) -> Self {
        self.categorical.push(column);
        self
    }

    /// Whether feature fields may be `NaN`, infinite (`inf`, `-inf`, or too large for an
    /// `f32`) or empty (read as `NaN`); by default they are errors. Labels are never
    /// allowed to be missing.
    pub fn allow_non_finite(mut self, allow: bool) -> Self {
        self.allow_non_finite = allow;
        self
    }

    /// Divides every feature value by `scale` as it is read (16 brings the bundled digits'
    /// pixels into [0, 1], 255 MNIST's); by default 1. Reading errors if it is zero or not
    /// finite.
    pub fn scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// Reads a file whose labels are class names (any text: `"benign"`, `"Iris-setosa"`,
    /// `"3"`), mapping them to class indices in the order [`CsvData::classes`] describes.
    pub fn read_classes(&self, path: impl AsRef<Path>) -> Result<CsvData> {
        let table = self.read_table(path.as_ref())?;
        let classes = name_order(table.labels.iter().map(|(label, _)| label.as_str()));
        let labels = codes(&classes, table.labels.iter().map(|(label, _)| label.as_str()));
        table.into_data(labels, classes)
    }

    /// Reads a file whose labels are class names from a known list, `classes` (the training
    /// file's [`CsvData::classes`]), each coded by its position there: a dev or test file
    /// that lacks a class codes the others as the training file does. A label not in
    /// `classes` is an error naming the file, the line and the label.
    pub fn read_classes_of(&self, path: impl AsRef<Path>, classes: &[String]) -> Result<CsvData> {
        let path = path.as_ref();
        let table = self.read_table(path)?;
        let labels = table
            .labels
            .iter()
            .map(|(label, line)| {
                let code = classes.iter().position(|class| class == label);
                code.map(|code| code as u32).ok_or_else(|| {
                    at(
                        path,
                        *line,
                        format!("label {label:?} is not one of the {} classes {classes:?}", classes.len()),
                    )
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        table.into_data(labels, classes.to_vec())
    }

    /// Reads a file whose labels are class indices written as whole numbers (`0`, `7`,
    /// `3.0`, at most [`MAX_CLASS_INDEX`]): the label is the index, whichever classes the file
    /// holds; the classes are named `"0"` up to the largest index.
    pub fn read_class_indices(&self, path: impl AsRef<Path>) -> Result<CsvData> {
        let path = path.as_ref();
        let table = self.read_table(path)?;
        let labels = table
            .labels
            .iter()
            .map(|(text, line)| {
                let label: f64 =
                    text.parse().map_err(|_| at(path, *line, format!("label {text:?} is not a number")))?;
                if label < 0.0 || label.fract() != 0.0 || label > f64::from(MAX_CLASS_INDEX) {
                    return Err(at(
                        path,
                        *line,
                        format!(
                            "label {label} is not a class index (a whole number in 0..={MAX_CLASS_INDEX})"
                        ),
                    ));
                }
                Ok(label as u32)
            })
            .collect::<Result<Vec<u32>>>()?;
        let classes = (0..labels.iter().max().map_or(0, |&max| max + 1)).map(|i| i.to_string()).collect();
        table.into_data(labels, classes)
    }

    /// Reads a file whose labels are numeric targets (regression), as labels `(n, 1)`; a
    /// target that is not a finite number is an error (whatever
    /// [`CsvReader::allow_non_finite`] says, which is about features).
    pub fn read_targets(&self, path: impl AsRef<Path>) -> Result<CsvData<Tensor>> {
        let path = path.as_ref();
        let table = self.read_table(path)?;
        let targets = table
            .labels
            .iter()
            .map(|(text, line)| {
                text.parse()
                    .ok()
                    .filter(|target: &f32| target.is_finite())
                    .ok_or_else(|| at(path, *line, format!("target {text:?} is not a finite number")))
            })
            .collect::<Result<Vec<f32>>>()?;
        let targets = Tensor::from_vec(&[targets.len(), 1], targets)?;
        table.into_data(targets, Vec::new())
    }

    /// Reads the fields of the file: the header's names, the feature values (checked and
    /// scaled, categories coded) and the label fields (not yet interpreted).
    fn read_table(&self, path: &Path) -> Result<Table> {
        if !self.scale.is_finite() || self.scale == 0.0 {
            return Err(LayerError::Data(format!(
                "{}: scale must be finite and non-zero, got {}",
                path.display(),
                self.scale
            )));
        }
        let mut columns = std::iter::once(&self.label).chain(&self.categorical);
        if let Some(named) = columns.find(|column| matches!(column, Column::Name(_))).filter(|_| !self.header)
        {
            return Err(LayerError::Data(format!(
                "{}: a column is given by name ({named:?}) but the reader expects no header row \
                 (use CsvReader::with_header)",
                path.display()
            )));
        }
        let bytes = read_bytes(path)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(self.delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes.as_slice());
        let mut table = Table {
            feature_names: Vec::new(),
            label_name: None,
            values: Vec::new(),
            width: 0,
            labels: Vec::new(),
            categories: Vec::new(),
        };
        // Set by the first row: its number of fields and the label's position among them;
        // each categorical column's position with its fields so far.
        let mut layout: Option<(usize, usize)> = None;
        let mut categorical: Vec<(usize, Vec<String>)> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| LayerError::Data(format!("{}: {e}", path.display())))?;
            let line = record.position().map_or(0, |position| position.line());
            // A line of spaces only is skipped, as the reader skips empty lines.
            if record.len() == 1 && record[0].is_empty() {
                continue;
            }
            let (fields, label) = match layout {
                Some(layout) => layout,
                None => {
                    let fields = record.len();
                    if fields == 1 {
                        return Err(at(path, line, self.one_column(line, &record[0])));
                    }
                    if self.header {
                        names = record.iter().map(str::to_string).collect();
                    }
                    let label = column_position(path, &names, fields, &self.label, "label")?;
                    categorical = self.categorical_positions(path, &names, fields, label)?;
                    layout = Some((fields, label));
                    table.width = fields - 1;
                    if self.header {
                        table.label_name = Some(names[label].clone());
                        table.feature_names = names
                            .iter()
                            .enumerate()
                            .filter(|&(i, _)| i != label)
                            .map(|(_, n)| n.clone())
                            .collect();
                        continue;
                    }
                    (fields, label)
                }
            };
            if record.len() != fields {
                return Err(at(path, line, format!("expected {fields} fields, got {}", record.len())));
            }
            let first_row = table.labels.is_empty();
            let mut categories = categorical.iter_mut().peekable();
            for (column, field) in record.iter().enumerate() {
                if column == label {
                    if field.is_empty() {
                        return Err(at(path, line, format!("{}: empty label", column_name(&names, column))));
                    }
                    table.labels.push((field.to_string(), line));
                } else if let Some((_, seen)) = categories.next_if(|(c, _)| *c == column) {
                    if field.is_empty() {
                        return Err(at(
                            path,
                            line,
                            format!("{}: empty category", column_name(&names, column)),
                        ));
                    }
                    seen.push(field.to_string());
                    // A placeholder for the code, known once every category has been seen.
                    table.values.push(0.0);
                } else {
                    table.values.push(self.feature(path, line, &names, column, field, first_row)?);
                }
            }
        }
        let Some((_, label)) = layout else {
            return Err(LayerError::Data(format!(
                "{}: empty file: expected {}rows of features and a label",
                path.display(),
                if self.header { "a header row and " } else { "" }
            )));
        };
        if table.labels.is_empty() {
            return Err(LayerError::Data(format!(
                "{}: no samples: the header row is the only row",
                path.display()
            )));
        }
        for (column, seen) in categorical {
            let feature = if column > label { column - 1 } else { column };
            let names = name_order(seen.iter().map(String::as_str));
            let codes = codes(&names, seen.iter().map(String::as_str));
            for (row, code) in table.values.chunks_exact_mut(table.width).zip(codes) {
                row[feature] = code as f32;
            }
            table.categories.push((feature, names));
        }
        Ok(table)
    }

    /// The positions (increasing) of the categorical columns in a row of `fields` fields
    /// whose label is at `label`, each with an empty list of fields; errors if one does not
    /// exist, is the label, or is given twice.
    fn categorical_positions(
        &self,
        path: &Path,
        names: &[String],
        fields: usize,
        label: usize,
    ) -> Result<Vec<(usize, Vec<String>)>> {
        let mut positions = self
            .categorical
            .iter()
            .map(|column| column_position(path, names, fields, column, "categorical feature"))
            .collect::<Result<Vec<usize>>>()?;
        positions.sort_unstable();
        let clash = |what: &str, column: usize| {
            LayerError::Data(format!("{}: {} {what}", path.display(), column_name(names, column)))
        };
        if let Some(&column) = positions.iter().find(|&&column| column == label) {
            return Err(clash("is the label, so it cannot be a categorical feature", column));
        }
        if let Some(pair) = positions.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(clash("is given twice as a categorical feature", pair[0]));
        }
        Ok(positions.into_iter().map(|position| (position, Vec::new())).collect())
    }

    /// Parses the feature `field` at `line` and `column` (from 0) as a finite number (or,
    /// if allowed, any number or an empty field as `NaN`) divided by the scale; the error
    /// suggests a cause: a wrong delimiter, or, on the first row, a header row not declared.
    fn feature(
        &self,
        path: &Path,
        line: u64,
        names: &[String],
        column: usize,
        field: &str,
        first_row: bool,
    ) -> Result<f32> {
        let value: Option<f32> = if field.is_empty() { Some(f32::NAN) } else { field.parse().ok() };
        match value {
            Some(value) if value.is_finite() || self.allow_non_finite => return Ok(value / self.scale),
            _ => {}
        }
        let what = if field.is_empty() {
            "empty field: expected a finite number".to_string()
        } else {
            format!("{field:?} is not a finite number")
        };
        let hint = if value.is_some() {
            " (CsvReader::allow_non_finite accepts missing and infinite values)".to_string()
        } else if let Some(guess) = self.guess_delimiter(field) {
            format!("; is the delimiter {:?}?", char::from(guess))
        } else if first_row && !self.header {
            format!("; is line {line} a header row? (use CsvReader::with_header)")
        } else {
            String::new()
        };
        Err(at(path, line, format!("{}: {what}{hint}", column_name(names, column))))
    }

    /// The message for a first row at `line` that splits into the one field `field`.
    fn one_column(&self, line: u64, field: &str) -> String {
        match self.guess_delimiter(field) {
            Some(guess) => {
                format!("1 column found on line {line}; is the delimiter {:?}?", char::from(guess))
            }
            None => format!(
                "1 column found on line {line}: expected at least 2 (features and a label) \
                 separated by {:?}",
                char::from(self.delimiter)
            ),
        }
    }

    /// The likely delimiter of text that holds none of the reader's: the most frequent of
    /// [`DELIMITER_GUESSES`] in `field`, if any occurs.
    fn guess_delimiter(&self, field: &str) -> Option<u8> {
        DELIMITER_GUESSES
            .into_iter()
            .filter(|&guess| guess != self.delimiter)
            .map(|guess| (field.bytes().filter(|&b| b == guess).count(), guess))
            .filter(|&(count, _)| count > 0)
            .max_by_key(|&(count, _)| count)
            .map(|(_, guess)| guess)
    }
}

impl Table {
    /// The features as a tensor beside `labels` in a data set, with the column names, the
    /// categories and the class names `classes`.
    fn into_data<L>(self, labels: L, classes: Vec<String>) -> Result<CsvData<L>> {
        let rows = self.labels.len();
        let features = Tensor::from_vec(&[rows, self.width], self.values)?;
        Ok(CsvData {
            dataset: Dataset { features, labels },
            feature_names: self.feature_names,
            label_name: self.label_name,
            classes,
            categories: self.categories,
        })
    }
}

/// The position of `column` in a row of `fields` fields (`names`: the header's, empty
/// without one); `role` names what the column is for in the error.
fn column_position(
    path: &Path,
    names: &[String],
    fields: usize,
    column: &Column,
    role: &str,
) -> Result<usize> {
    match column {
        Column::Last => Ok(fields - 1),
        Column::Index(index) if *index < fields => Ok(*index),
        Column::Index(index) => Err(LayerError::Data(format!(
            "{}: {role} column index {index}: expected an index below the {fields} columns",
            path.display()
        ))),
        Column::Name(name) => names.iter().position(|n| n == name).ok_or_else(|| {
            LayerError::Data(format!(
                "{}: no column named {name:?} for the {role}: expected one of {names:?}",
                path.display()
            ))
        }),
    }
}

/// The distinct `values` in a deterministic order that depends only on the set of values:
/// numeric if every one is a number (so `"9"` before `"10"`), otherwise by bytes.
fn name_order<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = values.map(str::to_string).collect();
    names.sort_unstable();
    names.dedup();
    let numbers: Option<Vec<f64>> = names.iter().map(|name| name.parse().ok()).collect();
    if let Some(numbers) = numbers {
        let mut keyed: Vec<(f64, String)> = numbers.into_iter().zip(names).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        names = keyed.into_iter().map(|(_, name)| name).collect();
    }
    names
}

/// The code of each of `values` (all among `names`): its position in `names`.
fn codes<'a>(names: &[String], values: impl Iterator<Item = &'a str>) -> Vec<u32> {
    let index: HashMap<&str, u32> =
        names.iter().enumerate().map(|(i, name)| (name.as_str(), i as u32)).collect();
    values.map(|value| index[value]).collect()
}

/// A `LayerError::Data` at `line` of the file at `path`.
fn at(path: &Path, line: u64, what: String) -> LayerError {
    LayerError::Data(format!("{}:{line}: {what}", path.display()))
}

/// "column 3" (`column` counts from 0, the message from 1), with the header's name when there
/// is one: `column 3 ("age")`.
fn column_name(names: &[String], column: usize) -> String {
    match names.get(column) {
        Some(name) => format!("column {} ({name:?})", column + 1),
        None => format!("column {}", column + 1),
    }
}
