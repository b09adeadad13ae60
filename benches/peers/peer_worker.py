"""One peer's side of `compare.py`: times PyTorch, onnxruntime or numpy's OpenBLAS on keel's
work items at one thread count and prints one JSON line per item (after one `info` line
with the peer's versions and the instruction sets its libraries run on).

    python peer_worker.py {pytorch,onnxruntime,numpy} --threads T --work WORK.jsonl [--timing JSON]

WORK.jsonl is `peer_timings --list` output (keel's catalogue: ids and shapes); items a peer
has no counterpart for are skipped (onnxruntime runs inference graphs only, numpy SGEMM
only). `compare.py` starts one worker per peer, round and thread count, with the thread
variables (OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS) and the instruction-set
variables already in its environment, so the libraries size their pools and pick their
kernels before this script imports them.

Timing is keel's rule (`examples/peer_timings.rs`): warm-up, then repetitions of `inner`
back-to-back calls lasting at least `rep_seconds`, at least `min_reps` of them and about
`total_seconds` in all; median, min and max per call.
"""
import argparse
import contextlib
import ctypes
import json
import os
import re
import statistics
import sys
import tempfile
import time

# The default rule, the same as peer_timings.rs's; compare.py passes the run's rule.
TIMING = dict(warmup_seconds=0.15, rep_seconds=2e-3, total_seconds=0.5, min_reps=20)


def measure(fn, timing):
    """Per-call seconds of `fn` under `timing`: median, min, max, reps and inner."""
    start = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - start < timing["warmup_seconds"]:
        fn()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    inner = max(1, -int(-timing["rep_seconds"] // per_call))
    reps = max(timing["min_reps"], int(timing["total_seconds"] / (per_call * inner)))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) / inner)
    times.sort()
    return dict(median_s=statistics.median(times), min_s=times[0], max_s=times[-1], reps=reps, inner=inner)


def emit(record):
    print(json.dumps(record), flush=True)


@contextlib.contextmanager
def captured_stdout():
    """Collects what C libraries print on file descriptor 1 meanwhile (verbose modes)."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        text = []
        try:
            yield text
        finally:
            # C's stdout is fully buffered on a file: flush it before fd 1 goes back.
            libc.fflush(None)
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))


def conv_out(item):
    return item["h"] + 2 * item["pad"] - item["k"] + 1, item["w"] + 2 * item["pad"] - item["k"] + 1


# ---------------------------------------------------------------- PyTorch

def torch_models():
    """keel's networks (`benches/common/networks.rs`) in PyTorch, by name prefix."""
    import torch.nn as nn
    import torch.nn.functional as F

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 5, padding=2)
            self.c2 = nn.Conv2d(6, 16, 5)
            self.f1 = nn.Linear(400, 120)
            self.f2 = nn.Linear(120, 84)
            self.f3 = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c1(x)), 2, 2)
            x = F.max_pool2d(F.relu(self.c2(x)), 2, 2)
            x = x.flatten(1)
            return self.f3(F.relu(self.f2(F.relu(self.f1(x)))))

    def mlp():
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))

    return {"lenet5": LeNet5, "mlp_784_256_128_10": mlp}


def network_model(item, models):
    return next(ctor for prefix, ctor in models.items() if item["network"].startswith(prefix))


def torch_info(torch):
    """Versions, and the instruction sets ATen, oneDNN (a convolution's kernel) and MKL (an
    SGEMM's) report in this process, from their verbose modes."""
    dnnl = re.search(r"MKL-DNN v([0-9.]+)", torch.__config__.show())
    info = dict(version=torch.__version__, onednn=dnnl.group(1) if dnnl else None,
                cpu_capability=torch.backends.cpu.get_cpu_capability())
    # Large enough for PyTorch to pick oneDNN for it.
    x, w = torch.randn(4, 16, 32, 32), torch.randn(16, 16, 3, 3)
    with captured_stdout() as text, torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
        torch.nn.functional.conv2d(x, w, padding=1)
    isa = re.search(r"isa:([^,\n]+)", text[0])
    kernel = re.search(r",convolution,([^,]+),", text[0])
    info["onednn_isa"] = isa.group(1).strip() if isa else None
    info["onednn_conv"] = kernel.group(1) if kernel else None
    a = torch.randn(64, 64)
    with captured_stdout() as text, torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
        torch.mm(a, a)
    mkl = re.search(r"MKL_VERBOSE (.*?MKL [0-9.]+(?: Update [0-9]+)?)", text[0])
    mkl_isa = re.search(r"\(Intel\(R\) (AVX[^)]*)\)", text[0])
    info["mkl"] = mkl.group(1) if mkl else None
    info["mkl_isa"] = mkl_isa.group(1) if mkl_isa else None
    return info


