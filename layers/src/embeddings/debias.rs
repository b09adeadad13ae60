//! Reducing a bias direction in word vectors, the course's way (after Bolukbasi et al.
//! 2016, "Man is to Computer Programmer as Woman is to Homemaker?").
//!
//! With a bias direction `g` (e.g. `e_she - e_he`, the mean of several such differences,
//! [`bias_direction`], or their first principal component, [`bias_direction_pca`]):
//! - **neutralise** a word that should carry no bias (`receptionist`): remove its component
//!   along `g`, `e - (e·g/‖g‖²)·g` ([`neutralize`]);
//! - **equalise** a pair that should differ only along `g` (`actor`/`actress`): give both the
//!   same component orthogonal to `g` and opposite components along it ([`equalize`]).
//!
//! The algebra runs in `f64`; results are rounded to `f32`.

use crate::error::{LayerError, Result};

/// `e·g` in f64.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

/// Errors unless `e` and `g` have one length and `g` is not zero; returns `‖g‖²`.
fn check(e: &[f32], g: &[f32]) -> Result<f64> {
    if e.len() != g.len() {
        return Err(LayerError::Data(format!(
            "debias: vector of length {} against a bias direction of length {}",
            e.len(),
            g.len()
        )));
    }
    let norm2 = dot(g, g);
    if norm2 == 0.0 || !norm2.is_finite() {
        return Err(LayerError::Data("debias: the bias direction must be nonzero and finite".into()));
    }
    Ok(norm2)
}

/// The component of `e` along `g`: `(e·g/‖g‖²)·g`. Errors: lengths differ, `g` zero.
pub fn projection(e: &[f32], g: &[f32]) -> Result<Vec<f32>> {
    let scale = dot(e, g) / check(e, g)?;
    Ok(g.iter().map(|&x| (scale * f64::from(x)) as f32).collect())
}

/// `e` without its component along `g`: `e - (e·g/‖g‖²)·g`, orthogonal to `g`.
/// Errors: lengths differ, `g` zero.
///
/// ```
/// use keel_layers::embeddings::{bias_direction, neutralize};
/// # fn main() -> keel_layers::Result<()> {
/// let (she, he) = ([0.5f32, 1.0, 0.0], [-0.5f32, 1.0, 0.0]);
/// let g = bias_direction(&[(&she[..], &he[..])])?; // she - he
/// assert_eq!(g, [1.0, 0.0, 0.0]);
/// let receptionist = neutralize(&[0.3, 0.2, 0.8], &g)?;
/// assert_eq!(receptionist, [0.0, 0.2, 0.8]);
/// # Ok(())
/// # }
/// ```
pub fn neutralize(e: &[f32], g: &[f32]) -> Result<Vec<f32>> {
    let scale = dot(e, g) / check(e, g)?;
    Ok(e.iter().zip(g).map(|(&x, &y)| (f64::from(x) - scale * f64::from(y)) as f32).collect())
}

/// Equalises the pair `(e1, e2)` about `g` (the course's `equalize`): with
/// `μ = (e1 + e2)/2`, `μ_B` its component along `g` and `μ_⊥ = μ - μ_B`,
///
/// ```text
/// e_i' = μ_⊥ + √|1 - ‖μ_⊥‖²| · (e_iB - μ_B) / ‖e_i - μ_⊥ - μ_B‖
/// ```
///
/// so both share the orthogonal part `μ_⊥` and have opposite components along `g` of equal
/// size (hence equal norms; for unit-norm inputs differing along `g` only, unit norms).
/// A pair of equal vectors gives `(μ_⊥, μ_⊥)`. Errors: lengths differ, `g` zero.
pub fn equalize(e1: &[f32], e2: &[f32], g: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
    let norm2 = check(e1, g)?;
    check(e2, g)?;
    let along = |e: &[f32]| dot(e, g) / norm2;
    // Coordinates along g (in units of g) and the orthogonal part of the mean.
    let (a1, a2) = (along(e1), along(e2));
    let mu_b = 0.5 * (a1 + a2);
    let mu_orth: Vec<f64> = e1
        .iter()
        .zip(e2)
        .zip(g)
        .map(|((&x, &y), &gi)| 0.5 * (f64::from(x) + f64::from(y)) - mu_b * f64::from(gi))
        .collect();
    let orth2: f64 = mu_orth.iter().map(|v| v * v).sum();
    let scale = (1.0 - orth2).abs().sqrt();
    // ‖e_i - μ_⊥ - μ_B‖ = ‖e_i - μ‖ = ‖e1 - e2‖/2 for both.
    let half_gap =
        0.5 * e1.iter().zip(e2).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>().sqrt();
    let corrected = |a: f64| if half_gap == 0.0 { 0.0 } else { scale * (a - mu_b) / half_gap };
    let (c1, c2) = (corrected(a1), corrected(a2));
    let build = |c: f64| mu_orth.iter().zip(g).map(|(&o, &gi)| (o + c * f64::from(gi)) as f32).collect();
    Ok((build(c1), build(c2)))
}

