//! The `Embedding` layer: lookup through both doors (u32 ids, f32-coded ids), gradient only
//! into the rows used and never into the padding row, typed index errors, gradient check.

use keel_layers::kernels::optim::AdamConfig;
use keel_layers::{
    fit, gradcheck_params, plot_series, Adam, Dataset, Dense, Embedding, FitConfig, Flatten, Init, Layer,
    LayerError, Mode, Sequential, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn table(num: usize, dim: usize, padding: Option<usize>) -> Embedding {
    Embedding::new(num, dim, padding, &mut StdRng::seed_from_u64(7)).unwrap()
}

fn row(layer: &Embedding, id: usize) -> Vec<f32> {
    let dim = layer.dim();
    layer.weight.value.data()[id * dim..(id + 1) * dim].to_vec()
}

#[test]
fn forward_gathers_rows_in_the_input_shape() {
    let mut layer = table(10, 3, Some(0));
    assert_eq!(row(&layer, 0), vec![0.0; 3], "the padding row starts at zero");
    assert!(row(&layer, 1).iter().any(|&v| v != 0.0));
    let ids = [4u32, 0, 9, 4, 2, 7];
    layer.forward_indices(&ids, &[2, 3]).unwrap();
    assert_eq!(layer.output().shape(), &[2, 3, 3]);
    let expected: Vec<f32> = ids.iter().flat_map(|&i| row(&layer, i as usize)).collect();
    assert_eq!(layer.output().data(), &expected[..]);
    // The f32 door gives the same.
    let coded = Tensor::from_vec(&[2, 3], ids.iter().map(|&i| i as f32).collect()).unwrap();
    layer.forward(&coded, Mode::Eval).unwrap();
    assert_eq!(layer.output().shape(), &[2, 3, 3]);
    assert_eq!(layer.output().data(), &expected[..]);
}

#[test]
fn backward_touches_only_used_rows_and_never_padding() {
    let mut layer = table(6, 2, Some(3));
    let ids = [1u32, 3, 1, 4];
    let coded = Tensor::from_vec(&[4], ids.iter().map(|&i| i as f32).collect()).unwrap();
    let grad = Tensor::from_vec(&[4, 2], vec![1.0, -2.0, 5.0, 5.0, 0.5, 0.25, -1.0, 3.0]).unwrap();
    layer.forward(&coded, Mode::Train).unwrap();
    layer.backward(&coded, &grad).unwrap();
    let g = layer.weight.grad.data();
    // Row 1 appears twice: both gradients add; row 3 is padding; rows 0, 2, 5 unused.
    assert_eq!(&g[2..4], &[1.5, -1.75]);
    assert_eq!(&g[8..10], &[-1.0, 3.0]);
    for unused in [0, 2, 3, 5] {
        assert_eq!(&g[unused * 2..unused * 2 + 2], &[0.0, 0.0], "row {unused}");
    }
    // Accumulates; ids have no gradient (zeros of the input's shape).
    layer.backward(&coded, &grad).unwrap();
    assert_eq!(&layer.weight.grad.data()[2..4], &[3.0, -3.5]);
    assert_eq!(layer.grad_input().shape(), &[4]);
    assert!(layer.grad_input().data().iter().all(|&v| v == 0.0));
}

#[test]
fn bad_indices_are_typed_errors_naming_position_and_value() {
    let mut layer = table(5, 2, None);
    for (value, text) in [(5.0f32, "5"), (2.5, "2.5"), (-1.0, "-1"), (f32::NAN, "NaN")] {
        let coded = Tensor::from_vec(&[3], vec![0.0, 1.0, value]).unwrap();
        match layer.forward(&coded, Mode::Eval) {
            Err(LayerError::Index { position, value, expected, .. }) => {
                assert_eq!((position, value.as_str()), (2, text));
                assert!(expected.contains("0..5"), "{expected}");
            }
            other => panic!("{text}: expected an index error, got {other:?}"),
        }
    }
    match layer.forward_indices(&[1, 7], &[2]) {
        Err(LayerError::Index { position: 1, value, .. }) => assert_eq!(value, "7"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(layer.forward_indices(&[1, 2], &[3]), Err(LayerError::Shape { .. })));
    layer.forward_indices(&[1, 2], &[2]).unwrap();
    let wrong = Tensor::zeros(&[2, 3]);
    assert!(matches!(layer.backward_indices(&[1, 2], &wrong), Err(LayerError::Shape { .. })));
    assert!(Embedding::new(5, 2, Some(5), &mut StdRng::seed_from_u64(1)).is_err());
    assert!(Embedding::new(0, 2, None, &mut StdRng::seed_from_u64(1)).is_err());
    let err = layer.forward(&Tensor::from_vec(&[1], vec![9.0]).unwrap(), Mode::Eval).unwrap_err();
    assert_eq!(
        err.to_string(),
        "embedding(5, 2): index 9 at position 0 is not valid: expected a whole number in 0..5"
    );
}

#[test]
fn gradient_check() {
    // Repeats, in a (2, 3) batch of sequences. The padding id stays out of the input: its
    // row does move the output, but by definition gets no gradient (checked above).
    let mut layer = table(7, 4, Some(2));
    let coded = Tensor::from_vec(&[2, 3], vec![1.0, 3.0, 6.0, 1.0, 0.0, 5.0]).unwrap();
    let report = gradcheck_params(&mut layer, &coded, Mode::Train, 1e-2).unwrap();
    assert_eq!(report.params.len(), 1);
    assert_eq!(report.params[0].0, "weight");
    assert!(report.max_error() < 1e-3, "{report:?}");
    // Not vacuous: rows used got a gradient.
    assert!(layer.weight.grad.data()[4..8].iter().any(|&g| g != 0.0));
}

#[test]
fn from_weight_keeps_the_table() {
    let weight = Tensor::from_vec(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let mut layer = Embedding::from_weight(weight, None).unwrap();
    assert_eq!(layer.name(), "embedding(3, 2)");
    layer.forward_indices(&[2, 0], &[2]).unwrap();
    assert_eq!(layer.output().data(), &[5.0, 6.0, 1.0, 2.0]);
    let mut names = Vec::new();
    layer.visit_params(&mut |name, _| names.push(name.to_owned()));
    assert_eq!(names, ["weight"]);
}

/// Through the trait door, in a model trained by `fit`: `Embedding -> Flatten -> Dense`
/// learns whether a sequence of 3 ids (of 12) contains id 7.
#[test]
fn trains_inside_a_model_with_fit() {
    let mut rng = StdRng::seed_from_u64(3);
    let (mut ids, mut labels) = (Vec::new(), Vec::new());
    for k in 0..240u32 {
        let seq = [(k * 5) % 12, (k * 7 + 3) % 12, (k * 11 + 1) % 12];
        labels.push(u32::from(seq.contains(&7)));
        ids.extend(seq.iter().map(|&i| i as f32));
    }
    let data = Dataset::new(Tensor::from_vec(&[240, 3], ids).unwrap(), labels).unwrap();
    let mut model = Sequential::new()
        .push(Embedding::new(12, 4, None, &mut rng).unwrap())
        .push(Flatten::new())
        .push(Dense::new(12, 2, Init::Xavier, &mut rng).unwrap());
    let mut adam = Adam::new(AdamConfig { lr: 0.05, ..AdamConfig::default() }).unwrap();
    let mut loss = SoftmaxCrossEntropy::new();
    let config = FitConfig { epochs: 30, batch_size: 16, seed: 1, quiet: true, ..FitConfig::default() };
    let history = fit(&mut model, &mut adam, &mut loss, &data, &data, &config).unwrap();
    let last = history.epochs.last().unwrap();
    assert!(last.dev.metrics.accuracy > 0.97, "{last}");
    let losses: Vec<f64> = history.epochs.iter().map(|e| e.train.loss).collect();
    let path = std::env::temp_dir().join(format!("keel_embedding_loss_{}.svg", std::process::id()));
    plot_series(&path, "loss", &[("train", &losses)]).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("train"));
    std::fs::remove_file(&path).unwrap();
    assert!(plot_series(&path, "loss", &[("train", &[])]).is_err());
}
