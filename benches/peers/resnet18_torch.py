"""The PyTorch peer of `cargo bench --bench resnet`: torchvision's resnet18 (1000 classes) on a
batch of 8 images of 3x224x224 (NCHW, as a user passes them), float32, 1 and 2 threads:

- forward: eval mode under `torch.no_grad()`;
- train_sgd: a training step with SGD (momentum 0.9, weight decay 1e-4): `zero_grad`, forward
  in training mode, cross-entropy, backward (the images need no gradient), `step`.

Each case is timed as the median of at least 15 calls after 3 warm-up calls, in rounds that
alternate the cases; the output gives ms per batch, images/s and GFLOP/s (3.628 GFLOP per
image forward, 10.65 per training step: see `benches/resnet.rs`).

Run in a virtual environment outside the repository, with torch and torchvision:
    python3 -m venv ~/peers-venv && ~/peers-venv/bin/pip install torch torchvision
    ~/peers-venv/bin/python benches/peers/resnet18_torch.py [ROUNDS]
"""
import statistics
import sys
import time

import torch
import torchvision

FORWARD_GFLOP = 3.628146688
# Forward, input gradients of every layer but the stem convolution (0.236 GFLOP), weight
# gradients of all.
TRAIN_GFLOP = 3 * FORWARD_GFLOP - 0.236027904
BATCH = 8


def cases():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1000)
    x = torch.rand(BATCH, 3, 224, 224) * 2 - 1
    labels = torch.arange(BATCH) * 131 % 1000
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss = torch.nn.CrossEntropyLoss()

    def forward():
        model.eval()
        with torch.no_grad():
            return model(x)

    def train_sgd():
        model.train()
        sgd.zero_grad()
        loss(model(x), labels).backward()
        sgd.step()

    return [("forward", forward, FORWARD_GFLOP), ("train_sgd", train_sgd, TRAIN_GFLOP)]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"cpu_capability={torch.backends.cpu.get_cpu_capability()}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        runs = cases()
        times = {name: [] for name, _, _ in runs}
        for _, fn, _ in runs:
            for _ in range(3):
                fn()
        for _ in range(rounds):
            for name, fn, _ in runs:
                for _ in range(5):
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
        for name, _, gflop in runs:
            median = statistics.median(times[name])
            print(f"T{threads} resnet18_b8_224 {name:9s} {1e3 * median:8.1f} ms  "
                  f"{BATCH / median:7.2f} images/s  {BATCH * gflop / median:6.1f} GFLOP/s  "
                  f"(min {1e3 * min(times[name]):.1f} ms, {len(times[name])} calls)", flush=True)


if __name__ == "__main__":
    main()
