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
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
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


def run_once(cmd, epochs, data):
    full = cmd + ["--epochs", str(epochs), "--no-eval", "--json"]
    if data is not None:
        full += ["--data", str(data)]
    out = subprocess.run(full, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [r for r in rows if "epoch" in r]


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
    args = p.parse_args()

    configs = {k: PEERS[k] for k in (PEERS if args.only is None else args.only)}
    for spec in args.extra:
        name, _, command = spec.partition("=")
        configs[name] = shlex.split(command)
    seconds = {k: [] for k in configs}
    per_step = {k: [] for k in configs}
    cpu = {k: [] for k in configs}
    rss = {k: 0.0 for k in configs}
    busy_runs = {k: 0 for k in configs}

    for r in range(args.rounds):
        for name, cmd in configs.items():
            quiet = wait_quiet(args.quiet_wait)
            busy_runs[name] += not quiet
            rows = run_once(cmd, args.epochs, args.data)
            seconds[name] += [row["seconds"] for row in rows[1:]]
            per_step[name] += [row["seconds_per_step"] for row in rows[1:] if "seconds_per_step" in row]
            cpu[name] += [row.get("cpu_seconds", float("nan")) for row in rows[1:]]
            if args.log:
                with open(args.log, "a") as f:
                    for row in rows:
                        f.write(json.dumps({"config": name, "round": r + 1, "quiet": quiet,
                                            **row}) + "\n")
            rss[name] = max(rss[name], rows[-1]["peak_rss_mib"])
            print(f"round {r + 1}/{args.rounds} {name}: "
                  f"{statistics.median(row['seconds'] for row in rows[1:]):.3f} s/epoch",
                  file=sys.stderr, flush=True)

    base = args.baseline or next(iter(configs))
    base_median = statistics.median(seconds[base])
    print(f"| config | s/epoch (median) | ms/step | min | max | CPU s/epoch | epochs | peak RSS MiB "
          f"| vs {base} | busy runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in configs:
        s = seconds[name]
        m = statistics.median(s)
        step = f"{1e3 * statistics.median(per_step[name]):.3f}" if per_step[name] else "-"
        print(f"| {name} | {m:.3f} | {step} | {min(s):.3f} | {max(s):.3f} | "
              f"{statistics.median(cpu[name]):.3f} | {len(s)} | {rss[name]:.0f} | "
              f"{m / base_median:.2f} | {busy_runs[name]}/{args.rounds} |")


if __name__ == "__main__":
    main()
