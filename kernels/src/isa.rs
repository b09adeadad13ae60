//! The instruction sets keel's kernels are written for, and the one every kernel call runs on.
//!
//! A plain `cargo build --release` targets baseline x86-64, so the fast paths are compiled
//! per instruction set under `#[target_feature]` and picked at run time. One rule decides
//! the instruction set of a call, [`current_isa`]:
//!
//! 1. the one [`with_isa`] forces on the calling thread, if any (tests and benches run every
//!    instruction set the CPU has this way);
//! 2. else the one the environment variable `KEEL_ISA` names (`avx512`, `avx2`, `portable`),
//!    when the CPU has it;
//! 3. else the best the CPU has.
//!
//! Every public kernel entry point (GEMM, convolution, pooling, element-wise passes, losses,
//! RNN cells, normalisation, optimizer updates, embedding steps) resolves it **once**, on the calling thread,
//! and passes it down explicitly, to its own SIMD code and to the work it hands to rayon
//! threads, so a forced instruction set reaches every path of every family.
//!
//! ```
//! use keel_kernels::isa::{current_isa, with_isa, Isa};
//! # fn main() -> keel_kernels::Result<()> {
//!
//! // Every instruction set this CPU has, best first; the portable one runs anywhere.
//! for isa in Isa::available() {
//!     let seen = with_isa(isa, current_isa)?;
//!     assert_eq!(seen, isa);
//! }
//! # Ok(())
//! # }
//! ```

use std::cell::Cell;
use std::sync::OnceLock;

use crate::error::{argument_error, Result};

/// The instruction sets keel has kernels for, best first.
///
/// ```
/// use keel_kernels::isa::Isa;
///
/// // The names `KEEL_ISA` takes.
/// assert_eq!(Isa::from_name("avx2"), Some(Isa::Avx2));
/// assert_eq!(Isa::Avx512.name(), "avx512");
/// assert_eq!(Isa::from_name("sse"), None);
/// // The portable code runs on every CPU.
/// assert!(Isa::Portable.is_supported() && Isa::available().contains(&Isa::Portable));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// the sets it has (the check of [`with_isa`]).
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

    /// The instruction set `KEEL_ISA` names this way, if any.
    pub fn from_name(name: &str) -> Option<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().find(|isa| isa.name() == name.trim())
    }

    /// The CPU features the instruction set needs, as `is_x86_feature_detected!` names them.
    pub fn features(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512f",
            Isa::Avx2 => "avx2 and fma",
            Isa::Portable => "no feature",
        }
    }

    /// For a test of code written for this instruction set: whether this CPU can run it.
    /// When it cannot, the test is reported by name on stderr, as
    /// `skipped: <test> needs avx512f, this CPU lacks it`, so that a test returning early
    /// says what it did not run instead of passing silently. The line is written to the
    /// process's stderr directly (the test harness captures only `print!` and `eprint!`, so
    /// `cargo test` shows it), once per `test` and process.
    pub fn supported_or_skip(self, test: &str) -> bool {
        use std::collections::HashSet;
        use std::io::Write;
        use std::sync::Mutex;

        static REPORTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
        if self.is_supported() {
            return true;
        }
        let mut reported = REPORTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if reported.get_or_insert_with(HashSet::new).insert(test.to_owned()) {
            // A failed write to stderr leaves nothing else to report to.
            let _ =
                writeln!(std::io::stderr(), "skipped: {test} needs {}, this CPU lacks it", self.features());
        }
        false
    }
}

/// The instruction set of calls with nothing forced: the one `KEEL_ISA` names (`avx512`,
/// `avx2`, `portable`) when the CPU has it (a name the CPU cannot run, or an unknown one,
/// falls back to the best, with a warning on stderr), else the best this CPU has. Decided
/// on the first call and cached.
fn default_isa() -> Isa {
    static DEFAULT: OnceLock<Isa> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
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

thread_local! {
    /// The instruction set [`with_isa`] forces on this thread, if any.
    static FORCED: Cell<Option<Isa>> = const { Cell::new(None) };
}

/// The instruction set a kernel called on this thread runs on (the rule of the
/// [module docs](self)): the one [`with_isa`] forces, else `KEEL_ISA`'s, else the best.
///
/// ```
/// use keel_kernels::isa::{current_isa, Isa};
///
/// // Always an instruction set this CPU can run: the best it has, unless told otherwise.
/// let isa = current_isa();
/// assert!(isa.is_supported() && Isa::available().contains(&isa));
/// println!("kernels run on {}", isa.name());
/// ```
pub fn current_isa() -> Isa {
    FORCED.with(Cell::get).unwrap_or_else(default_isa)
}

/// Runs `f` with every kernel called **on this thread** running on `isa` (GEMM,
/// convolution, pooling, element-wise passes, losses, RNN cells, normalisation, optimizer
/// updates, and the parts of them that run on other rayon threads), then restores the
/// previous choice (also when `f` panics). Wrap the closure given to `pool.install`, not
/// the other way round, since `install` runs it on a pool thread.
///
/// Errors: `isa` is not an instruction set this CPU has (`f` is not run).
///
/// ```
/// use keel_kernels::activation::relu_forward;
/// use keel_kernels::isa::{current_isa, with_isa, Isa};
/// # fn main() -> keel_kernels::Result<()> {
/// let before = current_isa();
/// // A kernel on the portable path, which every CPU has.
/// let mut y = [0.0; 2];
/// let ran = with_isa(Isa::Portable, || {
///     assert_eq!(current_isa(), Isa::Portable);
///     relu_forward(&[-1.0, 1.0], &mut y)
/// })?; // `?` on the forcing: an instruction set this CPU lacks
/// ran?; // `?` on the kernel's own result
/// assert_eq!(y, [0.0, 1.0]);
/// assert_eq!(current_isa(), before); // restored
/// # Ok(())
/// # }
/// ```
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> Result<R> {
    isa.check_supported()?;
    /// Puts the previous choice back when dropped.
    struct Restore(Option<Isa>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|forced| forced.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|forced| forced.replace(Some(isa))));
    Ok(f())
}