def run_pytorch(items, threads, timing):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    emit(dict(info=torch_info(torch)))
    models = torch_models()
    for item in items:
        torch.manual_seed(0)
        kind = item["kind"]
        if kind == "conv":
            p = item["pad"]
            ho, wo = conv_out(item)
            variants = {}
            for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
                x = torch.randn(item["n"], item["c_in"], item["h"], item["w"]).to(memory_format=fmt)
                w = (torch.randn(item["c_out"], item["c_in"], item["k"], item["k"]) * 0.1).to(memory_format=fmt)
                b = torch.randn(item["c_out"])
                if item["backward"]:
                    gy = torch.randn(item["n"], item["c_out"], ho, wo).to(memory_format=fmt)
                    xg, wg, bg = (t.clone().requires_grad_() for t in (x, w, b))

                    def call():
                        y = F.conv2d(xg, wg, bg, padding=p)
                        return torch.autograd.grad(y, (xg, wg, bg), gy)
                else:
                    def call():
                        with torch.no_grad():
                            return F.conv2d(x, w, b, padding=p)
                variants[layout] = measure(call, timing)
            # PyTorch's best layout for the shape, as a user who tried both would pick.
            layout = min(variants, key=lambda v: variants[v]["median_s"])
            emit(dict(work=item["work"], variant=layout, **variants[layout],
                      variants={v: r["median_s"] for v, r in variants.items()}))
        elif kind == "network":
            model = network_model(item, models)()
            x = torch.randn(*item["input"])
            if item["train"]:
                y = torch.randint(0, 10, (item["input"][0],))
                adam = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

                def call():
                    adam.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x), y).backward()
                    adam.step()
            else:
                model.eval()

                def call():
                    with torch.inference_mode():
                        return model(x)
            emit(dict(work=item["work"], variant="fused Adam" if item["train"] else "inference_mode",
                      **measure(call, timing)))
        elif kind == "sgemm":
            m, n, k = item["m"], item["n"], item["k"]
            a, b, c = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
            emit(dict(work=item["work"], variant="torch.mm (MKL)",
                      **measure(lambda: torch.mm(a, b, out=c), timing)))


# ---------------------------------------------------------------- onnxruntime

