//! `BatchNorm`: batch normalisation over channels (PyTorch's `nn.BatchNorm1d` and
//! `nn.BatchNorm2d`).
//!
//! One implementation over `(n, c, spatial)` tensors: [`BatchNorm::new_1d`] takes `(n, c)`
//! (`spatial = 1`) or `(n, c, l)` (`spatial = l`), [`BatchNorm::new_2d`] takes NCHW
//! (`spatial = h·w`). Per channel `k`, `y = γ_k·(x - μ_k)/√(σ²_k + eps) + β_k` where
//! - in [`Mode::Train`], `μ`, `σ²` are the batch mean and biased variance over the channel's
//!   `n·spatial` values, and the running statistics are updated,
//!   `r ← (1 - momentum)·r + momentum·stat` with the **unbiased** variance;
//! - in [`Mode::Eval`], `μ`, `σ²` are the running statistics (constants: backward is the
//!   "frozen" batch norm `dx = dy·γ/√(r_σ² + eps)`).
//!
//! Parameters `"weight"` (γ, `(c)`, init 1) and `"bias"` (β, `(c)`, init 0); buffers
//! `"running_mean"` (init 0) and `"running_var"` (init 1), visited by
//! [`Layer::visit_buffers`] for saving. PyTorch defaults: `eps = 1e-5`,
//! `momentum = 0.1`. In the course's notation (samples in columns) this is
//! `Z̃ = γ·Z_norm + β` per hidden unit.
//!
//! [`BatchNorm::synchronized`] makes the training statistics those of the whole global
//! batch of data-parallel training (PyTorch's `SyncBatchNorm`): the ranks sum their
//! channel sums in the forward (twice: the mean, then the squares about it) and their
//! gradient sums in the backward, so two ranks of 32 samples compute what one process of 64
//! does.

use std::sync::Arc;

use keel_kernels::norm::{
    batchnorm_backward, batchnorm_backward_apply, batchnorm_backward_eval, batchnorm_backward_workspace_len,
    batchnorm_channel_squares, batchnorm_channel_sums, batchnorm_forward_eval, batchnorm_forward_train,
    batchnorm_grad_sums,
};

use super::layer::{backward_before_forward, check_backward_shapes, Layer, Mode, Param};
use crate::collective::Collective;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Which PyTorch layer a [`BatchNorm`] stands for: the accepted input ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `(n, c)` or `(n, c, l)`.
    OneD,
    /// `(n, c, h, w)`.
    TwoD,
}

/// Batch normalisation (see the module docs).
///
/// # Shapes
/// - input `(n, c)` or `(n, c, l)` ([`BatchNorm::new_1d`]), `(n, c, h, w)` ([`BatchNorm::new_2d`]);
/// - output the input's shape;
/// - parameters `"weight"`, `"bias"` and buffers `"running_mean"`, `"running_var"`, each `(c)`.
///
/// ```
/// use keel_layers::{BatchNorm, Layer, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut bn = BatchNorm::new_1d(2);
/// // Four samples of two features: the first 1, 2, 3, 4, the second all 10.
/// let x = Tensor::from_vec(&[4, 2], vec![1.0, 10.0, 2.0, 10.0, 3.0, 10.0, 4.0, 10.0])?;
/// bn.forward(&x, Mode::Train)?;
/// let y = bn.output().data();
/// let first: f32 = (0..4).map(|i| y[2 * i]).sum();
/// assert!(first.abs() < 1e-5 && y[0] < 0.0 && y[6] > 0.0); // mean 0 per channel
/// assert_eq!(y[1], 0.0); // a constant feature becomes 0
/// // The running mean moved a tenth of the way (momentum 0.1) to the batch mean.
/// assert!((bn.running_mean().data()[0] - 0.25).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BatchNorm {
    kind: Kind,
    channels: usize,
    /// Added to the variance (default 1e-5), `>= 0`.
    pub eps: f32,
    /// Weight of the new batch statistic in the running averages (default 0.1), in `[0, 1]`.
    pub momentum: f32,
    /// γ, `(c)`.
    pub weight: Param,
    /// β, `(c)`.
    pub bias: Param,
    running_mean: Tensor,
    running_var: Tensor,
    save_mean: Tensor,
    save_invstd: Tensor,
    workspace: Tensor,
    /// The mode and shape of the last forward, which backward differentiates.
    last_mode: Option<Mode>,
    output: Tensor,
    grad_input: Tensor,
    /// The ranks whose batches make the statistics, when synchronised.
    group: Option<Arc<dyn Collective>>,
    /// Per-channel sums exchanged with the group (`2c + 1` values), kept between calls.
    sums: Vec<f64>,
}

