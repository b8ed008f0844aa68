#!/usr/bin/python3
"""The lecture's 784-100-10 network and recipe in PyTorch, with exact autograd gradients.

--model lecture (default): y1 = sigmoid(x W1 + b1), y = sigmoid(y1 W2 + b2),
y2 = y / y.sum(1), loss = 1/(2N) sum((y2 - t)^2); weights N(0,1), biases 0.1, drawn from
numpy's RandomState(seed) in the same order as lecture_numpy.py, and the same batch indices,
so the two differ only in the update: here it is the true gradient of the loss.

--model relu_softmax: 784-100-10 with ReLU, softmax cross-entropy (mean over the batch),
He-normal weights, zero biases; lr defaults to 0.1.

Threads: torch.set_num_threads(--threads) for PyTorch's own parallelism and
OPENBLAS_NUM_THREADS=--blas-threads (default 1): both at 2 oversubscribes the 2 cores.
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
    p.add_argument("--model", choices=["lecture", "relu_softmax"], default="lecture")
    args = p.parse_args()
    common.setup_threads(args.blas_threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    lr = args.lr if args.lr is not None else (2.0 if args.model == "lecture" else 0.1)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    data = common.load_mnist(args.data, np)

    labels_train = torch.from_numpy(data["train_labels"].astype(np.int64))
    labels_test = torch.from_numpy(data["test_labels"].astype(np.int64))
    images_train = torch.from_numpy(data["train_images"])
    if args.keep_uint8:
        x_train = images_train
    else:
        x_train = images_train.to(dtype).div_(255.0)
    x_test = torch.from_numpy(data["test_images"]).to(dtype).div_(255.0)
    t_train = torch.nn.functional.one_hot(labels_train, 10).to(dtype)
    t_test = torch.nn.functional.one_hot(labels_test, 10).to(dtype)

    rng = np.random.RandomState(args.seed)
    if args.model == "lecture":
        init = common.lecture_init(rng, np.float64)
    else:
        init = (rng.normal(0.0, np.sqrt(2.0 / 784), (784, 100)), np.zeros(100),
                rng.normal(0.0, np.sqrt(2.0 / 100), (100, 10)), np.zeros(10))
    params = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in init]
    w1, b1, w2, b2 = params

    def forward(x):
        """Returns the prediction (argmax decides the class) and what the loss needs."""
        if args.model == "lecture":
            y1 = torch.sigmoid(x @ w1 + b1)
            y = torch.sigmoid(y1 @ w2 + b2)
            y2 = y / y.sum(1, keepdim=True)
            return y2
        return torch.relu(x @ w1 + b1) @ w2 + b2

    def loss_of(out, t, labels):
        if args.model == "lecture":
            return ((out - t) ** 2).sum() / (2 * out.shape[0])
        return torch.nn.functional.cross_entropy(out, labels)

    reporter = common.Reporter(args.json, {
        "cpu": common.cpu_model(), "peer": "torch_mlp", "model": args.model, "dtype": args.dtype,
        "threads": args.threads, "blas_threads": args.blas_threads,
        "torch": torch.__version__, "openblas": common.openblas_info(),
        "env": common.environment_note(), "keep_uint8": args.keep_uint8,
        "seed": args.seed, "lr": lr, "batch": args.batch,
        "batches_per_epoch": args.batches_per_epoch})

    n_train = len(labels_train)
    for epoch in range(1, args.epochs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss_sum = 0.0
        for _ in range(args.batches_per_epoch):
            idx = torch.from_numpy(rng.randint(0, n_train, args.batch))
            x = x_train[idx]
            if args.keep_uint8:
                x = x.to(dtype).mul_(1.0 / 255.0)
            loss = loss_of(forward(x), t_train[idx], labels_train[idx])
            loss.backward()
            with torch.no_grad():
                for q in params:
                    q -= lr * q.grad
                    q.grad = None
            loss_sum += loss.item()
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start

        accuracy = test_loss = None
        if not args.no_eval:
            with torch.no_grad():
                out = forward(x_test)
                accuracy = (out.argmax(1) == labels_test).double().mean().item()
                test_loss = loss_of(out, t_test, labels_test).item()
        train_loss = loss_sum / args.batches_per_epoch
        reporter.epoch(epoch, seconds, cpu_seconds, train_loss, accuracy, test_loss)


if __name__ == "__main__":
    main()
