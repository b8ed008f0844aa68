"""`chainrule train` under mpirun (docs/distributed.md): the weights are the same bit for bit
for one process and for K = 2 and 4 with the same shards; a run stopped under one K resumes
under another exactly (also for sequences whose loss leaves padding out); bad input on any process ends every process with one message and exit
code 2; a process whose model or flags differ is refused the same way during setup; a killed
process ends the job, and the last checkpoint resumes.

Usage: test_mpi.py SOURCE_ROOT BUILD_ROOT [--without-mpi]
With --without-mpi (a binary built without MPI) it checks only that such a binary, started
as one of several processes, refuses. Every mpirun runs under a timeout."""

import atexit
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

SOURCE, BUILD = sys.argv[1], sys.argv[2]
CHAINRULE = os.path.join(BUILD, "cli", "chainrule")
TIMEOUT = 60  # seconds for one run; each takes well under 5
LONG_EPOCHS = 4000  # the run the signal checks stop: 2 s in a release build
NO_HANG = 20  # seconds within which a refused job ends on every process (a hang waits for TIMEOUT)
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OPENBLAS_NUM_THREADS="1")
# The environment of a chainrule started without mpirun: it never calls MPI_Init (train/
# distributed.cpp starts MPI only under a launcher), so it needs none of the settings below
# for OpenMPI's leaks and runs with the sanitizers' fast unwinder.
ENV_ALONE = dict(ENV)
if "ASAN_OPTIONS" in os.environ:  # scripts/sanitize
    # OpenMPI's leaks at MPI_Init, by library; its components are called through frames that
    # the fast unwinder loses, so the full unwinder finds the library on the stack.
    ENV["ASAN_OPTIONS"] += ":fast_unwind_on_malloc=0"
    # That unwinder makes every allocation slow: the 4000-epoch run of the SIGINT checks takes
    # 20-100 s under the sanitizers (2 in a release build), and it runs seven times (three
    # stopped, three resumed, one whole). A tenth of it still leaves seconds between the first
    # checkpoints and the end for the signal to land in.
    TIMEOUT = 300
    LONG_EPOCHS = 400
    # Two processes' MPI_Init alone take 10-20 s there on a loaded machine.
    NO_HANG = 90
    ENV["LSAN_OPTIONS"] = f"suppressions={os.path.join(SOURCE, 'tests', 'lsan-mpi.supp')}:print_suppressions=0"
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(args, k=None, env=None):
    """chainrule ARGS, or mpirun -np K chainrule ARGS: (exit code, stdout, stderr)."""
    cmd = [CHAINRULE] + args + ["--threads", "1", "--no-progress"]
    if k is not None:
        cmd = ["mpirun", "-np", str(k), "--oversubscribe", "--bind-to", "none"] + cmd
    p = subprocess.run(["timeout", "-k", "5", str(TIMEOUT)] + cmd, capture_output=True, text=True,
                       env=env or (ENV if k is not None else ENV_ALONE))
    return p.returncode, p.stdout, p.stderr


