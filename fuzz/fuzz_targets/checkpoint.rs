//! Arbitrary bytes as a safetensors checkpoint for a small model: loading never panics,
//! strict or not, and a failed load leaves every parameter as it was.
#![no_main]

mod scratch;

use keel_layers::{load_safetensors_with, Dense, Init, Layer, LoadOptions, Sequential};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn parameters(model: &mut dyn Layer) -> Vec<(String, Vec<u32>)> {
    let mut all = Vec::new();
    model.visit_params(&mut |name, param| {
        all.push((name.to_owned(), param.value.data().iter().map(|v| v.to_bits()).collect()));
    });
    all
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else { return };
    let path = scratch::scratch_file("checkpoint.safetensors", bytes);
    let mut rng = StdRng::seed_from_u64(1);
    let mut model = Sequential::new().push(Dense::new(3, 2, Init::He, &mut rng).unwrap()).push(Dense::new(2, 1, Init::He, &mut rng).unwrap());
    let before = parameters(&mut model);
    let options = if mode & 1 == 0 { LoadOptions::default() } else { LoadOptions::default().non_strict() };
    if load_safetensors_with(&mut model, &path, &options).is_err() {
        assert_eq!(parameters(&mut model), before, "a failed load wrote to the model");
    }
});
