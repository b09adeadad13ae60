//! Global average pool: `(n, c, h, w)` → `(n, c)` and back.

use rayon::prelude::*;

use super::planes_per_task;
use crate::error::{check_len, shape_error, Result};
use crate::isa::current_isa;
use crate::simd::{dispatch, Kernel, SimdF32};

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

/// The means of whole planes of `plane` elements, `x` to `y`, as a [`Kernel`].
struct PlaneMeans<'a, 'o> {
    plane: usize,
    x: &'a [f32],
    y: &'o mut [f32],
}

impl Kernel for PlaneMeans<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        let plane = self.plane;
        let body = plane - plane % V::LANES;
        for (xp, out) in self.x.chunks_exact(plane).zip(self.y.iter_mut()) {
            let mut sum = V::splat(0.0);
            for at in (0..body).step_by(V::LANES) {
                sum = sum + V::load(&xp[at..]);
            }
            let tail: f32 = xp[body..].iter().sum();
            *out = (sum.reduce_add() + tail) / plane as f32;
        }
    }
}

/// Global average pool forward: `y[n, c]` (**overwritten**, `(n, c)`) is the mean of plane
/// `x[n, c, :, :]` (`x` is `(n, c, h, w)`), summed in the lanes of the vectors of
/// [`current_isa`] (16 on AVX-512, 8 otherwise), then the lanes in a fixed order, then the
/// `h·w mod lanes` tail: the same bits on any number of threads for a given instruction
/// set. `h` and `w` must be at least 1; `n·c = 0` is a no-op.
///
/// ```
/// use keel_kernels::pool::global_avgpool_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // x (1, 2, 2, 2): two 2x2 planes; y (1, 2): their means.
/// let x = [1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0];
/// let mut y = [0.0; 2];
/// global_avgpool_forward(1, 2, 2, 2, &x, &mut y)?;
/// assert_eq!(y, [2.5, 10.0]);
/// # Ok(())
/// # }
/// ```
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
    let (plane, isa) = (h * w, current_isa());
    let run = |x: &[f32], y: &mut [f32]| dispatch(isa, PlaneMeans { plane, x, y });
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
///
/// ```
/// use keel_kernels::pool::global_avgpool_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // dy (1, 2) spread evenly over dx (1, 2, 2, 2).
/// let mut dx = [0.0; 8];
/// global_avgpool_backward(1, 2, 2, 2, &[4.0, 8.0], &mut dx)?;
/// assert_eq!(dx, [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
/// # Ok(())
/// # }
/// ```
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
