//! The microkernel contract, and the choice of instruction set made once at run time.
//!
//! Every level of the GEMM above the microkernel (packing, the loop nest, edges, threads) is
//! written once, generic over [`Microkernel`]; adding an instruction set means one new file
//! with one type implementing the trait, and one arm in [`Isa`].

use std::sync::OnceLock;

/// One register-blocked tile update: `C[0..MR, 0..NR] = α·(Ã·B̃) + β·C`.
///
/// Contract:
/// - `a` points at a packed micro-panel of `Ã`: `kc` columns of `MR` values each, column
///   after column (`a[p·MR + i] = A[i, p]`);
/// - `b` points at a micro-panel of `B̃`: `kc` rows of `NR` contiguous values, `b_rs` apart
///   (`b[p·b_rs + j] = B[p, j]`): `b_rs = NR` when packed, `ldb` when read in place;
/// - `c` points at the tile's top-left element, rows `ldc` apart; all `MR x NR` elements are
///   written (edge tiles go through a full-size scratch tile);
/// - with `β = 0`, `C` is not read (NaN in it does not leak); `kc` may be 0 (then `C = β·C`).
pub(crate) trait Microkernel {
    /// Rows of the tile (values broadcast from `Ã`).
    const MR: usize;
    /// Columns of the tile (vector lanes along a row of `B̃` and `C`).
    const NR: usize;
    /// The instruction set this kernel needs.
    const ISA: Isa;

    /// The tile update described in the trait docs.
    ///
    /// # Safety
    /// `a` must be readable for `kc·MR` floats, `b` for `kc` rows of `NR` floats `b_rs`
    /// apart, `c` readable (when
    /// `β ≠ 0`) and writable for `MR` rows of `NR` floats `ldc` apart, and the CPU must
    /// support [`Self::ISA`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        kc: usize,
        alpha: f32,
        a: *const f32,
        b: *const f32,
        b_rs: usize,
        beta: f32,
        c: *mut f32,
        ldc: usize,
    );
}

/// The instruction sets with a microkernel, best first.
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

/// The instruction set for [`super::sgemm_isa`]: the best this CPU has, or the one the
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
