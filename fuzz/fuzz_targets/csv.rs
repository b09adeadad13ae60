//! Arbitrary bytes as a CSV file under reader options chosen by the first byte (header or
//! not, delimiter, label column, non-finite values allowed, classes, indices or targets):
//! reading never panics, and what loads has one label per sample and finite features unless
//! allowed.
#![no_main]

mod scratch;

use keel_layers::{Column, CsvReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, bytes)) = data.split_first() else { return };
    let path = scratch::scratch_file("data.csv", bytes);
    let reader = if options & 1 == 0 { CsvReader::with_header() } else { CsvReader::headerless() };
    let delimiter = [b',', b';', b'\t', b' '][usize::from(options >> 1 & 3)];
    let label = [Column::Last, Column::Index(0), Column::Index(2), Column::Name("y".to_owned())]
        [usize::from(options >> 3 & 3)]
    .clone();
    let allow = options & 0x20 != 0;
    let reader = reader.delimiter(delimiter).label(label).allow_non_finite(allow);
    let check = |features: &keel_layers::Tensor, samples: usize| {
        assert_eq!(features.shape()[0], samples);
        assert!(allow || features.data().iter().all(|v| v.is_finite()), "a non-finite feature loaded");
    };
    match options >> 6 {
        0 => {
            if let Ok(csv) = reader.read_classes(&path) {
                check(&csv.dataset.features, csv.dataset.labels.len());
            }
        }
        1 => {
            if let Ok(csv) = reader.read_class_indices(&path) {
                check(&csv.dataset.features, csv.dataset.labels.len());
            }
        }
        _ => {
            if let Ok(csv) = reader.read_targets(&path) {
                check(&csv.dataset.features, csv.dataset.labels.shape()[0]);
            }
        }
    }
});
