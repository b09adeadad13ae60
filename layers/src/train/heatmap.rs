//! A heat map of a matrix of non-negative values with a label on every row and column, drawn
//! to an SVG file ([`plot_heatmap`]): attention weights (decoder step by encoder step), a
//! confusion matrix.
//!
//! Like the curves, only plotters' SVG backend is used; cells, labels and the colour bar are
//! drawn in pixel coordinates, the text as SVG `<text>` elements.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Pixels per cell side.
const CELL: i32 = 36;
/// Room for the title above the cells.
const TOP: i32 = 56;
/// Room for the row labels left of the cells.
const LEFT: i32 = 110;
/// Room for the column labels and the axis name below the cells.
const BOTTOM: i32 = 64;
/// Room for the colour bar right of the cells.
const RIGHT: i32 = 90;
/// The height of one band of the colour bar (a sixth of a cell).
const BAND: i32 = CELL / 6;
/// The colour of the largest value (matplotlib's "Blues" at its end); 0 is white.
const FULL: (f64, f64, f64) = (8.0, 48.0, 107.0);

/// The colour of `value` in `[0, max]`: white to dark blue, linearly.
fn shade(value: f64, max: f64) -> RGBColor {
    let t = if max > 0.0 { (value / max).clamp(0.0, 1.0) } else { 0.0 };
    let mix = |full: f64| (255.0 + t * (full - 255.0)).round() as u8;
    RGBColor(mix(FULL.0), mix(FULL.1), mix(FULL.2))
}

/// Writes a heat map of `values (rows, cols)` to the SVG file `path`: one square cell per
/// value, shaded from white (0) to dark blue (the largest value) and printed in it with two
/// decimals, `rows.1` labelling the rows top to bottom and `cols.1` the columns left to
/// right, `rows.0` and `cols.0` naming the axes, and a colour bar; returns the path.
///
/// # Shapes
/// `values`: `(rows.1.len(), cols.1.len())`, both at least 1.
///
/// # Errors
/// Labels that do not fit the shape, a value that is negative or not finite, or a file
/// that cannot be written.
///
/// ```
/// use keel_layers::{plot_heatmap, Tensor};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Attention weights of two decoder steps over three encoder steps.
/// let weights = Tensor::from_vec(&[2, 3], vec![0.7, 0.2, 0.1, 0.1, 0.3, 0.6])?;
/// let path = std::env::temp_dir().join(format!("attention-{}.svg", std::process::id()));
/// plot_heatmap(&path, "attention", &weights, ("output", &["le", "chat"]), ("input", &["the", "cat", "."]))?;
/// assert!(std::fs::read_to_string(&path)?.contains("chat"));
/// // Labels that do not fit the shape are an error.
/// assert!(plot_heatmap(&path, "attention", &weights, ("output", &["le"]), ("input", &["the"])).is_err());
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
pub fn plot_heatmap(
    path: impl AsRef<Path>,
    title: &str,
    values: &Tensor,
    rows: (&str, &[&str]),
    cols: (&str, &[&str]),
) -> Result<PathBuf> {
    let path = path.as_ref();
    let (n_rows, n_cols) = (rows.1.len(), cols.1.len());
    if values.shape() != [n_rows, n_cols] || n_rows == 0 || n_cols == 0 {
        return Err(LayerError::Shape {
            layer: format!("plot_heatmap {}", path.display()),
            expected: format!("({n_rows} row labels >= 1, {n_cols} column labels >= 1)"),
            actual: values.shape().to_vec(),
        });
    }
    if let Some(position) = values.data().iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(LayerError::Data(format!(
            "{}: value {} at position {position} is not finite and >= 0",
            path.display(),
            values.data()[position]
        )));
    }
    draw(path, title, values, rows, cols)
        .map_err(|e| LayerError::Data(format!("{}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(
    path: &Path,
    title: &str,
    values: &Tensor,
    rows: (&str, &[&str]),
    cols: (&str, &[&str]),
) -> DrawResult {
    let (n_rows, n_cols) = (rows.1.len() as i32, cols.1.len() as i32);
    let (width, height) = (LEFT + n_cols * CELL + RIGHT, TOP + n_rows * CELL + BOTTOM);
    let root = SVGBackend::new(path, (width.max(360) as u32, height as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let text =
        |size: i32, h: HPos, v: VPos| ("sans-serif", size).into_font().color(&BLACK).pos(Pos::new(h, v));
    root.draw_text(title, &text(18, HPos::Left, VPos::Center), (10, TOP / 2))?;
    let max = values.data().iter().fold(0.0f64, |m, &v| m.max(v as f64));
    // The cells, each with its value in a colour that reads on its shade.
    for (index, &value) in values.data().iter().enumerate() {
        let (r, c) = (index as i32 / n_cols, index as i32 % n_cols);
        let (x, y) = (LEFT + c * CELL, TOP + r * CELL);
        root.draw(&Rectangle::new([(x, y), (x + CELL, y + CELL)], shade(value as f64, max).filled()))?;
        let ink = if max > 0.0 && value as f64 > 0.55 * max { WHITE } else { BLACK };
        let style = ("sans-serif", 13).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(&format!("{value:.2}"), &style, (x + CELL / 2, y + CELL / 2))?;
    }
    root.draw(&Rectangle::new([(LEFT, TOP), (LEFT + n_cols * CELL, TOP + n_rows * CELL)], BLACK))?;
    // Row labels left of the cells, column labels under them, then the axis names.
    for (r, label) in rows.1.iter().enumerate() {
        let y = TOP + r as i32 * CELL + CELL / 2;
        root.draw_text(label, &text(18, HPos::Right, VPos::Center), (LEFT - 8, y))?;
    }
    for (c, label) in cols.1.iter().enumerate() {
        let x = LEFT + c as i32 * CELL + CELL / 2;
        root.draw_text(label, &text(18, HPos::Center, VPos::Top), (x, TOP + n_rows * CELL + 6))?;
    }
    let below = TOP + n_rows * CELL + 34;
    root.draw_text(cols.0, &text(15, HPos::Center, VPos::Top), (LEFT + n_cols * CELL / 2, below))?;
    root.draw_text(rows.0, &text(15, HPos::Left, VPos::Bottom), (10, TOP - 4))?;
    // The colour bar: 0 at the bottom, the largest value at the top.
    let (bar_x, bar_h) = (LEFT + n_cols * CELL + 24, n_rows * CELL);
    for y in (TOP..TOP + bar_h).step_by(BAND as usize) {
        let value = max * (TOP + bar_h - y) as f64 / bar_h as f64;
        root.draw(&Rectangle::new([(bar_x, y), (bar_x + 14, y + BAND)], shade(value, max).filled()))?;
    }
    root.draw(&Rectangle::new([(bar_x, TOP), (bar_x + 14, TOP + bar_h)], BLACK))?;
    root.draw_text(&format!("{max:.2}"), &text(13, HPos::Left, VPos::Top), (bar_x + 18, TOP))?;
    root.draw_text("0", &text(13, HPos::Left, VPos::Bottom), (bar_x + 18, TOP + bar_h))?;
    root.present()?;
    Ok(())
}
