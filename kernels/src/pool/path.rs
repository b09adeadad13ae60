//! The paths a pooling pass can take.

use crate::isa::Isa;

/// The code that computes one pooling pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolPath {
    /// Tiled 2x2 windows (stride 2, no padding, none clipped), 16 outputs per AVX-512 vector.
    TiledAvx512,
    /// Tiled 2x2 windows, 8 outputs per AVX2 vector.
    TiledAvx2,
    /// Tiled 2x2 or 3x3 windows in plain loops (the compiler's vectorisation): 3x3 on every
    /// instruction set, 2x2 without AVX2. Not for max pool backward, which scatters.
    TiledPortable,
    /// Any window: forward passes 8 output columns per `wide::f32x8` where the windows lie
    /// inside the input, scalar at clipped edges; backward passes zero fill and add window
    /// by window (max pool: through the mask).
    Windows,
}

impl PoolPath {
    /// Every path, in the order of this enum.
    pub const ALL: [PoolPath; 4] =
        [PoolPath::TiledAvx512, PoolPath::TiledAvx2, PoolPath::TiledPortable, PoolPath::Windows];

    /// Whether [`plan`](super::plan) can give this path on `isa`.
    pub fn runs_on(self, isa: Isa) -> bool {
        match self {
            PoolPath::TiledAvx512 => isa == Isa::Avx512,
            PoolPath::TiledAvx2 => isa == Isa::Avx2,
            PoolPath::TiledPortable | PoolPath::Windows => true,
        }
    }
}
