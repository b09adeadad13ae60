//! Arbitrary bytes as an MNIST-style pair of IDX files (the first byte picks where the
//! images end and the labels begin): reading never panics.
#![no_main]

mod scratch;

use keel_layers::Dataset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let at = (usize::from(split) * rest.len()) / 255;
    let (images, labels) = rest.split_at(at.min(rest.len()));
    let images = scratch::scratch_file("images.idx", images);
    let labels = scratch::scratch_file("labels.idx", labels);
    if let Ok(data) = Dataset::from_idx(&images, &labels, 255.0) {
        assert_eq!(data.features.shape()[0], data.labels.len());
    }
});
