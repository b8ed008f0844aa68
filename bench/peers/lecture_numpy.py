#!/usr/bin/python3
"""The lecture's numpy code for the 784-100-10 network on MNIST, as a benchmark peer.

The net: y1 = sigmoid(x W1 + b1), y = sigmoid(y1 W2 + b2), y2 = y / sum(y) per row,
loss = 1/(2N) sum((y2 - t)^2). The update is the lecture's hand-derived one, which is NOT
the gradient of that loss: it skips the Jacobian of the normalization and uses the
normalized y2 in the sigmoid derivative y2 (1 - y2):

    d2 = (y2 - t) / N * y2 (1 - y2)     dW2 = y1^T d2     db2 = sum(d2)
    d1 = d2 W2^T * y1 (1 - y1)          dW1 = x^T d1      db1 = sum(d1)

SGD with lr 2.0, 60 batches of 1000 rows drawn with replacement per epoch, seed 21
(numpy's legacy RandomState: weights first, then the batch indices).

Like the lecture, the whole data set is converted to floats once (x / 255), which costs
60000 x 784 x 8 bytes = 359 MiB in float64; --keep-uint8 converts per batch instead.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main():
    args = common.base_parser(__doc__.splitlines()[0], default_threads=2).parse_args()
    common.setup_threads(args.threads)
    import numpy as np

    lr = 2.0 if args.lr is None else args.lr
    dtype = np.dtype(args.dtype)
    data = common.load_mnist(args.data, np)
    labels_train = data["train_labels"]
    if args.keep_uint8:
        x_train = data["train_images"]
    else:
        x_train = data["train_images"] / dtype.type(255.0)
        x_train = x_train.astype(dtype, copy=False)
    t_train = np.eye(10, dtype=dtype)[labels_train]
    x_test = (data["test_images"] / dtype.type(255.0)).astype(dtype, copy=False)
    t_test = np.eye(10, dtype=dtype)[data["test_labels"]]

    rng = np.random.RandomState(args.seed)
    w1, b1, w2, b2 = common.lecture_init(rng, dtype)

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    def forward(x):
        y1 = sigmoid(x @ w1 + b1)
        y = sigmoid(y1 @ w2 + b2)
        y2 = y / np.sum(y, axis=1, keepdims=True)
        return y1, y2

    def mse(y2, t):
        return float(np.sum((y2 - t) ** 2) / (2 * len(t)))

    reporter = common.Reporter(args.json, {
        "cpu": common.cpu_model(), "peer": "lecture_numpy", "dtype": args.dtype, "threads": args.threads,
        "numpy": np.__version__, "openblas": common.openblas_info(),
        "env": common.environment_note(), "keep_uint8": args.keep_uint8,
        "seed": args.seed, "lr": lr, "batch": args.batch,
        "batches_per_epoch": args.batches_per_epoch})

    n_train = len(labels_train)
    for epoch in range(1, args.epochs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss_sum = 0.0
        for _ in range(args.batches_per_epoch):
            idx = rng.randint(0, n_train, args.batch)
            x = x_train[idx]
            if args.keep_uint8:
                x = x.astype(dtype)
                x *= dtype.type(1.0 / 255.0)
            t = t_train[idx]
            y1, y2 = forward(x)
            loss_sum += mse(y2, t)

            n = len(t)
            d2 = (y2 - t) / n * y2 * (1 - y2)
            dw2 = y1.T @ d2
            db2 = np.sum(d2, axis=0)
            d1 = d2 @ w2.T * y1 * (1 - y1)
            dw1 = x.T @ d1
            db1 = np.sum(d1, axis=0)

            w2 -= lr * dw2
            b2 -= lr * db2
            w1 -= lr * dw1
            b1 -= lr * db1
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start

        accuracy = test_loss = None
        if not args.no_eval:
            _, y2 = forward(x_test)
            accuracy = float(np.mean(np.argmax(y2, axis=1) == data["test_labels"]))
            test_loss = mse(y2, t_test)
        train_loss = loss_sum / args.batches_per_epoch
        reporter.epoch(epoch, seconds, cpu_seconds, train_loss, accuracy, test_loss)


if __name__ == "__main__":
    main()
