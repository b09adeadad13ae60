//! `cargo run --release`: measures each keel kernel beside its baseline on this machine and
//! prints a table (median of repeated runs, throughput, ratio). Until the layers land this is
//! keel's main job: a quick, honest look at what the kernels do here.
//!
//! The thread count follows rayon (`RAYON_NUM_THREADS`, default: all cores).

mod throughput;

use throughput::{Row, Unit};

fn main() {
    let threads = rayon::current_num_threads();
    println!("keel kernel throughput on {threads} thread(s): median of repeated runs\n");
    let mut rows: Vec<Row> = Vec::new();
    rows.extend(throughput::gemm_rows());
    Row::print_table(&rows);
    println!(
        "\n{} = GFLOP/s, {} = GB/s (bytes read + written). `cargo bench` for criterion figures.",
        Unit::Flops.label(),
        Unit::Bytes.label()
    );
}