impl BatchNorm {
    fn new(kind: Kind, channels: usize) -> Self {
        let ones = || {
            let mut t = Tensor::zeros(&[channels]);
            t.data_mut().fill(1.0);
            t
        };
        BatchNorm {
            kind,
            channels,
            eps: 1e-5,
            momentum: 0.1,
            weight: Param::new(ones()),
            bias: Param::new(Tensor::zeros(&[channels])),
            running_mean: Tensor::zeros(&[channels]),
            running_var: ones(),
            save_mean: Tensor::zeros(&[channels]),
            save_invstd: Tensor::zeros(&[channels]),
            workspace: Tensor::zeros(&[batchnorm_backward_workspace_len(channels)]),
            last_mode: None,
            output: Tensor::default(),
            grad_input: Tensor::default(),
            group: None,
            sums: Vec::new(),
        }
    }

    /// The same layer computing its training statistics over the batches of every rank of
    /// `group` (PyTorch's `SyncBatchNorm`; see the module docs): every rank must run its
    /// forward and backward at the same points. Evaluation uses the running statistics,
    /// which stay the same on every rank.
    pub fn synchronized(mut self, group: Arc<dyn Collective>) -> Self {
        self.group = Some(group);
        self
    }

    /// The synchronised training forward: the group's mean and biased variance per channel
    /// over all `M` values of every rank's batch, the running statistics updated with them
    /// (the variance unbiased by `M/(M - 1)`), `y` normalised with them.
    fn forward_synchronized(
        &mut self,
        group: &dyn Collective,
        input: &Tensor,
        (n, c, spatial): (usize, usize, usize),
    ) -> Result<()> {
        let x = input.data();
        // [Σ x per channel, the values per channel], then the squares about the mean.
        self.sums.resize(2 * c + 1, 0.0);
        batchnorm_channel_sums(n, c, spatial, x, &mut self.sums[..c])?;
        self.sums[c] = (n * spatial) as f64;
        group.sum(&mut self.sums[..=c])?;
        let count = self.sums[c];
        if count < 2.0 {
            return Err(LayerError::Shape {
                layer: self.name(),
                expected: "more than 1 value per channel over the group's batches when training".into(),
                actual: input.shape().to_vec(),
            });
        }
        let (means, squares) = self.sums.split_at_mut(c + 1);
        let means = &mut means[..c];
        means.iter_mut().for_each(|sum| *sum /= count);
        batchnorm_channel_squares(n, c, spatial, x, means, squares)?;
        group.sum(squares)?;
        let momentum = f64::from(self.momentum);
        let variance = &mut self.workspace.data_mut()[..c];
        let channels =
            self.save_mean.data_mut().iter_mut().zip(self.save_invstd.data_mut()).zip(variance.iter_mut());
        let running = self.running_mean.data_mut().iter_mut().zip(self.running_var.data_mut());
        for (k, (((mean_out, invstd_out), var_out), (run_mean, run_var))) in channels.zip(running).enumerate()
        {
            let (mean, var) = (means[k], squares[k] / count);
            *mean_out = mean as f32;
            *invstd_out = (1.0 / (var + f64::from(self.eps)).sqrt()) as f32;
            *var_out = var as f32;
            *run_mean = ((1.0 - momentum) * f64::from(*run_mean) + momentum * mean) as f32;
            *run_var =
                ((1.0 - momentum) * f64::from(*run_var) + momentum * var * count / (count - 1.0)) as f32;
        }
        // y = γ·(x - μ)/√(σ² + eps) + β: the evaluation pass with the group's statistics.
        let (gamma, beta) = (self.weight.value.data(), self.bias.value.data());
        let (mean, variance) = (self.save_mean.data(), &self.workspace.data()[..c]);
        batchnorm_forward_eval(
            n,
            c,
            spatial,
            x,
            gamma,
            beta,
            mean,
            variance,
            self.eps,
            self.output.data_mut(),
        )?;
        Ok(())
    }

