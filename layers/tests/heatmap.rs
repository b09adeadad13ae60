//! `plot_heatmap`: an SVG with every label, every value and the title; errors for labels
//! that do not fit the values, for negative or NaN values, and for a path that cannot be
//! written.

use keel_layers::{plot_heatmap, LayerError, Tensor};

fn temp_svg(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("keel_heatmap_{name}_{}.svg", std::process::id()))
}

#[test]
fn writes_every_label_and_value() {
    let weights = Tensor::from_vec(&[3, 2], vec![0.9, 0.1, 0.25, 0.75, 0.0, 1.0]).unwrap();
    let path = temp_svg("labels");
    let written = plot_heatmap(
        &path,
        "attention: ab -> ba$",
        &weights,
        ("output", &["b", "a", "$"]),
        ("input", &["a", "b"]),
    )
    .unwrap();
    assert_eq!(written, path);
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(svg.starts_with("<svg"));
    // Each text is an SVG <text> element of its own line.
    let texts: Vec<&str> = svg.lines().collect();
    for text in ["attention: ab -&gt; ba$", "output", "input", "b", "a", "$", "0.90", "0.25", "0.75", "1.00"]
    {
        assert!(texts.contains(&text), "{text} missing");
    }
    // A cell at 0 is white, the largest value dark blue.
    assert!(svg.contains("#FFFFFF") && svg.contains("#08306B"), "{svg}");
}

#[test]
fn bad_input_is_an_error() {
    let path = temp_svg("bad");
    let values = Tensor::from_vec(&[2, 2], vec![0.5, 0.5, 0.5, 0.5]).unwrap();
    let labels: &[&str] = &["x", "y"];
    let result = plot_heatmap(&path, "t", &values, ("rows", &["only one"]), ("cols", labels));
    assert!(matches!(result, Err(LayerError::Shape { ref actual, .. }) if actual == &[2, 2]), "{result:?}");
    let empty = Tensor::from_vec(&[0, 0], vec![]).unwrap();
    assert!(matches!(
        plot_heatmap(&path, "t", &empty, ("r", &[]), ("c", &[])),
        Err(LayerError::Shape { .. })
    ));
    for bad in [-0.5, f32::NAN] {
        let values = Tensor::from_vec(&[2, 2], vec![0.5, bad, 0.5, 0.5]).unwrap();
        match plot_heatmap(&path, "t", &values, ("rows", labels), ("cols", labels)) {
            Err(LayerError::Data(message)) => assert!(message.contains("position 1"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(!path.exists());
    let unwritable = std::env::temp_dir().join("keel_no_such_dir").join("map.svg");
    let result = plot_heatmap(&unwritable, "t", &values, ("rows", labels), ("cols", labels));
    assert!(matches!(result, Err(LayerError::Data(_))), "{result:?}");
}
