"""Peer comparison: keel beside PyTorch, onnxruntime and numpy's OpenBLAS on the same work, in
one run on this machine, as one table of ratios.

    python3 benches/peers/compare.py [--rounds N] [--threads 1,2] [--isa native|avx2]
                                     [--only REGEX] [--out DIR] [--quick] [--wait-quiet S]

- Python packages: the script runs itself in a virtual environment OUTSIDE the repository,
  `$KEEL_PEERS_VENV` (default `~/.cache/keel/peers-venv`), made on first use with
  `pip install torch onnx onnxruntime numpy threadpoolctl` from PyPI (torch brings about 3 GB
  of GPU libraries it does not use on a CPU; they do no harm). An existing environment with
  those packages serves as well: `KEEL_PEERS_VENV=/path/to/venv python3 benches/peers/compare.py`.
- keel: it builds `cargo build --release --example peer_timings` (`examples/peer_timings.rs`),
  whose `--list` is the catalogue of work items (ids and shapes) every contender runs.
- Rounds: in each round, for each thread count, it runs keel, PyTorch, onnxruntime and numpy
  one after the other, each in its own process (so thread settings stick), each timing all of
  its items once; the order rotates from round to round. A busy minute of a shared machine so
  lands on every contender of a round, and the ratio of a round pairs figures taken minutes
  apart at most. keel's run also measures the yardsticks: the FMA peak (a register-only loop,
  one per thread, on the widest instruction set keel may use) and the copy bandwidth.
- `--isa avx2` holds every contender to AVX2 on an AVX-512 CPU: `KEEL_ISA=avx2` for keel,
  `ATEN_CPU_CAPABILITY=avx2`, `ONEDNN_MAX_CPU_ISA=AVX2`, `MKL_ENABLE_INSTRUCTIONS=AVX2` for
  PyTorch, `OPENBLAS_CORETYPE=Haswell` for numpy's OpenBLAS; onnxruntime's MLAS has no such
  switch: the table says so and leaves it out of the best-peer column (its figures stay in
  the table of every contender), as it says which instruction set each library reported.
  `--isa native` (default) clears all of these, so each library picks for itself.
- `--only REGEX` keeps the work ids it matches (`--only 'conv|sgemm_256'`; `peer_timings --list`
  lists them); the yardsticks always run. `--quick`: one round, short timings, a few items
  (with `--only`, those of them it matches), to check the set-up end to end in a minute or
  two. `--wait-quiet S`: before each contender's process, wait up to S seconds for other
  processes to leave the cores (on a shared machine). `--render DIR`: write DIR/table.md
  again from DIR/raw.jsonl.
- Output, in `--out` (default `target/peers/<date>-<commit>/`): `raw.jsonl`, every
  measurement (one JSON line each: round, threads, contender, work, median/min/max seconds,
  reps, and `foreign`, the cores other processes used meanwhile), and `table.md`, printed too.

Reading the table: a row per work item; per thread count, keel's median time, the best peer's
(the peer with the lowest median over rounds, named), the ratio = the median over rounds of
(best peer's time / keel's time) in the same round, > 1 where keel is faster, with its
min-max over rounds, and keel's share of the FMA peak for work that counts FLOPs.
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PACKAGES = ["torch", "onnx", "onnxruntime", "numpy", "threadpoolctl"]
PEERS = ["pytorch", "onnxruntime", "numpy"]
CONTENDERS = ["keel"] + PEERS
YARDSTICKS = ["fma_peak", "copy_bw"]
QUICK_ITEMS = ["conv_A_fwd", "conv_B_fwd_bwd", "lenet5_b64_infer", "mlp_784_256_128_10_b128_train",
               "sgemm_256x256x256", "sgemm_64x128x784"]
TIMING = dict(warmup_seconds=0.15, rep_seconds=2e-3, total_seconds=0.5, min_reps=20)
QUICK_TIMING = dict(warmup_seconds=0.0, rep_seconds=1e-3, total_seconds=0.02, min_reps=3)
# The variables through which the peers' instruction sets are chosen, and their AVX2 values.
AVX2_ENV = {"KEEL_ISA": "avx2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell"}
NATIVE_UNSET = list(AVX2_ENV) + ["OPENBLAS_L2_SIZE", "DNNL_MAX_CPU_ISA", "MKL_DEBUG_CPU_TYPE"]
THREAD_VARIABLES = ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"]


# ---------------------------------------------------------------- set-up

def ensure_venv():
    """Re-executes this script in the peers' virtual environment, making it first if missing."""
    venv = Path(os.environ.get("KEEL_PEERS_VENV", Path.home() / ".cache" / "keel" / "peers-venv"))
    python = venv / "bin" / "python"
    if Path(sys.prefix).resolve() == venv.resolve():
        missing = [p for p in PACKAGES if not _has_module(p)]
        if missing:
            print(f"[compare] installing {' '.join(missing)} into {venv}", flush=True)
            subprocess.check_call([str(python), "-m", "pip", "install", *missing])
        return
    if venv.resolve().is_relative_to(REPO):
        sys.exit(f"KEEL_PEERS_VENV={venv} lies inside the repository; choose a folder outside it")
    if not python.exists():
        print(f"[compare] making the peers' environment {venv} (pip install {' '.join(PACKAGES)})", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call([str(python), "-m", "pip", "install", *PACKAGES])
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def _has_module(package):
    import importlib.util
    return importlib.util.find_spec(package) is not None


def build_keel():
    """Builds examples/peer_timings.rs and returns its executable's path."""
    print("[compare] cargo build --release --example peer_timings", flush=True)
    out = subprocess.run(["cargo", "build", "--release", "--example", "peer_timings",
                          "--message-format=json-render-diagnostics"],
                         cwd=REPO, stdout=subprocess.PIPE, text=True, check=True).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("target", {}).get("name") == "peer_timings":
            return message["executable"]
    sys.exit("cargo built no peer_timings executable")


def git(*args):
    return subprocess.run(["git", *args], cwd=REPO, stdout=subprocess.PIPE, text=True).stdout.strip()


def keel_commit():
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + "-dirty" if git("status", "--porcelain", "--untracked-files=no") else commit


def cpu_description():
    """The CPU's model name, family/model and vector extensions (from /proc/cpuinfo)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    vector = ", ".join(f for f in ("avx512f", "avx2", "fma") if f in flags) or "no AVX2"
    return (f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, "
            f"model {fields.get('model', '?')}; {vector}; {os.cpu_count()} logical CPUs)")


# ---------------------------------------------------------------- measuring

def _busy_seconds():
    """CPU seconds all processes have used (from /proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / os.sysconf("SC_CLK_TCK")


def _children_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_quiet(max_wait, threshold=0.15):
    """Waits, up to `max_wait` seconds, until other processes use under `threshold` cores
    (sampled over half a second); returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        busy0, self0 = _busy_seconds(), time.process_time()
        time.sleep(0.5)
        busy1, self1 = _busy_seconds(), time.process_time()
        if busy0 is None or (busy1 - busy0) - (self1 - self0) < threshold * 0.5:
            break
    return round(time.perf_counter() - start, 1)


def run_contender(command, env):
    """Runs one contender's process; returns its JSON lines and the cores other processes
    used meanwhile (`foreign`: the machine's busy time less the child's, per wall second; a
    VM's steal time, the host giving the cores to other guests, counts as busy)."""
    busy0, child0, wall0 = _busy_seconds(), _children_seconds(), time.perf_counter()
    proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    busy1, child1, wall1 = _busy_seconds(), _children_seconds(), time.perf_counter()
    foreign = None
    if busy0 is not None:
        foreign = round(max(0.0, ((busy1 - busy0) - (child1 - child0)) / (wall1 - wall0)), 3)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    error = None
    if proc.returncode != 0:
        error = f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"
    return lines, foreign, error


def contender_env(isa, threads):
    env = dict(os.environ)
    for name in NATIVE_UNSET:
        env.pop(name, None)
    if isa == "avx2":
        env.update(AVX2_ENV)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env


def contender_command(contender, keel_bin, work_file, ids, threads, timing):
    if contender == "keel":
        # The run's timing rule as peer_timings's flags (--warmup-seconds 0.15 ...).
        flags = [part for key, value in timing.items() for part in (f"--{key.replace('_', '-')}", str(value))]
        return [keel_bin, "--threads", str(threads), *flags, *ids]
    return [sys.executable, str(HERE / "peer_worker.py"), contender, "--threads", str(threads),
            "--work", str(work_file), "--timing", json.dumps(timing)]


# ---------------------------------------------------------------- the table

def fmt_time(seconds):
    if seconds is None:
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def yardstick_rates(records, threads):
    """keel's yardsticks at `threads` threads, one rate per round: FMA peak in GFLOP/s, copy in
    GB/s, and the instruction set of the FMA loop."""
    keel = [r for r in records if r.get("contender") == "keel" and r.get("threads") == threads
            and r.get("median_s")]
    fma = [r for r in keel if r["work"] == "fma_peak" and r.get("flops")]
    return dict(fma=sorted(r["flops"] / r["median_s"] / 1e9 for r in fma),
                copy=sorted(r["bytes"] / r["median_s"] / 1e9 for r in keel if r["work"] == "copy_bw"),
                isa=fma[0]["isa"] if fma else None)


def summarise(records, items, threads_list, eligible):
    """Per (work, threads): keel's and each peer's per-round medians, the best of the `eligible`
    peers, the paired ratios and keel's share of the FMA peak."""
    times = {}  # (work, threads, contender) -> {round: median_s}
    flops = {}
    for r in records:
        if "work" in r and r.get("median_s") is not None:
            times.setdefault((r["work"], r["threads"], r["contender"]), {})[r["round"]] = r["median_s"]
            if r.get("flops"):
                flops[(r["work"], r["threads"])] = r["flops"]
    # The machine's limit is the best FMA rate of the run: company on the cores only lowers it.
    peak = {t: max(yardstick_rates(records, t)["fma"], default=None) for t in threads_list}
    rows = []
    for item in items:
        if item["work"] in YARDSTICKS:
            continue
        row = dict(item=item, cells={})
        for t in threads_list:
            keel = times.get((item["work"], t, "keel"), {})
            peers = {p: times[(item["work"], t, p)] for p in PEERS if (item["work"], t, p) in times}
            cell = dict(keel=median_or_none(keel.values()), peers={p: statistics.median(v.values())
                                                                    for p, v in peers.items()})
            candidates = [p for p in cell["peers"] if p in eligible]
            if candidates:
                best = min(candidates, key=cell["peers"].get)
                ratios = [peers[best][rnd] / keel[rnd] for rnd in peers[best] if rnd in keel]
                cell.update(best=best, ratio=median_or_none(ratios),
                            spread=(min(ratios), max(ratios)) if ratios else None)
            f = flops.get((item["work"], t))
            if f and cell["keel"] and peak.get(t):
                cell["peak_share"] = f / cell["keel"] / 1e9 / peak[t]
            row["cells"][t] = cell
        rows.append(row)
    return rows


def yardstick_line(records, threads_list):
    """The FMA peak and copy bandwidth per thread count: medians, and ranges over rounds."""
    def spread(rates, digits):
        return f", {rates[0]:.{digits}f}-{rates[-1]:.{digits}f} over rounds" if len(rates) > 1 else ""
    parts = []
    for t in threads_list:
        y = yardstick_rates(records, t)
        if y["fma"]:
            text = (f"T{t}: FMA peak {y['fma'][-1]:.0f} GFLOP/s at best ({y['isa']}; median "
                    f"{statistics.median(y['fma']):.0f}{spread(y['fma'], 0)})")
        else:
            text = f"T{t}: FMA peak – (no vector FMA loop for keel's instruction set)"
        if y["copy"]:
            text += f", copy {statistics.median(y['copy']):.1f} GB/s (median{spread(y['copy'], 1)})"
        parts.append(text)
    return "; ".join(parts)


def held_to_avx2(infos, cpu_avx512):
    """In an `--isa avx2` run, whether each contender ran at AVX2 at most, from what its
    libraries reported: True, False, or True for all where the CPU has no AVX-512 anyway."""
    if not cpu_avx512:
        return {c: True for c in CONTENDERS}
    t = infos.get("pytorch", {})
    onednn = str(t.get("onednn_conv"))
    return {
        "keel": infos.get("keel", {}).get("isa") == "avx2",
        "pytorch": (str(t.get("cpu_capability")).upper() == "AVX2" and "avx2" in onednn
                    and "avx512" not in onednn and str(t.get("mkl_isa")) == "AVX2"),
        # MLAS picks its kernels from CPUID, with no switch to hold it.
        "onnxruntime": False,
        "numpy": str(infos.get("numpy", {}).get("architecture")).lower() in ("haswell", "zen"),
    }


def peer_versions(infos, held):
    """One line per library: versions and what it reported about its instruction set, and in
    an avx2 run (`held` not None) whether it was held to AVX2."""
    def mark(contender, why_not=""):
        if held is None:
            return ""
        return " (held to AVX2)" if held[contender] else f" (NOT held to AVX2{why_not})"

    lines = []
    keel = infos.get("keel", {})
    lines.append(f"- keel: commit {keel.get('commit')}, instruction set {keel.get('isa', '?')}{mark('keel')}")
    t = infos.get("pytorch")
    if t:
        lines.append(f"- PyTorch {t.get('version')}: ATen {t.get('cpu_capability')}; oneDNN {t.get('onednn')} "
                     f"(CPU {t.get('onednn_isa')}, convolution {t.get('onednn_conv')}); {t.get('mkl')} "
                     f"({t.get('mkl_isa')}){mark('pytorch')}")
    o = infos.get("onnxruntime")
    if o:
        lines.append(f"- onnxruntime {o.get('version')}: {o.get('isa')}"
                     f"{mark('onnxruntime', ': MLAS has no switch; left out of the best-peer column')}")
    n = infos.get("numpy")
    if n:
        lines.append(f"- numpy {n.get('version')}: {n.get('blas')} {n.get('blas_version')}, "
                     f"kernel {n.get('architecture')}{mark('numpy')}")
    return lines


def foreign_by_round(records, threads_list):
    """The most cores other processes used during any contender's run, per round and thread
    count ("r1 T1 0.05, r1 T2 1.20, ...")."""
    worst = {}
    for r in records:
        if r.get("kind") == "process" and r.get("foreign") is not None:
            key = (r["round"], r["threads"])
            worst[key] = max(worst.get(key, 0.0), r["foreign"])
    return ", ".join(f"r{rnd + 1} T{t} {worst[(rnd, t)]:.2f}" for rnd, t in sorted(worst))


def markdown_table(header, rows):
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def render_table(run, records, infos):
    """table.md from a run's records: `run` is its `run` record, `infos` the libraries'."""
    items, threads_list, timing, cpu = run["items"], run["threads"], run["timing"], run["cpu"]
    held = held_to_avx2(infos, "avx512f" in cpu) if run["isa_mode"] == "avx2" else None
    # An avx2 run compares keel with the peers held to AVX2 only.
    eligible = [p for p in PEERS if held is None or held[p]]
    rows = summarise(records, items, threads_list, eligible)
    foreign = [r["foreign"] for r in records if r.get("kind") == "process" and r.get("foreign") is not None]
    out = [f"# keel vs peers: {cpu}", ""]
    out.append(f"{run['date']}, keel {run['commit']}, `--isa {run['isa_mode']}`, "
               f"{run['rounds']} round(s), threads {','.join(map(str, threads_list))}"
               + (", --quick" if run.get("quick") else "") + (f", --only {run['only']!r}" if run.get("only") else ""))
    out.append("")
    out += peer_versions(infos, held)
    out.append("")
    out.append(f"Yardsticks of this run: {yardstick_line(records, threads_list)}.")
    if foreign:
        out.append(f"Other processes used {statistics.median(foreign):.2f} cores (median over the "
                   f"contenders' runs; max {max(foreign):.2f}) while these ran; the most in each round "
                   f"and thread count: {foreign_by_round(records, threads_list)}.")
    out.append(f"Timing: warm-up {timing['warmup_seconds']} s, repetitions of >= {timing['rep_seconds'] * 1e3:g} ms, "
               f">= {timing['min_reps']} of them and ~{timing['total_seconds']} s per item; medians.")
    out.append("")
    out.append("ratio = median over rounds of (best peer's time / keel's time) in the same round, with its "
               "min-max over rounds: > 1 where keel is faster. % peak = keel's FLOP/s (median time) over the "
               "best FMA peak of the run at the same thread count.")
    out.append("")
    header = ["work"]
    for t in threads_list:
        header += [f"keel T{t}", f"best peer T{t}", f"ratio T{t}", f"% peak T{t}"]
    lines = []
    for row in rows:
        cells = [row["item"]["what"]]
        for t in threads_list:
            c = row["cells"][t]
            best = f"{fmt_time(c['peers'][c['best']])} ({c['best']})" if c.get("best") else "–"
            ratio = "–"
            if c.get("ratio") is not None:
                lo, hi = c["spread"]
                ratio = f"**{c['ratio']:.2f}x**" + (f" ({lo:.2f}-{hi:.2f})" if run["rounds"] > 1 else "")
            share = f"{c['peak_share'] * 100:.0f}%" if c.get("peak_share") else "–"
            cells += [fmt_time(c["keel"]), best, ratio, share]
        lines.append(cells)
    out += markdown_table(header, lines)
    out.append("")
    out.append("Every contender's median time (over rounds):")
    out.append("")
    header = ["work"] + [f"{c} T{t}" for t in threads_list for c in CONTENDERS]
    lines = [[row["item"]["work"]] + [fmt_time(v) for t in threads_list
                                      for v in [row["cells"][t]["keel"]] + [row["cells"][t]["peers"].get(p) for p in PEERS]]
             for row in rows]
    out += markdown_table(header, lines)
    errors = [r for r in records if r.get("error")]
    if errors:
        out.append("")
        out.append("Failures:")
        for r in errors:
            out.append(f"- round {r['round']} T{r['threads']} {r['contender']}: {r['error'][:300]}")
    return "\n".join(out) + "\n"


def write_table(out_dir, run, records, infos):
    table = render_table(run, records, infos)
    (out_dir / "table.md").write_text(table)
    print()
    print(table)


def render_again(out_dir):
    """Rewrites out_dir/table.md from out_dir/raw.jsonl (the items' descriptions from the run
    record, or from work.jsonl beside it for runs that recorded ids only)."""
    records = [json.loads(line) for line in (out_dir / "raw.jsonl").read_text().splitlines() if line.strip()]
    run = next(r for r in records if r.get("kind") == "run")
    if run["items"] and isinstance(run["items"][0], str):
        listing = (out_dir / "work.jsonl").read_text().splitlines()
        run = dict(run, items=[json.loads(line) for line in listing if line.strip()])
    infos = next((r for r in records if r.get("kind") == "libraries"), {})
    write_table(out_dir, run, records, infos)


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}" if (os.cpu_count() or 1) > 1 else "1",
                        help="thread counts, comma-separated (default 1 and every logical CPU)")
    parser.add_argument("--isa", choices=["native", "avx2"], default="native")
    parser.add_argument("--only", help="keep the work ids this regular expression finds")
    parser.add_argument("--out", help="output folder (default target/peers/<date>-<commit>/)")
    parser.add_argument("--quick", action="store_true", help="one round, short timings, a few items")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each contender's run, wait up to this long for other processes to "
                             "go quiet (default 0: do not wait)")
    parser.add_argument("--render", metavar="DIR", help="only write DIR/table.md again from DIR/raw.jsonl")
    args = parser.parse_args()
    if args.render:
        return render_again(Path(args.render))
    ensure_venv()
    threads_list = sorted({int(t) for t in args.threads.split(",")})
    if args.quick:
        args.rounds = 1
    timing = QUICK_TIMING if args.quick else TIMING

    keel_bin = build_keel()
    listing = subprocess.run([keel_bin, "--list"], stdout=subprocess.PIPE, text=True, check=True).stdout
    items = [json.loads(line) for line in listing.splitlines() if line.strip()]
    if args.quick:
        items = [i for i in items if i["work"] in QUICK_ITEMS + YARDSTICKS]
    if args.only:
        items = [i for i in items if re.search(args.only, i["work"]) or i["work"] in YARDSTICKS]
    ids = [i["work"] for i in items]
    if set(ids) <= set(YARDSTICKS):
        sys.exit("no work item left (--quick keeps " + " ".join(QUICK_ITEMS) + "; --only filters what remains); "
                 "the ids: " + " ".join(json.loads(line)["work"] for line in listing.splitlines() if line.strip()))

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    commit = keel_commit()
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    out_dir = Path(args.out) if args.out else target / "peers" / f"{date}-{commit}"
    out_dir.mkdir(parents=True, exist_ok=True)
    work_file = out_dir / "work.jsonl"
    work_file.write_text("".join(json.dumps(i) + "\n" for i in items))
    cpu = cpu_description()
    print(f"[compare] {cpu}; keel {commit}; --isa {args.isa}; {len(items)} items; out {out_dir}", flush=True)

    records = []
    infos = {"keel": {"commit": commit}}
    with open(out_dir / "raw.jsonl", "w") as raw:
        def record(rec):
            records.append(rec)
            raw.write(json.dumps(rec) + "\n")
            raw.flush()

        run = dict(kind="run", date=date, commit=commit, cpu=cpu, isa_mode=args.isa, rounds=args.rounds,
                   threads=threads_list, timing=timing, quick=args.quick, only=args.only, items=items,
                   argv=sys.argv[1:])
        record(run)
        for rnd in range(args.rounds):
            for t in threads_list:
                env = contender_env(args.isa, t)
                # The order rotates so that no contender always runs first (or last) in a round.
                order = CONTENDERS[rnd % len(CONTENDERS):] + CONTENDERS[:rnd % len(CONTENDERS)]
                for contender in order:
                    waited = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else 0
                    start = time.perf_counter()
                    command = contender_command(contender, keel_bin, work_file, ids, t, timing)
                    lines, foreign, error = run_contender(command, env)
                    for line in lines:
                        if "info" in line:
                            infos.setdefault(contender, {}).update(line["info"])
                            continue
                        if contender == "keel":
                            infos["keel"]["isa"] = line.get("isa")
                        record(dict(line, kind="measurement", round=rnd, threads=t, contender=contender))
                    record(dict(kind="process", round=rnd, threads=t, contender=contender, foreign=foreign,
                                seconds=round(time.perf_counter() - start, 1), waited=waited, error=error))
                    print(f"[compare] round {rnd + 1}/{args.rounds} T{t} {contender:11s} "
                          f"{len(lines):3d} lines in {time.perf_counter() - start:6.1f} s, foreign load "
                          f"{foreign}" + (f" (waited {waited} s)" if waited else "") + (f"  FAILED {error[:200]}" if error else ""), flush=True)
        record(dict(kind="libraries", **infos))
    write_table(out_dir, run, records, infos)
    print(f"[compare] wrote {out_dir / 'table.md'} and {out_dir / 'raw.jsonl'}")


if __name__ == "__main__":
    main()
