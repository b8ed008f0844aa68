"""Shared parts of the peer benchmarks: flags, thread setup, IDX loading, reporting.

Nothing here imports numpy or torch at module level: BLAS libraries read their thread
counts from the environment when they load, so `setup_threads` must run first.
"""

import argparse
import ctypes
import gzip
import json
import os
import resource
import struct
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT / "data" / "mnist"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def base_parser(description, default_threads):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--threads", type=int, default=default_threads,
                   help="compute threads (default: %(default)s)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="directory with the four IDX files, .gz or raw (default: data/mnist)")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--lr", type=float, default=None, help="SGD step (default: 2.0, the lecture's)")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--batches-per-epoch", type=int, default=60)
    p.add_argument("--keep-uint8", action="store_true",
                   help="keep pixels as uint8 and convert each batch, instead of the lecture's "
                        "full float copy of the data set")
    p.add_argument("--no-eval", action="store_true", help="skip the test set after each epoch")
    p.add_argument("--json", action="store_true", help="one JSON object per epoch on stdout")
    return p


def setup_threads(blas_threads):
    """Fixes the BLAS/OpenMP thread counts; call before numpy or torch is imported."""
    if "numpy" in sys.modules or "torch" in sys.modules:
        raise RuntimeError("setup_threads must run before numpy/torch are imported")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(blas_threads)


def _read_idx(path, magic, np):
    """Reads one IDX file straight into a uint8 array, checking the header before the
    allocation and the stream's length after it."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or struct.unpack(">I", head)[0] != magic:
            sys.exit(f"{path}: not an IDX file with magic 0x{magic:08x}")
        ndim = magic & 0xFF
        dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        count = 1
        for d in dims:
            count *= d
        if count > 1 << 31:
            sys.exit(f"{path}: header claims {dims}, implausibly large")
        out = np.empty(count, dtype=np.uint8)
        view, got = memoryview(out), 0
        while got < count:
            # In slices: GzipFile.readinto of a huge view first builds a bytes object as big.
            n = f.readinto(view[got:got + (1 << 20)])
            if not n:
                sys.exit(f"{path}: header says {dims}, stream ends after {got} bytes")
            got += n
        if f.read(1):
            sys.exit(f"{path}: trailing bytes after {dims}")
    return out.reshape(dims)


def load_mnist(data_dir, np):
    """The four IDX arrays as uint8: images [n, 784], labels [n]."""
    out = {}
    for key, name in IDX_FILES.items():
        path = data_dir / (name + ".gz")
        if not path.exists():
            path = data_dir / name
        if not path.exists():
            sys.exit(f"{data_dir}: missing {name}.gz (run scripts/get-mnist)")
        magic = 0x803 if "images" in key else 0x801
        a = _read_idx(path, magic, np)
        out[key] = a.reshape(a.shape[0], -1) if a.ndim == 3 else a
    for part in ("train", "test"):
        if len(out[part + "_images"]) != len(out[part + "_labels"]):
            sys.exit(f"{data_dir}: {part} images and labels differ in count")
    return out


def lecture_init(rng, dtype):
    """The lecture's initial weights, drawn in the lecture's order from a numpy RandomState:
    W1 ~ N(0,1) [784,100], W2 ~ N(0,1) [100,10], biases 0.1."""
    import numpy as np
    w1 = rng.normal(0.0, 1.0, (784, 100)).astype(dtype)
    w2 = rng.normal(0.0, 1.0, (100, 10)).astype(dtype)
    b1 = np.full(100, 0.1, dtype=dtype)
    b2 = np.full(10, 0.1, dtype=dtype)
    return w1, b1, w2, b2


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def openblas_info():
    """Name, core kernel and thread count of the OpenBLAS loaded in this process, if any."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line and ".so" in line}
    except OSError:
        return None
    for lib in sorted(libs):
        try:
            h = ctypes.CDLL(lib)
            h.openblas_get_corename.restype = ctypes.c_char_p
            h.openblas_get_config.restype = ctypes.c_char_p
            return {"corename": h.openblas_get_corename().decode(),
                    "config": h.openblas_get_config().decode().strip(),
                    "threads": h.openblas_get_num_threads()}
        except (OSError, AttributeError):
            continue
    return None


def cpu_model():
    """The CPU as lscpu names it, with its family and model numbers (OpenBLAS picks its kernels
    by them): "AMD EPYC (family 26, model 2)". The first field of every peer's header."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first CPU only
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown CPU"
    name = fields.get("model name", "unknown CPU")
    if "cpu family" not in fields:
        return name
    return f"{name} (family {fields['cpu family']}, model {fields.get('model', '?')})"


def environment_note():
    return {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}


class Reporter:
    """Prints one line per epoch: JSON objects with --json, plain text otherwise."""

    def __init__(self, as_json, header):
        self.as_json = as_json
        if as_json:
            print(json.dumps(header), flush=True)
        else:
            print(" ".join(f"{k}={v}" for k, v in header.items()), flush=True)

    def epoch(self, epoch, seconds, cpu_seconds, train_loss, test_accuracy, test_loss, steps=None):
        row = {"epoch": epoch, "seconds": round(seconds, 6),
               "cpu_seconds": round(cpu_seconds, 6), "train_loss": train_loss,
               "test_accuracy": test_accuracy, "test_loss": test_loss,
               "peak_rss_mib": round(peak_rss_mib(), 1)}
        if steps:
            row["seconds_per_step"] = round(seconds / steps, 9)
        if self.as_json:
            print(json.dumps(row), flush=True)
        else:
            acc = "-" if test_accuracy is None else f"{test_accuracy:.4f}"
            tl = "-" if test_loss is None else f"{test_loss:.6f}"
            print(f"epoch {epoch:3d}  {seconds:7.3f} s ({cpu_seconds:.3f} s CPU)  "
                  f"train loss {train_loss:.6f}  "
                  f"test acc {acc}  test loss {tl}  peak RSS {row['peak_rss_mib']:.0f} MiB",
                  flush=True)
