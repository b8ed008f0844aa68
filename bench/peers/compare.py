#!/usr/bin/python3
"""Runs the peer benchmarks alternately (A B C A B C ...) and prints a table of medians.

Each run is a fresh process training --epochs epochs without evaluation; its first epoch is
a warm-up and is dropped, the rest are pooled per configuration. Alternating spreads any
slow phase of the machine over all configurations instead of one. Before each run the
script waits (up to --quiet-wait seconds) for the CPUs to be idle, since two cores shared
with a compiler make any timing meaningless; runs that started on a busy machine are counted
in the table.

Any command that prints the same JSON lines as the peers (objects with "epoch", "seconds",
"cpu_seconds" and "peak_rss_mib") can join with --extra NAME=COMMAND, e.g. chainrule's own benchmark.

Every run gets the same OpenBLAS kernels: OPENBLAS_CORETYPE (and, for chainrule,
CHAINRULE_BLAS_KERNEL) is set to the kernel chainrule runs with on this machine, as
build/bench/mnist_epoch --print-blas-kernel reports it, or to --blas-kernel. A run whose
header names other kernels ("openblas": {"corename": ...}) stops the comparison; one whose
header names none is warned about.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402  (reads no BLAS: only /proc/cpuinfo here)
PY = "/usr/bin/python3"

PEERS = {
    "numpy-f64": [PY, str(HERE / "lecture_numpy.py"), "--dtype", "float64", "--threads", "2"],
    "numpy-f32": [PY, str(HERE / "lecture_numpy.py"), "--dtype", "float32", "--threads", "2"],
    "torch-f32": [PY, str(HERE / "torch_mlp.py"), "--dtype", "float32", "--threads", "2",
                  "--blas-threads", "1"],
    "torch-f64": [PY, str(HERE / "torch_mlp.py"), "--dtype", "float64", "--threads", "2",
                  "--blas-threads", "1"],
    # models/mnist_cnn.json's net and recipe (batches of 100, 600 steps per epoch)
    "torch-cnn-f32": [PY, str(HERE / "torch_cnn.py"), "--dtype", "float32", "--threads", "2",
                      "--blas-threads", "1"],
}


def cpu_busy_fraction(interval=0.5):
    """Share of all CPU time spent outside idle/iowait over `interval` seconds."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(interval)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit, threshold=0.1):
    deadline = time.monotonic() + limit
    while True:
        busy = cpu_busy_fraction()
        if busy <= threshold or time.monotonic() >= deadline:
            return busy <= threshold
        time.sleep(2.0)


