//! `cargo run --release --example kernel_throughput`: measures each keel kernel beside its
//! baseline on this machine and prints a table (median of repeated runs, throughput, ratio):
//! a quick, honest look at what the kernels do here, in about ten seconds.
//!
//! The thread count follows rayon (`RAYON_NUM_THREADS`, default: all cores).

mod throughput;

use throughput::{Row, Unit};

fn main() {
    let threads = rayon::current_num_threads();
    println!("keel kernel throughput on {threads} thread(s): median of repeated runs\n");
    let mut rows: Vec<Row> = Vec::new();
    rows.extend(throughput::gemm_rows());
    rows.extend(throughput::conv_rows());
    rows.extend(throughput::pool_rows());
    rows.extend(throughput::activation_rows());
    rows.extend(throughput::rnn_rows());
    rows.extend(throughput::norm_optim_rows());
    Row::print_table(&rows);
    println!(
        "\nkeel runs on the pool's {threads} thread(s); matrixmultiply and the scalar references on one.\n\
         {} counts a multiply-add as two operations; {} counts bytes read plus bytes written.\n\
         `cargo bench` gives the criterion figures (1 and 2 threads) that the README quotes.",
        Unit::Flops.label(),
        Unit::Bytes.label()
    );
}