def checkpoint(path):
    """The header and the tensor bytes (parameters, then optimizer state) of a checkpoint."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:16] == b"CHAINRULE-CKPT\n\0", path
    (h,) = struct.unpack_from("<Q", b, 16)
    return json.loads(b[24:24 + h]), b[24 + h:-4]


def weights(run_dir):
    return checkpoint(os.path.join(run_dir, "checkpoint.ckpt"))[1]


def write_model(folder, name, **training):
    """A 3-class Iris net with dropout and Adam, batches of 25 rows (shards of 6 or 7 rows)."""
    with open(os.path.join(SOURCE, "models", "iris_3class_softmax.json")) as f:
        m = json.load(f)
    m["nodes"][1:2] = [{"name": "r0", "op": "relu", "inputs": ["h"]},
                       {"name": "r", "op": "dropout", "inputs": ["r0"], "attrs": {"p": 0.25}}]
    m["training"]["data"]["path"] = os.path.join(SOURCE, "data", "iris.data")
    m["training"].update({"epochs": 6, "batch_size": 25, "optimizer": {"adam": {"lr": 0.02}}, "print_every": 1})
    m["training"].update(training)
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        json.dump(m, f)
    return path


def write_conv_model(folder, name):
    """A small float32 conv net on Iris: the 4 features as a 2×2 image, conv2d (6 filters 2×2,
    padding 1, through oneDNN's kernels), relu, max_pool2d 2, a dense layer; batches of 40
    (shards of 10 or 20 rows, conv2d's chunks of 1 to 3 rows)."""
    with open(os.path.join(SOURCE, "models", "iris_3class_softmax.json")) as f:
        m = json.load(f)
    m["dtype"] = "float32"
    m["parameters"] = {"K": {"shape": [6, 1, 2, 2], "init": {"he_normal": {}}}, "c": {"shape": [6], "init": {"constant": 0.1}},
                       "W": {"shape": [6, 3], "init": {"xavier_uniform": {}}}, "b": {"shape": [3], "init": {"constant": 0}}}
    m["nodes"] = [{"name": "img", "op": "reshape", "inputs": ["x"], "attrs": {"shape": [-1, 1, 2, 2]}},
                  {"name": "h", "op": "conv2d", "inputs": ["img", "K", "c"], "attrs": {"padding": 1}},
                  {"name": "r", "op": "relu", "inputs": ["h"]},
                  {"name": "q", "op": "max_pool2d", "inputs": ["r"], "attrs": {"kernel_size": 2}},
                  {"name": "flat", "op": "reshape", "inputs": ["q"], "attrs": {"shape": [-1, 6]}},
                  {"name": "logits", "op": "linear", "inputs": ["flat", "W", "b"]},
                  {"name": "p", "op": "softmax", "inputs": ["logits"]},
                  {"name": "L", "op": "cross_entropy", "inputs": ["logits", "t"]}]
    m["training"]["data"]["path"] = os.path.join(SOURCE, "data", "iris.data")
    m["training"].update({"epochs": 4, "batch_size": 40, "optimizer": {"sgd": {"lr": 0.05, "momentum": 0.9}},
                          "print_every": 1})
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        json.dump(m, f)
    return path


def scratch_dir():
    """A fresh folder for the test's files, removed when the test exits."""
    tmp = tempfile.mkdtemp(prefix="chainrule_mpi_")
    atexit.register(shutil.rmtree, tmp, True)
    return tmp


def without_mpi():
    tmp = scratch_dir()
    model = write_model(tmp, "iris.json")
    for rank, expect_message in (("0", True), ("1", False)):
        env = dict(ENV, OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_RANK=rank)
        code, out, err = run(["train", model, "--out", os.path.join(tmp, "run" + rank)], env=env)
        check(code == 2, f"without MPI, rank {rank} of 2 exits 2 (got {code})")
        check(("built without MPI" in err and "-Dmpi=enabled" in err and "2 processes" in err) == expect_message,
              f"without MPI, rank {rank} of 2 {'explains' if expect_message else 'says nothing'}: {err.strip()!r}")
        check(not os.path.exists(os.path.join(tmp, "run" + rank)), f"without MPI, rank {rank} writes nothing")
    # One process under a launcher (mpirun -np 1) trains as usual.
    code, out, err = run(["train", model], env=dict(ENV, OMPI_COMM_WORLD_SIZE="1", OMPI_COMM_WORLD_RANK="0"))
    check(code == 0 and "epoch 6/6" in out, f"without MPI, one launched process trains: {code} {err.strip()!r}")


def with_mpi():
    tmp = scratch_dir()
    model = write_model(tmp, "iris.json")
    out_dir = lambda name: os.path.join(tmp, name)

    # K = 1, 2, 4 with 4 shards: the same weights and optimizer state, bit for bit.
    runs = {}
    for k in (None, 1, 2, 4):
        name = f"s4_k{k or 'plain'}"
        code, out, err = run(["train", model, "--shards", "4", "--out", out_dir(name)], k)
        check(code == 0, f"{name} trains (exit {code}) {err[-300:]!r}")
        runs[name] = (out, err)
    w = {name: weights(out_dir(name)) for name in runs}
    check(len(set(w.values())) == 1, "--shards 4: plain, -np 1, -np 2 and -np 4 give identical weights")
    header = checkpoint(os.path.join(out_dir("s4_k4"), "checkpoint.ckpt"))[0]
    check(header["info"].get("shards") == 4 and header["epoch"] == 6, "the checkpoint records 4 shards, epoch 6")
    out4 = runs["s4_k4"][0]
    check(out4.count("epoch 6/6") == 1 and out4.count("training and 30 test samples") == 1,
          "-np 4 prints each line once (rank 0 alone)")
    check("combining 4 shards over 4 processes, per step: " in out4 and "summing them" in out4, "-np 4 reports the combine cost")
    # The losses printed are the same numbers too.
    strip = lambda out: [line.rsplit("(", 1)[0] for line in out.splitlines() if line.startswith("epoch ")]
    check(strip(runs["s4_kplain"][0]) == strip(out4) and len(strip(out4)) == 6, "the epoch lines agree, K = 1 and 4")

    # A float32 conv net (conv2d through oneDNN, on one thread per chunk): the same bits too.
    conv = write_conv_model(tmp, "conv.json")
    for k in (None, 2, 4):
        code, out, err = run(["train", conv, "--shards", "4", "--out", out_dir(f"conv_k{k}")], k)
        check(code == 0, f"the conv net trains under -np {k} (exit {code}) {err[-300:]!r}")
    check(weights(out_dir("conv_kNone")) == weights(out_dir("conv_k2")) == weights(out_dir("conv_k4")),
          "conv net, --shards 4: plain, -np 2 and -np 4 give identical weights")

    # Words as sequences with cross_entropy's ignore_index: shards weighted by their kept
    # positions (rows of different lengths), the same bits for every K.
    words = os.path.join(SOURCE, "tests", "fixtures", "words_sequence.json")
    for k in (None, 2, 4):
        code, out, err = run(["train", words, "--shards", "4", "--out", out_dir(f"words_k{k}")], k)
        check(code == 0, f"the words model trains under -np {k} (exit {code}) {err[-300:]!r}")
    check(weights(out_dir("words_kNone")) == weights(out_dir("words_k2")) == weights(out_dir("words_k4")),
          "words with ignore_index, --shards 4: plain, -np 2 and -np 4 give identical weights")

    # One shard (today's single-process path) differs from 4 only in rounding: close, not equal.
    code, out, err = run(["train", model, "--out", out_dir("s1")])
    check(code == 0 and "shards" not in checkpoint(os.path.join(out_dir("s1"), "checkpoint.ckpt"))[0]["info"],
          "a plain run has no shards in its checkpoint")

    # Default S = K: mpirun -np 2 is plain --shards 2.
    code, _, err = run(["train", model, "--out", out_dir("default_k2")], 2)
    code2, _, _ = run(["train", model, "--shards", "2", "--out", out_dir("s2_plain")])
    check(code == 0 and code2 == 0 and weights(out_dir("default_k2")) == weights(out_dir("s2_plain")),
          "mpirun -np 2 without --shards equals a plain --shards 2")

    # K must divide S.
    code, out, err = run(["train", model, "--shards", "3", "--out", out_dir("s3_k2")], 2)
    check(code == 2 and err.count("error: 3 shards cannot be shared by 2 processes") == 1 and "(possible: 1, 3)" in err,
          f"-np 2 --shards 3 is refused once, naming the possible K (exit {code}): {err.strip()!r}")
    check(not os.path.exists(os.path.join(out_dir("s3_k2"), "checkpoint.ckpt")), "a refused run writes no checkpoint")

    # Stop under 2 (after 3 of 6 epochs), resume under 1 and under 4: the weights of an uninterrupted run.
    code, _, _ = run(["train", model, "--shards", "4", "--epochs", "3", "--out", out_dir("half")], 2)
    check(code == 0, "-np 2 --shards 4 trains 3 epochs")
    for k in (None, 4):
        dst = out_dir(f"resumed_k{k or 'plain'}")
        subprocess.run(["cp", "-r", out_dir("half"), dst], check=True)
        code, out, err = run(["train", model, "--resume", dst], k)
        check(code == 0 and "resuming from" in out and weights(dst) == weights(out_dir("s4_kplain")),
              f"stopped under 2, resumed under {k or 1}: the weights of the uninterrupted run ({code} {err[-200:]!r})")
    code, out, err = run(["train", model, "--resume", out_dir("half"), "--shards", "2", "--out", out_dir("x")])
    check(code == 2 and "trained with 4 shards but this run asks for 2" in err,
          f"resuming with other --shards is refused: {err.strip()!r}")
    code, out, err = run(["train", model, "--resume", out_dir("half"), "--out", out_dir("y")], 3)
    check(code == 2 and err.count("4 shards cannot be shared by 3 processes") == 1 and "(possible: 1, 2, 4)" in err,
          f"resuming 4 shards under 3 processes is refused: {err.strip()!r}")
    check(not os.path.exists(os.path.join(out_dir("y"), "checkpoint.ckpt")), "... and writes nothing")

    # SIGINT to every process mid-run: all stop after the same step, rank 0 saves, resume is exact.
    long_model = write_model(tmp, "long.json", epochs=LONG_EPOCHS)
    code, _, _ = run(["train", long_model, "--shards", "2", "--out", out_dir("long_plain")])
    check(code == 0, "the uninterrupted long run trains")
    stopped = out_dir("long_stopped")
    p = subprocess.Popen(["timeout", str(TIMEOUT), "mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none",
                          CHAINRULE, "train", long_model, "--out", stopped, "--save-every", "0", "--threads", "1",
                          "--no-progress"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ranks = wait_for_checkpoint(p, stopped)
    os.kill(ranks[1], signal.SIGINT)  # one rank only: the other learns it at the next step
    out, err = p.communicate(timeout=TIMEOUT)
    epoch = checkpoint(os.path.join(stopped, "checkpoint.ckpt"))[0]["epoch"]
    check(p.returncode == 130 and err.count("stopped during epoch") + err.count("stopped after epoch") == 1,
          f"SIGINT to rank 1: exit 130, said once ({p.returncode}) {err.strip()[-300:]!r}")
    check(0 < epoch < LONG_EPOCHS, f"the stopped run saved a checkpoint in the middle (epoch {epoch})")
    code, out, err = run(["train", long_model, "--resume", stopped])
    check(code == 0 and weights(stopped) == weights(out_dir("long_plain")),
          f"stopped under 2 by SIGINT, resumed under 1: identical ({code} {err[-200:]!r})")

    # Ctrl-C to mpirun: it passes the signal on, every process stops after the same step and
    # rank 0 saves (mpirun itself exits 1).
    stopped = out_dir("long_stopped_mpirun")
    p = subprocess.Popen(["timeout", str(TIMEOUT), "mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none",
                          CHAINRULE, "train", long_model, "--out", stopped, "--save-every", "0", "--threads", "1",
                          "--no-progress"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(p, stopped)
    mpirun = int(subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()[0])
    os.kill(mpirun, signal.SIGINT)
    out, err = p.communicate(timeout=TIMEOUT)
    # mpirun, itself interrupted, does not always forward the ranks' last words (seen 1 run in 3
    # here: stderr empty), so the message is checked to be never repeated; the saved state and
    # the exact resume below are what must hold.
    check(p.returncode not in (0, 124) and err.count("stopped during epoch") + err.count("stopped after epoch") <= 1,
          f"SIGINT to mpirun: the run stops, never said twice ({p.returncode}) {err.strip()[-300:]!r}")
    code, out, err = run(["train", long_model, "--resume", stopped], 2)
    check(code == 0 and weights(stopped) == weights(out_dir("long_plain")),
          f"stopped by SIGINT to mpirun, resumed under 2: identical ({code} {err[-200:]!r})")

    # A rank killed with SIGKILL ends the job within seconds; the checkpoint left is whole.
    killed = out_dir("long_killed")
    p = subprocess.Popen(["timeout", str(TIMEOUT), "mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none",
                          CHAINRULE, "train", long_model, "--out", killed, "--save-every", "0", "--threads", "1",
                          "--no-progress"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ranks = wait_for_checkpoint(p, killed)
    t0 = time.monotonic()
    os.kill(ranks[1], signal.SIGKILL)
    p.communicate(timeout=TIMEOUT)
    ended = time.monotonic() - t0
    check(p.returncode not in (0, 124) and ended < 10,
          f"a killed rank ends the job (exit {p.returncode}) within seconds ({ended:.1f} s)")
    epoch = checkpoint(os.path.join(killed, "checkpoint.ckpt"))[0]["epoch"]
    code, out, err = run(["train", long_model, "--resume", killed], 2)
    check(0 < epoch < LONG_EPOCHS and code == 0 and weights(killed) == weights(out_dir("long_plain")),
          f"the checkpoint left (epoch {epoch}) resumes under 2 to the uninterrupted weights ({code} {err[-200:]!r})")

    # A bad model on every rank: one message naming the file and place, exit 2.
    bad = os.path.join(tmp, "bad.json")
    with open(model) as f:
        m = json.load(f)
    m["training"]["epochs"] = 0
    with open(bad, "w") as f:
        json.dump(m, f)
    code, out, err = run(["train", bad, "--out", out_dir("bad")], 2)
    check(code == 2 and err.count("error:") == 1 and f"{bad}: training.epochs: must be at least 1" in err,
          f"a bad model under -np 2: exit 2, one message ({code}) {err.strip()!r}")
    # Bad data on rank 1 only (MPMD: its own model file): no hang, its message once, exit 2.
    missing = write_model(tmp, "missing_data.json")
    with open(missing) as f:
        m = json.load(f)
    m["training"]["data"]["path"] = os.path.join(tmp, "no_such.data")
    with open(missing, "w") as f:
        json.dump(m, f)
    common = ["--threads", "1", "--no-progress", "--out", out_dir("mpmd")]
    t0 = time.monotonic()
    p = subprocess.run(["timeout", "-k", "5", str(TIMEOUT), "mpirun", "--oversubscribe", "--bind-to", "none",
                        "-np", "1", CHAINRULE, "train", model] + common +
                       [":", "-np", "1", CHAINRULE, "train", missing] + common,
                       capture_output=True, text=True, env=ENV)
    check(p.returncode == 2 and p.stderr.count("error:") == 1 and "no_such.data" in p.stderr
          and time.monotonic() - t0 < NO_HANG,
          f"bad data on rank 1 alone: exit 2, its message once, no hang ({p.returncode}) {p.stderr.strip()!r}")
    # A process whose copy of the model differs (MPMD: its own file), or that was given a flag
    # the others were not: refused during setup on every process, exit 2, the difference
    # named once, no hang.
    other = write_model(tmp, "other_lr.json", optimizer={"adam": {"lr": 0.05}})
    cases = (("its own model file", [other], [], "differs from process 0 in the model's training"),
             ("--lr on one process", [model], ["--lr", "0.5"], "differs from process 0 in the training settings"))
    for i, (what, files, flags, expect) in enumerate(cases):
        common = ["--threads", "1", "--no-progress", "--out", out_dir(f"differs{i}")]
        t0 = time.monotonic()
        p = subprocess.run(["timeout", "-k", "5", str(TIMEOUT), "mpirun", "--oversubscribe", "--bind-to", "none",
                            "-np", "1", CHAINRULE, "train", model] + common +
                           [":", "-np", "1", CHAINRULE, "train"] + files + flags + common,
                           capture_output=True, text=True, env=ENV)
        check(p.returncode == 2 and p.stderr.count("error:") == 1 and "process 1 of 2 " + expect in p.stderr
              and time.monotonic() - t0 < NO_HANG and not os.path.exists(out_dir(f"differs{i}")),
              f"{what}: exit 2 on every process, the difference named once, no hang ({p.returncode}) "
              f"{p.stderr.strip()!r}")
    # A loss that is not a mean over rows cannot be sharded.
    with open(model) as f:
        m = json.load(f)
    m["nodes"][-1] = {"name": "L", "op": "sum", "inputs": ["logits"]}
    summed = os.path.join(tmp, "summed.json")
    with open(summed, "w") as f:
        json.dump(m, f)
    code, out, err = run(["train", summed, "--shards", "2"])
    check(code == 2 and "node 'L' (op sum) is the loss but not a mean over the batch's rows" in err,
          f"a summed loss is refused for --shards 2: {err.strip()!r}")
    code, out, err = run(["train", summed, "--epochs", "1"])
    check(code == 0, "... and trains in one piece")


def wait_for_checkpoint(p, run_dir):
    """The ranks' pids (children of mpirun) once the run has saved a few epochs."""
    path = os.path.join(run_dir, "checkpoint.ckpt")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"the run ended before it could be interrupted: {p.communicate()}")
        try:
            if checkpoint(path)[0]["epoch"] >= 3:
                break
        except (OSError, AssertionError, ValueError, struct.error):
            pass
        time.sleep(0.01)
    mpirun = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    ranks = subprocess.run(["pgrep", "-P", mpirun[0], "-x", "chainrule"], capture_output=True, text=True).stdout
    ranks = sorted(int(x) for x in ranks.split())
    assert len(ranks) == 2, ranks
    return ranks  # in pid order, which need not be rank order: the tests hit "one of the ranks"


if "--without-mpi" in sys.argv:
    without_mpi()
else:
    with_mpi()
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
