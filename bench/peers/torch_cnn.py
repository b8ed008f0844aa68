#!/usr/bin/python3
"""models/mnist_cnn.json in PyTorch: the same LeNet-style net, recipe, batch and threads.

[N,784] / 255 -> [N,1,28,28] -> conv2d 8x5x5 padding 2 + bias -> relu -> max_pool2d 2 ->
conv2d 16x5x5 + bias -> relu -> max_pool2d 2 -> [N,400] -> x W [400,10] + b ->
cross_entropy on class indices (mean over the batch). Kernels He-normal with PyTorch's
fan_in = C*kh*kw, W He-normal with fan_in 400, biases 0 (numpy RandomState(seed)), SGD lr
0.05 momentum 0.9 (torch.optim.SGD), batches of 100 from a fresh permutation each epoch
(every row once), float32 by default.

The epoch line also gives `seconds_per_step` (the epoch's seconds over its steps). With
--time-eval the epoch's seconds are those of evaluating the whole test split instead (batches
of 1000 under torch.no_grad(), as chainrule evaluates), and --no-eval is ignored.
The header (the first line) names the CPU, OpenBLAS's kernels and PyTorch's oneDNN.
Threads: torch.set_num_threads(--threads) for PyTorch's convolutions (its own im2col +
GEMM on CPU, mkldnn off or on as the build has it) and OPENBLAS_NUM_THREADS=--blas-threads.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main():
    p = common.base_parser(__doc__.splitlines()[0], default_threads=2)
    p.add_argument("--blas-threads", type=int, default=1,
                   help="OPENBLAS_NUM_THREADS (default: %(default)s)")
    p.set_defaults(epochs=3, dtype="float32", lr=0.05, batch=100, batches_per_epoch=0)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--time-eval", action="store_true",
                   help="report the evaluation of the test split as each epoch's time")
    args = p.parse_args()
    common.setup_threads(args.blas_threads)
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    data = common.load_mnist(args.data, np)
    labels_train = torch.from_numpy(data["train_labels"].astype(np.int64))
    labels_test = torch.from_numpy(data["test_labels"].astype(np.int64))
    x_train = torch.from_numpy(data["train_images"]).to(dtype).div_(255.0)
    x_test = torch.from_numpy(data["test_images"]).to(dtype).div_(255.0)

    rng = np.random.RandomState(args.seed)
    init = (rng.normal(0.0, np.sqrt(2.0 / 25), (8, 1, 5, 5)), np.zeros(8),
            rng.normal(0.0, np.sqrt(2.0 / 200), (16, 8, 5, 5)), np.zeros(16),
            rng.normal(0.0, np.sqrt(2.0 / 400), (400, 10)), np.zeros(10))
    params = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in init]
    k1, c1, k2, c2, w, b = params
    opt = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum)

    def forward(x):
        h = x.reshape(-1, 1, 28, 28)
        h = F.max_pool2d(F.relu(F.conv2d(h, k1, c1, padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, k2, c2)), 2)
        return h.reshape(-1, 400) @ w + b

    n_train = len(labels_train)
    steps = args.batches_per_epoch or (n_train + args.batch - 1) // args.batch
    onednn = [line.strip() for line in torch.__config__.show().splitlines() if "MKL-DNN" in line or "oneDNN" in line]
    reporter = common.Reporter(args.json, {
        "cpu": common.cpu_model(), "peer": "torch_cnn", "model": "mnist_cnn", "dtype": args.dtype,
        "onednn": onednn[0].lstrip("- ") if onednn else None,
        "timed": "evaluation of the test split" if args.time_eval else "training",
        "threads": args.threads, "blas_threads": args.blas_threads,
        "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
        "openblas": common.openblas_info(), "env": common.environment_note(),
        "seed": args.seed, "lr": args.lr, "momentum": args.momentum, "batch": args.batch,
        "batches_per_epoch": steps})

    for epoch in range(1, args.epochs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        order = torch.from_numpy(rng.permutation(n_train))
        loss_sum = 0.0
        for s in range(steps):
            idx = order[(s * args.batch) % n_train:][:args.batch]
            loss = F.cross_entropy(forward(x_train[idx]), labels_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start

        accuracy = test_loss = None
        if not args.no_eval or args.time_eval:
            eval_start, eval_cpu_start = time.perf_counter(), time.process_time()
            with torch.no_grad():
                out = torch.cat([forward(x_test[i:i + 1000]) for i in range(0, len(x_test), 1000)])
                accuracy = (out.argmax(1) == labels_test).double().mean().item()
                test_loss = F.cross_entropy(out, labels_test).item()
            if args.time_eval:
                seconds = time.perf_counter() - eval_start
                cpu_seconds = time.process_time() - eval_cpu_start
        reporter.epoch(epoch, seconds, cpu_seconds, loss_sum / steps, accuracy, test_loss,
                       None if args.time_eval else steps)


if __name__ == "__main__":
    main()
