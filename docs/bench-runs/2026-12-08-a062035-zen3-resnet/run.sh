#!/usr/bin/env bash
# ResNet-18, batch 8, 224x224: PyTorch and keel interleaved (PyTorch, keel, PyTorch, keel),
# on the machine named in the directory (AVX2 only: keel's AVX2 runs).
set -euo pipefail
out=$(dirname "$0")
cargo bench --bench resnet --no-run
for round in 1 2; do
  ~/.cache/keel/peers-venv/bin/python benches/peers/resnet18_torch.py 1 > "$out/torch_round$round.txt"
  cargo bench --bench resnet -- "keel_avx2_(forward|train_sgd)/T[12]" > "$out/keel_round$round.txt" 2>&1
done