    /// The synchronised training backward. With `g = n_r·dy` the gradient of the loss summed
    /// over the global batch (`dy` being that of this rank's mean loss over its `n_r`
    /// samples), `∂/∂x = γ·invstd·(g - mean(g) - x̂·mean(g·x̂))/n_r`, the means over the whole
    /// group's `M` values per channel: each rank adds `n_r·Σ dy` and `n_r·Σ dy·(x - μ)`.
    /// The parameter gradients stay this rank's, `Σ dy·x̂` and `Σ dy`, which data-parallel
    /// training weighs by `n_r` and sums as any other.
    fn backward_synchronized(
        &mut self,
        group: &dyn Collective,
        (x, dy): (&[f32], &[f32]),
        (n, c, spatial): (usize, usize, usize),
    ) -> Result<()> {
        self.sums.resize(2 * c + 1, 0.0);
        let (sum_dy, rest) = self.sums.split_at_mut(c);
        let mean = self.save_mean.data();
        batchnorm_grad_sums(n, c, spatial, x, dy, mean, sum_dy, &mut rest[..c])?;
        let (invstd, dgamma, dbeta) =
            (self.save_invstd.data(), self.weight.grad.data_mut(), self.bias.grad.data_mut());
        for k in 0..c {
            dbeta[k] += self.sums[k] as f32;
            dgamma[k] += (self.sums[c + k] * f64::from(invstd[k])) as f32;
        }
        let rows = n as f64;
        self.sums[..2 * c].iter_mut().for_each(|sum| *sum *= rows);
        self.sums[2 * c] = (n * spatial) as f64;
        group.sum(&mut self.sums)?;
        let count = self.sums[2 * c];
        let (mean_dy, slope) = self.workspace.data_mut().split_at_mut(c);
        for k in 0..c {
            let invstd = f64::from(invstd[k]);
            mean_dy[k] = (self.sums[k] / count / rows) as f32;
            slope[k] = (invstd * (self.sums[c + k] * invstd) / count / rows) as f32;
        }
        let gamma = self.weight.value.data();
        batchnorm_backward_apply(
            n,
            c,
            spatial,
            x,
            dy,
            gamma,
            mean,
            invstd,
            mean_dy,
            &slope[..c],
            self.grad_input.data_mut(),
        )?;
        Ok(())
    }

    /// `nn.BatchNorm1d(channels)`: input `(n, c)` or `(n, c, l)`, output the same shape.
    pub fn new_1d(channels: usize) -> Self {
        BatchNorm::new(Kind::OneD, channels)
    }

    /// `nn.BatchNorm2d(channels)`: input `(n, c, h, w)`, output the same shape.
    pub fn new_2d(channels: usize) -> Self {
        BatchNorm::new(Kind::TwoD, channels)
    }

    /// The running mean, `(c)`.
    pub fn running_mean(&self) -> &Tensor {
        &self.running_mean
    }

    /// The running (unbiased) variance, `(c)`.
    pub fn running_var(&self) -> &Tensor {
        &self.running_var
    }

    /// `(n, c, spatial)` of `input`, or a shape error naming the layer.
    fn dims(&self, input: &Tensor) -> Result<(usize, usize, usize)> {
        let c = self.channels;
        match (self.kind, input.shape()) {
            (Kind::OneD, &[n, ch]) if ch == c => Ok((n, c, 1)),
            (Kind::OneD, &[n, ch, l]) if ch == c => Ok((n, c, l)),
            (Kind::TwoD, &[n, ch, h, w]) if ch == c => Ok((n, c, h.saturating_mul(w))),
            _ => Err(LayerError::Shape {
                layer: self.name(),
                expected: match self.kind {
                    Kind::OneD => format!("(batch, {c}) or (batch, {c}, length)"),
                    Kind::TwoD => format!("(batch, {c}, height, width)"),
                },
                actual: input.shape().to_vec(),
            }),
        }
    }
}

