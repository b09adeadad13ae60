//! Global average pool: `(n, c, h, w)` → `(n, c)` and back.

use rayon::prelude::*;
use wide::f32x8;

use super::{planes_per_task, LANES};
use crate::error::{check_len, shape_error, Result};

/// Checks `h, w >= 1` and the lengths of the `(n, c, h, w)` and `(n, c)` slices.
fn check(n: usize, c: usize, h: usize, w: usize, big: (&str, usize), small: (&str, usize)) -> Result<usize> {
    for (name, value) in [("h", h), ("w", w)] {
        if value == 0 {
            return Err(shape_error(name, format!("{name} >= 1 (the mean of an empty plane)"), value));
        }
    }
    let planes = n.checked_mul(c);
    let len = planes.and_then(|p| p.checked_mul(h)).and_then(|p| p.checked_mul(w));
    let (Some(planes), Some(len)) = (planes, len) else {
        return Err(shape_error(big.0, "an element count that fits usize", format!("({n}, {c}, {h}, {w})")));
    };
    check_len(|| format!("{} (n, c, h, w) = ({n}, {c}, {h}, {w})", big.0), len, big.1)?;
    check_len(|| format!("{} (n, c) = ({n}, {c})", small.0), planes, small.1)?;
    Ok(planes)
}

/// Global average pool forward: `y[n, c]` (**overwritten**, `(n, c)`) is the mean of plane
/// `x[n, c, :, :]` (`x` is `(n, c, h, w)`), summed in 8 `f32` lanes then reduced.
/// `h` and `w` must be at least 1; `n·c = 0` is a no-op.
pub fn global_avgpool_forward(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let planes = check(n, c, h, w, ("x", x.len()), ("y", y.len()))?;
    if planes == 0 {
        return Ok(());
    }
    let plane = h * w;
    let run = |x: &[f32], y: &mut [f32]| {
        for (xp, out) in x.chunks_exact(plane).zip(y.iter_mut()) {
            let lanes = xp.chunks_exact(LANES);
            let tail: f32 = lanes.remainder().iter().sum();
            let sum = lanes.fold(f32x8::ZERO, |acc, v| acc + f32x8::new(core::array::from_fn(|l| v[l])));
            *out = (sum.reduce_add() + tail) / plane as f32;
        }
    };
    let per_task = planes_per_task(planes, plane + 1);
    if per_task >= planes {
        run(x, y);
    } else {
        x.par_chunks(per_task * plane).zip(y.par_chunks_mut(per_task)).for_each(|(x, y)| run(x, y));
    }
    Ok(())
}

/// Global average pool backward: every element of plane `dx[n, c, :, :]` (**overwritten**,
/// `(n, c, h, w)`) is set to `dy[n, c] / (h·w)` (`dy` is `(n, c)`).
pub fn global_avgpool_backward(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    dy: &[f32],
    dx: &mut [f32],
) -> Result<()> {
    let planes = check(n, c, h, w, ("dx", dx.len()), ("dy", dy.len()))?;
    if planes == 0 {
        return Ok(());
    }
    let plane = h * w;
    let run = |dy: &[f32], dx: &mut [f32]| {
        for (&d, dxp) in dy.iter().zip(dx.chunks_exact_mut(plane)) {
            dxp.fill(d / plane as f32);
        }
    };
    let per_task = planes_per_task(planes, plane + 1);
    if per_task >= planes {
        run(dy, dx);
    } else {
        dy.par_chunks(per_task).zip(dx.par_chunks_mut(per_task * plane)).for_each(|(dy, dx)| run(dy, dx));
    }
    Ok(())
}
