//! Learning curves: train and dev loss and each of the loss's metrics per epoch, drawn to an
//! SVG file; and any named per-epoch series in one chart ([`plot_series`]).
//!
//! Only plotters' SVG backend is used: text is written as SVG `<text>` elements for the
//! viewer to render, so no system font library is needed.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::history::{EpochMetrics, History};
use crate::error::{LayerError, Result};
use crate::metrics::Metrics;

const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const DEV_COLOR: RGBColor = RGBColor(255, 127, 14);
/// The colours of [`plot_series`], in order (matplotlib's first four).
const PALETTE: [RGBColor; 4] = [TRAIN_COLOR, DEV_COLOR, RGBColor(44, 160, 44), RGBColor(214, 39, 40)];

/// Writes one chart per figure of `history`, side by side, to the SVG file `path`: the loss,
/// then each metric (e.g. accuracy; MAE and R²), 450x400 pixels each, train in blue, dev in
/// orange; returns the path. Errors if the history is empty or the file cannot be written.
///
/// ```
/// use keel_layers::{fit, plot_curves, Dataset, Dense, FitConfig, Init, Mse, SeedableRng, Sgd, SgdConfig};
/// use keel_layers::{StdRng, Tensor};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let x = Tensor::from_vec(&[2, 1], vec![0.0, 1.0])?;
/// let data = Dataset::new(x, Tensor::from_vec(&[2, 1], vec![1.0, 3.0])?)?;
/// let mut model = Dense::new(1, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.1, ..SgdConfig::default() })?;
/// let config = FitConfig { epochs: 3, quiet: true, ..FitConfig::default() };
/// let history = fit(&mut model, &mut sgd, &mut Mse::new(), &data, &data, &config)?;
/// let path = std::env::temp_dir().join(format!("curves-{}.svg", std::process::id()));
/// plot_curves(&history, &path)?; // three charts: loss, MAE, R²
/// assert!(std::fs::read_to_string(&path)?.contains("<svg"));
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
pub fn plot_curves<M: Metrics>(history: &History<M>, path: impl AsRef<Path>) -> Result<PathBuf> {
    let path = path.as_ref();
    if history.epochs.is_empty() {
        return Err(LayerError::Data(format!("{}: no epochs to plot", path.display())));
    }
    draw(history, path).map_err(|e| LayerError::Data(format!("{}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// One series of a chart: its name, colour and `(epoch, value)` points.
type Line<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// The metric at `index` in [`Metrics::named`] order (0 if there is none).
fn metric<M: Metrics>(metrics: &M, index: usize) -> f64 {
    metrics.named().nth(index).map_or(0.0, |(_, value)| value)
}

fn draw<M: Metrics>(history: &History<M>, path: &Path) -> DrawResult {
    let names: Vec<&str> = history.epochs[0].train.metrics.named().map(|(name, _)| name).collect();
    let width = 450 * (1 + names.len() as u32);
    let root = SVGBackend::new(path, (width, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, 1 + names.len()));
    let loss = |m: &EpochMetrics<M>| (m.train.loss, m.dev.loss);
    panel(&areas[0], "loss", history, loss)?;
    for (index, (area, name)) in areas[1..].iter().zip(&names).enumerate() {
        panel(area, name, history, |m| (metric(&m.train.metrics, index), metric(&m.dev.metrics, index)))?;
    }
    root.present()?;
    Ok(())
}

/// One chart titled `title`: epochs on x (from 1), the train and dev series that `pick`
/// takes from each epoch on y.
fn panel<M>(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    history: &History<M>,
    pick: impl Fn(&EpochMetrics<M>) -> (f64, f64),
) -> DrawResult {
    let (mut train, mut dev) = (Vec::new(), Vec::new());
    for m in &history.epochs {
        let (t, d) = pick(m);
        train.push((m.epoch as f64, t));
        dev.push((m.epoch as f64, d));
    }
    draw_lines(area, title, &[("train", TRAIN_COLOR, train), ("dev", DEV_COLOR, dev)])
}

/// Writes one chart titled `title` of named series against the epoch, 600x400 pixels, to
/// the SVG file `path` (series `k` holds the values of epochs `1, 2, …`; e.g. the loss per
/// epoch of two trainers); returns the path. Errors if no series has a value or the file
/// cannot be written.
///
/// ```
/// use keel_layers::plot_series;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join(format!("series-{}.svg", std::process::id()));
/// let (sgd, adam) = ([0.9, 0.7, 0.6], [0.8, 0.4, 0.3]);
/// plot_series(&path, "train loss", &[("sgd", &sgd), ("adam", &adam)])?;
/// assert!(std::fs::read_to_string(&path)?.contains("adam"));
/// assert!(plot_series(&path, "nothing", &[]).is_err());
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
pub fn plot_series(path: impl AsRef<Path>, title: &str, series: &[(&str, &[f64])]) -> Result<PathBuf> {
    let path = path.as_ref();
    if series.iter().all(|(_, values)| values.is_empty()) {
        return Err(LayerError::Data(format!("{}: no values to plot", path.display())));
    }
    let lines: Vec<Line> = series
        .iter()
        .zip(PALETTE.iter().cycle())
        .map(|(&(name, values), &color)| {
            (name, color, values.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)).collect())
        })
        .collect();
    let draw = || -> DrawResult {
        let root = SVGBackend::new(path, (600, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        draw_lines(&root, title, &lines)?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| LayerError::Data(format!("{}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}

/// Draws `lines` (name, colour, `(epoch, value)` points) in one chart on `area`: y from
/// `min(0, lowest)` to a margin above the highest finite value, with a legend.
fn draw_lines(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    lines: &[Line],
) -> DrawResult {
    let values =
        lines.iter().flat_map(|(_, _, points)| points.iter().map(|&(_, v)| v)).filter(|v| v.is_finite());
    let (low, high) = values.fold((0.0f64, 1e-3f64), |(low, high), v| (low.min(v), high.max(v)));
    let margin = 0.05 * (high - low);
    let y_range = if low < 0.0 { low - margin } else { 0.0 }..high + margin;
    let last_epoch =
        lines.iter().filter_map(|(_, _, points)| points.last()).map(|p| p.0).fold(1.0f64, f64::max).max(2.0);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(1.0..last_epoch, y_range)?;
    chart.configure_mesh().x_desc("epoch").max_light_lines(0).draw()?;
    for (name, color, points) in lines {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}
