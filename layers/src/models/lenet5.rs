//! Ready-made models built from the layers: LeNet-5.

use rand::rngs::StdRng;

use crate::error::Result;
use crate::nn::{ActivationKind, Conv2d, Conv2dConfig, Dense, Flatten, Init, MaxPool2d, Sequential};

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
pub fn lenet5(rng: &mut StdRng) -> Result<Sequential> {
    let relu = ActivationKind::Relu;
    Ok(Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 6, 5).with_padding(2).with_activation(relu), Init::He, rng)?)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new(Conv2dConfig::new(6, 16, 5).with_activation(relu), Init::He, rng)?)
        .push(MaxPool2d::new(2))
        .push(Flatten::new())
        .push(Dense::new(400, 120, Init::He, rng).with_activation(relu))
        .push(Dense::new(120, 84, Init::He, rng).with_activation(relu))
        .push(Dense::new(84, 10, Init::He, rng)))
}
