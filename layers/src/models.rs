//! Ready-made models built from the layers.

use rand::rngs::StdRng;

use crate::activation::{Activation, ActivationKind};
use crate::conv2d::{Conv2d, Conv2dConfig};
use crate::dense::Dense;
use crate::error::Result;
use crate::flatten::Flatten;
use crate::init::Init;
use crate::pool::MaxPool2d;
use crate::sequential::Sequential;

/// LeNet-5 (ReLU and max-pool variant) for `(n, 1, 28, 28)` images, giving `(n, 10)` logits:
///
/// | index | layer | output |
/// |---|---|---|
/// | 0 | conv 1→6, 5x5, pad 2 | `(n, 6, 28, 28)` |
/// | 1, 2 | ReLU, max pool 2 | `(n, 6, 14, 14)` |
/// | 3 | conv 6→16, 5x5 | `(n, 16, 10, 10)` |
/// | 4, 5 | ReLU, max pool 2 | `(n, 16, 5, 5)` |
/// | 6 | flatten | `(n, 400)` |
/// | 7, 8 | dense 400→120, ReLU | `(n, 120)` |
/// | 9, 10 | dense 120→84, ReLU | `(n, 84)` |
/// | 11 | dense 84→10 | `(n, 10)` |
///
/// Parameters `"0.weight"`, `"0.bias"`, `"3.*"`, `"7.*"`, `"9.*"`, `"11.*"`; weights drawn
/// by He init (ReLU network), biases zero.
pub fn lenet5(rng: &mut StdRng) -> Result<Sequential> {
    let relu = || Activation::new(ActivationKind::Relu);
    Ok(Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 6, 5).with_padding(2), Init::He, rng)?)
        .push(relu())
        .push(MaxPool2d::new(2))
        .push(Conv2d::new(Conv2dConfig::new(6, 16, 5), Init::He, rng)?)
        .push(relu())
        .push(MaxPool2d::new(2))
        .push(Flatten::new())
        .push(Dense::new(400, 120, Init::He, rng))
        .push(relu())
        .push(Dense::new(120, 84, Init::He, rng))
        .push(relu())
        .push(Dense::new(84, 10, Init::He, rng)))
}
