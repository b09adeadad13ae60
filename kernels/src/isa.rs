//! The instruction sets keel's kernels are written for, and the one chosen once at run time.
//!
//! A plain `cargo build --release` targets baseline x86-64, so the fast paths are compiled
//! per instruction set under `#[target_feature]` and picked here: [`selected_isa`] is the best
//! the CPU has (or the one `KEEL_ISA` names), decided on first use and cached. The GEMM
//! microkernels, the direct and images-in-lanes convolutions, the tiled pools and the
//! element-wise passes of [`crate::simd`] all follow it; their `*_isa` entry points take an
//! [`Isa`] explicitly, checked with [`Isa::check_supported`].

use std::sync::OnceLock;

use crate::error::{argument_error, Result};

/// The instruction sets keel has kernels for, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// 512-bit FMA (AVX-512F): 16 lanes, 32 vector registers.
    Avx512,
    /// 256-bit FMA (AVX2 + FMA): 8 lanes, 16 vector registers.
    Avx2,
    /// Plain Rust, auto-vectorised for the compile-time target: runs anywhere.
    Portable,
}

impl Isa {
    /// Every instruction set this CPU can run, best first ([`Isa::Portable`] always).
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|isa| isa.is_supported()).collect()
    }

    /// `Ok` if this CPU can run the instruction set, else an argument error naming `isa` and
    /// the sets it has (the check of every `*_isa` entry point).
    pub fn check_supported(self) -> Result<()> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(argument_error("isa", format!("one of {:?}", Isa::available()), format!("{self:?}")))
        }
    }

    /// Whether this CPU can run the instruction set.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            Isa::Portable => true,
        }
    }

    /// The name `KEEL_ISA` takes: `avx512`, `avx2` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    fn from_name(name: &str) -> Option<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().find(|isa| isa.name() == name.trim())
    }
}

/// The instruction set every kernel runs on (GEMM, convolution, pooling, the element-wise
/// passes): the best this CPU has, or the one the
/// environment variable `KEEL_ISA` names (`avx512`, `avx2`, `portable`) when the CPU has it
/// (a name the CPU cannot run, or an unknown one, falls back to the best, with a warning on
/// stderr). Decided on the first call and cached.
pub fn selected_isa() -> Isa {
    static SELECTED: OnceLock<Isa> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        let best = Isa::available()[0];
        match std::env::var("KEEL_ISA") {
            Err(_) => best,
            Ok(name) => match Isa::from_name(&name) {
                Some(isa) if isa.is_supported() => isa,
                _ => {
                    eprintln!(
                        "keel: KEEL_ISA={name:?} is not an instruction set this CPU has; using {}",
                        best.name()
                    );
                    best
                }
            },
        }
    })
}