def ort_graphs(items):
    """(item, model bytes, feed, reference output) for the items onnxruntime runs: inference
    graphs built with onnx.helper, their weights and reference outputs from PyTorch."""
    import numpy as np
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import TensorProto, helper, numpy_helper

    torch.set_num_threads(1)  # only the references run in PyTorch, before any timing

    def model_bytes(nodes, x_shape, y_shape, inits):
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))],
            initializer=[numpy_helper.from_array(np.ascontiguousarray(v.detach().numpy()), k)
                         for k, v in inits.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model.SerializeToString()

    def dense_nodes(names, source):
        """Gemm nodes for dense layers `names` (weights `<name>w`, biases `<name>b`), a Relu
        after each but the last, which writes `y`."""
        nodes = []
        for name in names[:-1]:
            nodes.append(helper.make_node("Gemm", [source, f"{name}w", f"{name}b"], [f"{name}_pre"], transB=1))
            nodes.append(helper.make_node("Relu", [f"{name}_pre"], [f"{name}_out"]))
            source = f"{name}_out"
        last = names[-1]
        return nodes + [helper.make_node("Gemm", [source, f"{last}w", f"{last}b"], ["y"], transB=1)]

    models = torch_models()
    graphs = []
    for item in items:
        torch.manual_seed(0)
        if item["kind"] == "conv" and not item["backward"]:
            p, k = item["pad"], item["k"]
            x = torch.randn(item["n"], item["c_in"], item["h"], item["w"])
            w = torch.randn(item["c_out"], item["c_in"], k, k) * 0.1
            b = torch.randn(item["c_out"])
            ref = F.conv2d(x, w, b, padding=p)
            nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k], pads=[p] * 4)]
            graphs.append((item, model_bytes(nodes, x.shape, ref.shape, {"w": w, "b": b}), x, ref))
        elif item["kind"] == "network" and not item["train"]:
            model = network_model(item, models)().eval()
            x = torch.randn(*item["input"])
            with torch.no_grad():
                ref = model(x)
            params = dict(model.named_parameters())
            if item["network"].startswith("lenet5"):
                inits = {f"{layer}{kind[0]}": params[f"{layer}.{kind}"]
                         for layer in ("c1", "c2", "f1", "f2", "f3") for kind in ("weight", "bias")}
                node = helper.make_node
                nodes = [
                    node("Conv", ["x", "c1w", "c1b"], ["a1"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
                    node("Relu", ["a1"], ["r1"]),
                    node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
                    node("Conv", ["p1", "c2w", "c2b"], ["a2"], kernel_shape=[5, 5]),
                    node("Relu", ["a2"], ["r2"]),
                    node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
                    node("Flatten", ["p2"], ["flat"], axis=1),
                ] + dense_nodes(["f1", "f2", "f3"], "flat")
            else:
                # nn.Sequential's Linear layers are 0, 2 and 4.
                inits = {f"l{i}{kind[0]}": params[f"{i}.{kind}"] for i in (0, 2, 4) for kind in ("weight", "bias")}
                nodes = dense_nodes(["l0", "l2", "l4"], "x")
            graphs.append((item, model_bytes(nodes, x.shape, ref.shape, inits), x, ref))
    return graphs


def run_onnxruntime(items, threads, timing):
    import numpy as np
    import onnxruntime as ort

    graphs = ort_graphs(items)
    emit(dict(info=dict(version=ort.__version__, isa="MLAS, kernels picked from CPUID")))
    for item, model, x, ref in graphs:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        out = session.run(None, feed)[0]
        ref = ref.numpy()
        relerr = float(np.max(np.abs(out - ref)) / (np.max(np.abs(ref)) + 1e-12))
        emit(dict(work=item["work"], variant="CPUExecutionProvider", relerr_vs_torch=relerr,
                  **measure(lambda: session.run(None, feed), timing)))


# ---------------------------------------------------------------- numpy (OpenBLAS)

def run_numpy(items, threads, timing):
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    blas = [d for d in threadpool_info() if d.get("user_api") == "blas"]
    info = dict(version=np.__version__)
    if blas:
        info.update(blas=blas[0].get("internal_api"), blas_version=blas[0].get("version"),
                    architecture=blas[0].get("architecture"))
    emit(dict(info=info))
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=threads, user_api="blas"):
        for item in items:
            if item["kind"] != "sgemm":
                continue
            m, n, k = item["m"], item["n"], item["k"]
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            c = np.empty((m, n), dtype=np.float32)
            emit(dict(work=item["work"], variant="np.matmul",
                      **measure(lambda: np.matmul(a, b, out=c), timing)))


PEERS = {"pytorch": run_pytorch, "onnxruntime": run_onnxruntime, "numpy": run_numpy}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--work", required=True, help="keel's catalogue (peer_timings --list)")
    parser.add_argument("--timing", default=json.dumps(TIMING), help="the timing rule, as JSON")
    args = parser.parse_args()
    with open(args.work) as f:
        items = [json.loads(line) for line in f if line.strip()]
    PEERS[args.peer](items, args.threads, dict(TIMING, **json.loads(args.timing)))


if __name__ == "__main__":
    main()