/// Checks that the pairs are non-empty and of one length; returns it.
fn pair_len(pairs: &[(&[f32], &[f32])]) -> Result<usize> {
    let dim = pairs.first().map(|p| p.0.len()).unwrap_or(0);
    if dim == 0 || pairs.iter().any(|(a, b)| a.len() != dim || b.len() != dim) {
        return Err(LayerError::Data("bias direction: needs pairs of nonempty vectors of one length".into()));
    }
    Ok(dim)
}

/// The mean of the differences `a - b` over the pairs (the course's
/// `g = e_woman - e_man`, averaged over several pairs to be less noisy).
/// Errors: no pair, lengths that differ.
pub fn bias_direction(pairs: &[(&[f32], &[f32])]) -> Result<Vec<f32>> {
    let dim = pair_len(pairs)?;
    let mut sum = vec![0.0f64; dim];
    for (a, b) in pairs {
        for (s, (&x, &y)) in sum.iter_mut().zip(a.iter().zip(b.iter())) {
            *s += f64::from(x) - f64::from(y);
        }
    }
    Ok(sum.iter().map(|s| (s / pairs.len() as f64) as f32).collect())
}

/// The first principal component of the pairs centred on their means (Bolukbasi et al.):
/// the unit vector `v` maximising `Σ ((a - b)·v)²`, by power iteration, signed to point
/// from `b` to `a` on average. Errors: no pair, lengths that differ, all pairs equal.
pub fn bias_direction_pca(pairs: &[(&[f32], &[f32])]) -> Result<Vec<f32>> {
    let dim = pair_len(pairs)?;
    let diffs: Vec<Vec<f64>> = pairs
        .iter()
        .map(|(a, b)| a.iter().zip(b.iter()).map(|(&x, &y)| f64::from(x) - f64::from(y)).collect())
        .collect();
    let normalise = |v: &mut Vec<f64>| -> bool {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return false;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        true
    };
    // Start from the largest difference (never orthogonal to the top component unless the
    // spectrum is degenerate), then v <- Σ d (d·v).
    let mut v = diffs
        .iter()
        .max_by(|a, b| a.iter().map(|x| x * x).sum::<f64>().total_cmp(&b.iter().map(|x| x * x).sum::<f64>()))
        .cloned()
        .unwrap_or_default();
    if !normalise(&mut v) {
        return Err(LayerError::Data("bias direction: every pair is equal".into()));
    }
    for _ in 0..500 {
        let mut next = vec![0.0f64; dim];
        for d in &diffs {
            let along: f64 = d.iter().zip(&v).map(|(x, y)| x * y).sum();
            next.iter_mut().zip(d).for_each(|(n, x)| *n += along * x);
        }
        normalise(&mut next);
        let change: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
        v = next;
        if change < 1e-12 {
            break;
        }
    }
    let mean_along: f64 = diffs.iter().map(|d| d.iter().zip(&v).map(|(x, y)| x * y).sum::<f64>()).sum();
    let sign = if mean_along < 0.0 { -1.0 } else { 1.0 };
    Ok(v.iter().map(|x| (sign * x) as f32).collect())
}
