#!/usr/bin/env bash
# Data-parallel throughput beside one process, in interleaved rounds (one run, one machine):
# 1 process x 1 thread, 1 process x 2 threads, 2 ranks x 1 thread (mpirun), on LeNet-5 and
# the MLP (examples/mpi_throughput.rs). Prints every round's lines; compare the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
cargo build --release --features mpi --example mpi_throughput
bin=target/release/examples/mpi_throughput
for round in $(seq 1 "$rounds"); do
  echo "== round $round"
  RAYON_NUM_THREADS=1 "$bin"
  RAYON_NUM_THREADS=2 "$bin"
  RAYON_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np 2 "$bin"
done