def chainrule_kernel(bench):
    """The OpenBLAS kernel chainrule's benchmark runs with here, after its own choice."""
    if not Path(bench).exists():
        sys.exit(f"compare.py: {bench} is missing: build chainrule first (ninja -C build), "
                 "or name the kernel with --blas-kernel")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "CHAINRULE_BLAS_CHOSEN")}
    return subprocess.run([str(bench), "--print-blas-kernel"], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def run_once(cmd, epochs, data, kernel):
    """The run's epoch rows, and the OpenBLAS kernel its header names (None if none)."""
    full = cmd + ["--epochs", str(epochs), "--no-eval", "--json"]
    if data is not None:
        full += ["--data", str(data)]
    env = dict(os.environ, OPENBLAS_CORETYPE=kernel, CHAINRULE_BLAS_KERNEL=kernel)
    env.pop("CHAINRULE_BLAS_CHOSEN", None)
    out = subprocess.run(full, check=True, capture_output=True, text=True, env=env).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    heads = [r["openblas"] for r in rows if "openblas" in r]
    corename = heads[0]["corename"] if heads and heads[0] else None
    return [r for r in rows if "epoch" in r], corename


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6, help="epochs per run, the first dropped")
    p.add_argument("--only", nargs="*", choices=sorted(PEERS),
                   help="a subset of the peers (none at all with --only alone)")
    p.add_argument("--extra", action="append", default=[], metavar="NAME=COMMAND",
                   help="another command printing the same JSON lines (it gets "
                        "--epochs N --no-eval --json appended)")
    p.add_argument("--baseline", default=None, help="the row the ratios are taken against")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="seconds to wait for idle CPUs before each run, then run anyway")
    p.add_argument("--log", type=Path, default=None,
                   help="append every run's epoch lines here (JSON), with its config and "
                        "whether the machine was quiet when it started")
    p.add_argument("--blas-kernel", default=None, metavar="NAME",
                   help="OpenBLAS kernels for every run (default: the ones chainrule chooses here)")
    p.add_argument("--bench", type=Path, default=ROOT / "build" / "bench" / "mnist_epoch",
                   help="chainrule's benchmark, asked for its kernel (default: build/bench/mnist_epoch)")
    p.add_argument("--allow-other-kernels", action="store_true",
                   help="only warn when a run names other OpenBLAS kernels than the rest")
    args = p.parse_args()
    kernel = args.blas_kernel or chainrule_kernel(args.bench)
    print(f"{common.cpu_model()}; OpenBLAS kernels for every run: {kernel}", file=sys.stderr, flush=True)

    configs = {k: PEERS[k] for k in (PEERS if args.only is None else args.only)}
    for spec in args.extra:
        name, _, command = spec.partition("=")
        configs[name] = shlex.split(command)
    seconds = {k: [] for k in configs}
    per_step = {k: [] for k in configs}
    cpu = {k: [] for k in configs}
    rss = {k: 0.0 for k in configs}
    busy_runs = {k: 0 for k in configs}
    corenames = {k: set() for k in configs}

    for r in range(args.rounds):
        for name, cmd in configs.items():
            quiet = wait_quiet(args.quiet_wait)
            busy_runs[name] += not quiet
            rows, corename = run_once(cmd, args.epochs, args.data, kernel)
            corenames[name].add(corename)
            if corename is None:
                print(f"WARNING: {name} names no OpenBLAS kernel in its header: whether it ran with "
                      f"{kernel} is not known", file=sys.stderr, flush=True)
            elif corename.lower() != kernel.lower():
                msg = (f"{name} ran with OpenBLAS kernels {corename}, not {kernel}: its time is not "
                       "comparable with the others'")
                if not args.allow_other_kernels:
                    sys.exit(f"compare.py: {msg} (--allow-other-kernels to go on)")
                print(f"WARNING: {msg}", file=sys.stderr, flush=True)
            seconds[name] += [row["seconds"] for row in rows[1:]]
            per_step[name] += [row["seconds_per_step"] for row in rows[1:] if "seconds_per_step" in row]
            cpu[name] += [row.get("cpu_seconds", float("nan")) for row in rows[1:]]
            if args.log:
                with open(args.log, "a") as f:
                    for row in rows:
                        f.write(json.dumps({"config": name, "round": r + 1, "quiet": quiet,
                                            "openblas_corename": corename, **row}) + "\n")
            rss[name] = max(rss[name], rows[-1]["peak_rss_mib"])
            print(f"round {r + 1}/{args.rounds} {name}: "
                  f"{statistics.median(row['seconds'] for row in rows[1:]):.3f} s/epoch",
                  file=sys.stderr, flush=True)

    base = args.baseline or next(iter(configs))
    base_median = statistics.median(seconds[base])
    print(f"{common.cpu_model()}, OpenBLAS {kernel} kernels for every run")
    print(f"| config | s/epoch (median) | ms/step | min | max | CPU s/epoch | epochs | peak RSS MiB "
          f"| vs {base} | busy runs | OpenBLAS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in configs:
        s = seconds[name]
        m = statistics.median(s)
        step = f"{1e3 * statistics.median(per_step[name]):.3f}" if per_step[name] else "-"
        print(f"| {name} | {m:.3f} | {step} | {min(s):.3f} | {max(s):.3f} | "
              f"{statistics.median(cpu[name]):.3f} | {len(s)} | {rss[name]:.0f} | "
              f"{m / base_median:.2f} | {busy_runs[name]}/{args.rounds} | "
              f"{', '.join(sorted(c or '-' for c in corenames[name]))} |")


if __name__ == "__main__":
    main()
