//! Links the system BLAS when the `blas` feature is on; does nothing otherwise.
//!
//! `cblas-sys` only declares the `cblas_*` symbols. This script picks the library that
//! provides them and passes it to the linker of every binary built on this crate, whichever
//! package enabled the feature (the `keel` facade, `keel-layers`, or a user's crate
//! depending on `keel-kernels` directly):
//! - `KEEL_BLAS_LIB`: the library to link, by its linker name (`openblas` by default;
//!   e.g. `blis`, `mkl_rt`, `cblas`). It is looked up with pkg-config first, then
//!   passed to the linker as `-l<name>`.
//! - `KEEL_BLAS_LIB_DIR`: an extra directory to search, when the library is not on the
//!   default linker path.
//! - `KEEL_BLAS_STATIC=1`: link it statically.
//!
//! Nothing is ever downloaded.

fn main() {
    println!("cargo:rerun-if-env-changed=KEEL_BLAS_LIB");
    println!("cargo:rerun-if-env-changed=KEEL_BLAS_LIB_DIR");
    println!("cargo:rerun-if-env-changed=KEEL_BLAS_STATIC");
    if std::env::var_os("CARGO_FEATURE_BLAS").is_none() {
        return;
    }
    let lib = std::env::var("KEEL_BLAS_LIB").unwrap_or_else(|_| "openblas".to_owned());
    // `gemm::BLAS_LIBRARY` names it, for benches and examples.
    println!("cargo:rustc-env=KEEL_BLAS_NAME={lib}");
    let statik = std::env::var("KEEL_BLAS_STATIC").is_ok_and(|v| v == "1");
    if let Ok(dir) = std::env::var("KEEL_BLAS_LIB_DIR") {
        println!("cargo:rustc-link-search=native={dir}");
    } else if pkg_config::Config::new().statik(statik).probe(&lib).is_ok() {
        // pkg-config printed the link flags.
        return;
    }
    let kind = if statik { "static" } else { "dylib" };
    println!("cargo:rustc-link-lib={kind}={lib}");
}
