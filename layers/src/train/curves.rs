//! Learning curves: train and dev loss and accuracy per epoch, drawn to an SVG file.
//!
//! Only plotters' SVG backend is used: text is written as SVG `<text>` elements for the
//! viewer to render, so no system font library is needed.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::history::{EpochMetrics, History};
use crate::error::{LayerError, Result};

const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const DEV_COLOR: RGBColor = RGBColor(255, 127, 14);

/// Writes the loss (left) and accuracy (right) curves of `history` to the SVG file `path`
/// (900x400 pixels; train in blue, dev in orange) and returns the path. Errors if the
/// history is empty or the file cannot be written.
pub fn plot_curves(history: &History, path: impl AsRef<Path>) -> Result<PathBuf> {
    let path = path.as_ref();
    if history.epochs.is_empty() {
        return Err(LayerError::Data(format!("{}: no epochs to plot", path.display())));
    }
    draw(history, path).map_err(|e| LayerError::Data(format!("{}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(history: &History, path: &Path) -> DrawResult {
    let root = SVGBackend::new(path, (900, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(450);
    let series = |pick: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        history.epochs.iter().map(|m| (m.epoch as f64, pick(m))).collect()
    };
    let max_loss = history.epochs.iter().map(|m| m.train_loss.max(m.dev_loss)).fold(0.0, f64::max);
    let (train_loss, dev_loss) = (series(|m| m.train_loss), series(|m| m.dev_loss));
    panel(&left, "loss", train_loss, dev_loss, max_loss.max(1e-3) * 1.05)?;
    let (train_accuracy, dev_accuracy) = (series(|m| m.train_accuracy), series(|m| m.dev_accuracy));
    panel(&right, "accuracy", train_accuracy, dev_accuracy, 1.0)?;
    root.present()?;
    Ok(())
}

/// One chart: epochs on x (from 1), `[0, y_max]` on y, the train and dev series.
fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    train: Vec<(f64, f64)>,
    dev: Vec<(f64, f64)>,
    y_max: f64,
) -> DrawResult {
    let last_epoch = train.last().map_or(1.0, |point| point.0).max(2.0);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(1.0..last_epoch, 0.0..y_max)?;
    chart.configure_mesh().x_desc("epoch").max_light_lines(0).draw()?;
    chart
        .draw_series(LineSeries::new(train, TRAIN_COLOR.stroke_width(2)))?
        .label("train")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], TRAIN_COLOR.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(dev, DEV_COLOR.stroke_width(2)))?
        .label("dev")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], DEV_COLOR.stroke_width(2)));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}