impl Layer for BatchNorm {
    fn name(&self) -> String {
        match self.kind {
            Kind::OneD => format!("batchnorm1d({})", self.channels),
            Kind::TwoD => format!("batchnorm2d({})", self.channels),
        }
    }

    /// Training needs more than one value per channel (`n·spatial >= 2`, over the group's
    /// batches when synchronised), as in PyTorch.
    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()> {
        let (n, c, spatial) = self.dims(input)?;
        if let (Mode::Train, Some(group)) = (mode, self.group.clone()) {
            self.output.resize(input.shape());
            self.forward_synchronized(group.as_ref(), input, (n, c, spatial))?;
            self.last_mode = Some(mode);
            return Ok(());
        }
        if mode == Mode::Train && n.saturating_mul(spatial) < 2 {
            return Err(LayerError::Shape {
                layer: self.name(),
                expected: "more than 1 value per channel when training (batch·spatial >= 2)".into(),
                actual: input.shape().to_vec(),
            });
        }
        self.output.resize(input.shape());
        let (x, y) = (input.data(), self.output.data_mut());
        let (gamma, beta) = (self.weight.value.data(), self.bias.value.data());
        match mode {
            Mode::Train => batchnorm_forward_train(
                n,
                c,
                spatial,
                x,
                gamma,
                beta,
                self.eps,
                self.momentum,
                self.running_mean.data_mut(),
                self.running_var.data_mut(),
                y,
                self.save_mean.data_mut(),
                self.save_invstd.data_mut(),
            )?,
            Mode::Eval => batchnorm_forward_eval(
                n,
                c,
                spatial,
                x,
                gamma,
                beta,
                self.running_mean.data(),
                self.running_var.data(),
                self.eps,
                y,
            )?,
        }
        self.last_mode = Some(mode);
        Ok(())
    }

    fn synchronize_batch_norm(&mut self, group: &Arc<dyn Collective>) {
        self.group = Some(Arc::clone(group));
    }

    /// Differentiates the last forward: through the batch statistics after a training
    /// forward, with the running statistics as constants after an evaluation forward.
    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        let (n, c, spatial) = self.dims(input)?;
        let Some(mode) = self.last_mode else {
            return Err(backward_before_forward(&self.name()));
        };
        check_backward_shapes(|| self.name(), self.output.shape(), grad_output, Some(input))?;
        self.grad_input.resize(input.shape());
        if let (Mode::Train, Some(group)) = (mode, self.group.clone()) {
            let (x, dy) = (input.data(), grad_output.data());
            return self.backward_synchronized(group.as_ref(), (x, dy), (n, c, spatial));
        }
        let (x, dy, dx) = (input.data(), grad_output.data(), self.grad_input.data_mut());
        let (gamma, dgamma, dbeta) =
            (self.weight.value.data(), self.weight.grad.data_mut(), self.bias.grad.data_mut());
        match mode {
            Mode::Train => batchnorm_backward(
                n,
                c,
                spatial,
                x,
                dy,
                gamma,
                self.save_mean.data(),
                self.save_invstd.data(),
                self.workspace.data_mut(),
                dx,
                dgamma,
                dbeta,
            )?,
            Mode::Eval => batchnorm_backward_eval(
                n,
                c,
                spatial,
                x,
                dy,
                gamma,
                self.running_mean.data(),
                self.running_var.data(),
                self.eps,
                dx,
                dgamma,
                dbeta,
            )?,
        }
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        visit("weight", &mut self.weight);
        visit("bias", &mut self.bias);
    }

    /// The running statistics (not trained, but saved with the model): `"running_mean"`
    /// then `"running_var"`, both `(c)`.
    fn visit_buffers(&mut self, visit: &mut dyn FnMut(&str, &mut Tensor)) {
        visit("running_mean", &mut self.running_mean);
        visit("running_var", &mut self.running_var);
    }
}
