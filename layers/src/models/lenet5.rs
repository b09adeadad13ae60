//! Ready-made models built from the layers: LeNet-5, and the main job's LeNet-5 with batch
//! norm and dropout.

use rand::rngs::StdRng;

use crate::error::Result;
use crate::nn::{
    Activation, ActivationKind, BatchNorm, Conv2d, Conv2dConfig, Dense, Dropout, Flatten, Init, MaxPool2d,
    Sequential,
};

/// LeNet-5 (ReLU and max-pool variant) for `(n, 1, 28, 28)` images, giving `(n, 10)` logits,
/// with each ReLU fused into the layer before it:
///
/// | index | layer | output |
/// |---|---|---|
/// | 0 | conv 1→6, 5x5, pad 2, ReLU | `(n, 6, 28, 28)` |
/// | 1 | max pool 2 | `(n, 6, 14, 14)` |
/// | 2 | conv 6→16, 5x5, ReLU | `(n, 16, 10, 10)` |
/// | 3 | max pool 2 | `(n, 16, 5, 5)` |
/// | 4 | flatten | `(n, 400)` |
/// | 5 | dense 400→120, ReLU | `(n, 120)` |
/// | 6 | dense 120→84, ReLU | `(n, 84)` |
/// | 7 | dense 84→10 | `(n, 10)` |
///
/// Parameters `"0.weight"`, `"0.bias"`, `"2.*"`, `"5.*"`, `"6.*"`, `"7.*"`; weights drawn
/// by He init (ReLU network), biases zero.
///
/// ```
/// use keel_layers::{lenet5, param_counts, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut model = lenet5(&mut StdRng::seed_from_u64(0))?;
/// model.forward(&Tensor::zeros(&[2, 1, 28, 28]), Mode::Eval)?;
/// assert_eq!(model.output().shape(), &[2, 10]);
/// // 156 + 2416 (convolutions) + 48120 + 10164 + 850 (dense layers).
/// assert_eq!(param_counts(&mut model).trainable, 61_706);
/// # Ok(())
/// # }
/// ```
pub fn lenet5(rng: &mut StdRng) -> Result<Sequential> {
    let relu = ActivationKind::Relu;
    Ok(Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 6, 5).with_padding(2).with_activation(relu), Init::He, rng)?)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new(Conv2dConfig::new(6, 16, 5).with_activation(relu), Init::He, rng)?)
        .push(MaxPool2d::new(2))
        .push(Flatten::new())
        .push(Dense::new(400, 120, Init::He, rng)?.with_activation(relu))
        .push(Dense::new(120, 84, Init::He, rng)?.with_activation(relu))
        .push(Dense::new(84, 10, Init::He, rng)?))
}

/// The main job's model (`cargo run --release`): LeNet-5 with batch norm after each
/// convolution and dropout 0.2 after each hidden dense layer, for `(n, 1, 28, 28)` images,
/// giving `(n, 10)` logits. The dense layers' ReLUs are fused into them, so the indices are
/// not those of a plain PyTorch `nn.Sequential`; its PyTorch twin, under which the state_dict
/// has exactly keel's names, is (`tests/fixtures/pytorch/make_fixtures.py`):
///
/// ```python
/// class LinearReLU(nn.Linear):  # keel's Dense with a fused ReLU
///     def forward(self, x):
///         return torch.relu(super().forward(x))
///
/// nn.Sequential(
///     nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),    # 0-3
///     nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),             # 4-7
///     nn.Flatten(), LinearReLU(400, 120), nn.Dropout(0.2),                             # 8-10
///     LinearReLU(120, 84), nn.Dropout(0.2), nn.Linear(84, 10))                         # 11-13
/// ```
///
/// Parameters `"0.*"`, `"4.*"` (convolutions), `"1.*"`, `"5.*"` (batch norms, with buffers
/// `running_mean`, `running_var`), `"9.*"`, `"11.*"`, `"13.*"` (dense); convolution and
/// dense weights drawn by He init in that order, the dropouts seeded 11 and 12.
pub fn lenet5_bn(rng: &mut StdRng) -> Result<Sequential> {
    let relu = ActivationKind::Relu;
    Ok(Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 6, 5).with_padding(2), Init::He, rng)?)
        .push(BatchNorm::new_2d(6))
        .push(Activation::new(relu))
        .push(MaxPool2d::new(2))
        .push(Conv2d::new(Conv2dConfig::new(6, 16, 5), Init::He, rng)?)
        .push(BatchNorm::new_2d(16))
        .push(Activation::new(relu))
        .push(MaxPool2d::new(2))
        .push(Flatten::new())
        .push(Dense::new(400, 120, Init::He, rng)?.with_activation(relu))
        .push(Dropout::new(0.2, 11)?)
        .push(Dense::new(120, 84, Init::He, rng)?.with_activation(relu))
        .push(Dropout::new(0.2, 12)?)
        .push(Dense::new(84, 10, Init::He, rng)?))
}
