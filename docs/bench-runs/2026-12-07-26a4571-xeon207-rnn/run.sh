#!/bin/bash
cd "$(dirname "$0")/../../.."  # the repository, beside ../shared
# Keel's bench binary built at 26a4571 (`cargo bench --bench rnn --no-run`); FMA_PEAK is
# ../shared/perf/peers/fma_peak.c built as its README says; OUT is this folder.
PY=${PY:-python3}  # a venv with torch and onnxruntime, outside the repository
$FMA_PEAK 9 > $OUT/peak0.txt 2>&1
for r in 1 2; do
  $PY ../shared/perf/peers/torch_ops.py $OUT/torch$r.json rnn > $OUT/torch$r.txt 2>&1
  ONLY="LSTM|GRU" $PY ../shared/perf/peers/ort_bench.py $OUT/ort$r.json > $OUT/ort$r.txt 2>&1
  target/release/deps/rnn-<hash> --bench --warm-up-time 2 --measurement-time 3 "(lstm|gru)/.*/keel_avx512_layer" > $OUT/keel$r.txt 2>&1
done
$FMA_PEAK 9 > $OUT/peak1.txt 2>&1
