#!/usr/bin/python3
"""Writes tests/golden/optimizers.json: torch.optim trajectories that chainrule must follow.

Run with Debian's python3-torch (1.13): /usr/bin/python3 tests/golden/make_optimizer_goldens.py
The tests read the file and do not need PyTorch.

An optimizer that torch 1.13 does not have (Lion; newton and newton_cg, chainrule's
Levenberg-Marquardt-safeguarded Newton steps, with torch's float64 Hessian) is written out
below, in plain Python float64 on the same model (its gradients by hand), and its cases say
so in their "reference" field; the learning rates of a schedule still come from torch's scheduler.

The model is the lecture's worked example (one sigmoid neuron, three Iris instances,
L = 1/(2N) sum (y' - y)^2) in float64, from fixed initial values; every case runs
`epochs` epochs of `steps_per_epoch` full-batch steps, the schedule stepped after each
epoch's last step, and records w and b after every step. Each case's "optimizer",
"lr_schedule" and "clip_grad_norm" are written as a model's training block would write them.
"""
import json
import math
import pathlib

import numpy as np
import torch

X = [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [4.7, 3.2, 1.3, 0.2]]
Y = [[0.0], [1.0], [0.0]]
W0 = [[0.1], [-0.2], [0.3], [0.05]]
B0 = [0.1]

CASES = [
    ("sgd", {"sgd": {"lr": 0.5}}, None, None),
    ("sgd_momentum_dampening", {"sgd": {"lr": 0.2, "momentum": 0.9, "dampening": 0.3}}, None, None),
    ("sgd_nesterov_weight_decay", {"sgd": {"lr": 0.2, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}}, None, None),
    ("sgd_momentum_weight_decay", {"sgd": {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}}, None, None),
    ("adam", {"adam": {"lr": 0.05}}, None, None),
    ("adam_amsgrad_weight_decay", {"adam": {"lr": 0.05, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True}}, None, None),
    ("adamw", {"adamw": {"lr": 0.05}}, None, None),
    ("adamw_amsgrad", {"adamw": {"lr": 0.03, "weight_decay": 0.2, "amsgrad": True}}, None, None),
    ("rmsprop", {"rmsprop": {"lr": 0.01}}, None, None),
    ("rmsprop_centered_momentum", {"rmsprop": {"lr": 0.005, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05, "momentum": 0.9, "centered": True}}, None, None),
    ("rmsprop_momentum", {"rmsprop": {"lr": 0.01, "momentum": 0.5}}, None, None),
    ("step_schedule", {"sgd": {"lr": 0.5, "momentum": 0.5}}, {"step": {"step_size": 3, "gamma": 0.5}}, None),
    ("exponential_schedule", {"adam": {"lr": 0.05}}, {"exponential": {"gamma": 0.8}}, None),
    ("cosine_schedule", {"sgd": {"lr": 0.5}}, {"cosine": {"t_max": 6, "eta_min": 0.01}}, None),
    ("warmup_schedule", {"adamw": {"lr": 0.05}}, {"warmup": {"epochs": 4, "start_factor": 0.1}}, None),
    ("clip_triggers", {"sgd": {"lr": 0.5, "momentum": 0.9}}, None, 0.05),
    ("clip_does_not_trigger", {"sgd": {"lr": 0.5}}, None, 100.0),
    ("clip_with_adam_and_cosine", {"adam": {"lr": 0.05, "amsgrad": True}}, {"cosine": {"t_max": 4}}, 0.02),
    ("lion", {"lion": {"lr": 0.01}}, None, None),
    ("lion_betas_weight_decay", {"lion": {"lr": 0.02, "betas": [0.8, 0.95], "weight_decay": 0.5}}, None, None),
    ("lion_cosine_clip", {"lion": {"lr": 0.03, "weight_decay": 0.1}}, {"cosine": {"t_max": 6}}, 0.05),
    ("newton", {"newton": {"damping": 1e-4, "lr": 1}}, None, None),
    ("newton_half_step_schedule", {"newton": {"damping": 0.01, "lr": 0.5}}, {"step": {"step_size": 3, "gamma": 0.5}}, None),
    ("newton_overlong_steps", {"newton": {"damping": 0.1, "lr": 2}}, None, None),
    ("newton_cg", {"newton_cg": {"iterations": 2, "damping": 1e-3}}, None, None),
    ("newton_cg_overlong_steps", {"newton_cg": {"iterations": 2, "damping": 0.01, "lr": 1.5}}, None, None),
    ("newton_cg_one_iteration", {"newton_cg": {"iterations": 1, "damping": 0.1, "lr": 0.8}}, None, None),
]
EPOCHS, STEPS_PER_EPOCH = 8, 3


def make_optimizer(spec, params):
    (kind, a), = spec.items()
    if kind == "sgd":
        return torch.optim.SGD(params, lr=a["lr"], momentum=a.get("momentum", 0), dampening=a.get("dampening", 0),
                               nesterov=a.get("nesterov", False), weight_decay=a.get("weight_decay", 0), foreach=False)
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(params, lr=a.get("lr", 0.001), betas=tuple(a.get("betas", (0.9, 0.999))), eps=a.get("eps", 1e-8),
                   weight_decay=a.get("weight_decay", 0 if kind == "adam" else 0.01), amsgrad=a.get("amsgrad", False),
                   foreach=False)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=a.get("lr", 0.01), alpha=a.get("alpha", 0.99), eps=a.get("eps", 1e-8),
                                   weight_decay=a.get("weight_decay", 0), momentum=a.get("momentum", 0),
                                   centered=a.get("centered", False), foreach=False)
    raise ValueError(kind)


def make_schedule(spec, opt):
    if spec is None:
        return None
    (kind, a), = spec.items()
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=a["step_size"], gamma=a.get("gamma", 0.1))
    if kind == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=a["gamma"])
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a["t_max"], eta_min=a.get("eta_min", 0))
    if kind == "warmup":
        return torch.optim.lr_scheduler.LinearLR(opt, start_factor=a.get("start_factor", 1 / 3), end_factor=1.0,
                                                 total_iters=a["epochs"])
    raise ValueError(kind)


def lion_step(a, params, grads, state, lr):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Program 1),
    one element at a time: c = b1*m + (1-b1)*g;  p = p - lr*(sign(c) + wd*p);  m = b2*m + (1-b2)*g.
    Returns the smallest |c| (a sign decided by rounding would make the golden fragile) and
    how often sign(c) differed from sign(g) (never: the case would not test the momentum)."""
    b1, b2 = a.get("betas", [0.9, 0.99])
    wd = a.get("weight_decay", 0.0)
    smallest, overruled = math.inf, 0
    for k, (p, g) in enumerate(zip(params, grads)):
        m = state.setdefault(k, [0.0] * len(p))
        for i in range(len(p)):
            c = b1 * m[i] + (1 - b1) * g[i]
            sign = 1.0 if c > 0 else -1.0 if c < 0 else 0.0
            p[i] = p[i] - lr * (sign + wd * p[i])
            m[i] = b2 * m[i] + (1 - b2) * g[i]
            smallest = min(smallest, abs(c))
            overruled += (c > 0) != (g[i] > 0)
    return smallest, overruled


def worked_loss(flat):
    """The worked example's loss at w, b = flat[:4], flat[4] (a torch float64 vector)."""
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    yhat = torch.sigmoid(x @ flat[:4].reshape(4, 1) + flat[4])
    return ((yhat - y) ** 2).sum() / (2 * len(X))


def cholesky_solve(h, g, lam):
    """(H + lam*I) d = g by the Cholesky loops of train/second_order.cpp; None when not positive definite."""
    n = len(g)
    L = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = 0.5 * (h[i][j] + h[j][i]) + (lam if i == j else 0.0)
            for k in range(j):
                s -= L[i][k] * L[j][k]
            if i == j:
                if not s > 0:
                    return None
                L[i][i] = math.sqrt(s)
            else:
                L[i][j] = s / L[j][j]
    d = list(g)
    for i in range(n):
        for k in range(i):
            d[i] -= L[i][k] * d[k]
        d[i] /= L[i][i]
    for i in reversed(range(n)):
        for k in range(i + 1, n):
            d[i] -= L[k][i] * d[k]
        d[i] /= L[i][i]
    return d


def conjugate_gradient(h, g, lam, iterations):
    """k CG iterations on (H + lam*I) d = g from d = 0; None on negative curvature at once."""
    dot = lambda a, b: sum(u * v for u, v in zip(a, b))
    gnorm = math.sqrt(dot(g, g))
    d, r, p = [0.0] * len(g), list(g), list(g)
    rr = dot(r, r)
    for it in range(iterations):
        if not math.sqrt(rr) > 1e-12 * gnorm:
            break
        ap = [dot(row, p) + lam * pi for row, pi in zip(h, p)]
        pap = dot(p, ap)
        if not pap > 0:
            if it == 0:
                return None
            break
        alpha = rr / pap
        d = [di + alpha * pi for di, pi in zip(d, p)]
        r = [ri - alpha * api for ri, api in zip(r, ap)]
        nxt = dot(r, r)
        p = [ri + (nxt / rr) * pi for ri, pi in zip(r, p)]
        rr = nxt
    return d


def levenberg_marquardt(a, params, grads, state, lr, direction):
    """Newton's safeguard as train/second_order.cpp runs it. Returns the smallest relative gap
    between a trial's loss and the start's (a decision made by rounding would make the golden
    fragile) and how many trials were refused (the safeguard at work)."""
    floor = a.get("damping", 1e-4)
    lam = state.get("damping", floor)
    flat = torch.tensor(params[0] + params[1], dtype=torch.float64)
    g = grads[0] + grads[1]
    h = torch.autograd.functional.hessian(worked_loss, flat).tolist()
    start = float(worked_loss(flat))
    smallest, refused = math.inf, 0
    for _ in range(30):
        d = direction(h, g, lam)
        if d is not None:
            moved = [p - lr * di for p, di in zip(flat.tolist(), d)]
            trial = float(worked_loss(torch.tensor(moved, dtype=torch.float64)))
            smallest = min(smallest, abs(trial - start) / start)
            if trial < start:
                params[0][:], params[1][:] = moved[:4], moved[4:]
                state["damping"] = max(lam / 10, floor)
                return smallest, refused
        refused += 1
        lam = lam * 10 if lam > 0 else 1e-6
    state["damping"] = lam
    return smallest, refused


def newton_step(a, params, grads, state, lr):
    """Damped Newton, (H + lam*I) d = g by Cholesky, Levenberg-Marquardt safeguarded."""
    return levenberg_marquardt(a, params, grads, state, lr, cholesky_solve)


def newton_cg_step(a, params, grads, state, lr):
    """Newton-CG: d from `iterations` CG steps on (H + lam*I) d = g, safeguarded alike."""
    k = a.get("iterations", 10)
    return levenberg_marquardt(a, params, grads, state, lr, lambda h, g, lam: conjugate_gradient(h, g, lam, k))


# Optimizers torch 1.13 lacks: name -> one step of the float64 reference above.
REFERENCES = {"lion": lion_step, "newton": newton_step, "newton_cg": newton_cg_step}


def loss_and_grads(w, b):
    """The worked example by hand in float64: L = 1/(2N) sum (sigmoid(xw + b) - y)^2."""
    x, y = np.array(X), np.array(Y)
    yhat = 1 / (1 + np.exp(-(x @ np.array(w).reshape(4, 1) + b[0])))
    loss = float(((yhat - y) ** 2).sum() / (2 * len(X)))
    delta = (yhat - y) / len(X) * yhat * (1 - yhat)  # dL/d(xw + b), one per row
    return loss, [float(v) for v in (x.T @ delta)[:, 0]], [float(delta.sum())]


def run_reference(optimizer, schedule, clip):
    """As run(), with the step from REFERENCES and the epoch's lr from torch's scheduler."""
    (kind, a), = optimizer.items()
    lr_holder = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=a.get("lr", 1e-4 if kind == "lion" else 1))
    sched = make_schedule(schedule, lr_holder)
    w, b = [v[0] for v in W0], list(B0)
    state, steps, smallest, overruled = {}, [], math.inf, 0
    for epoch in range(EPOCHS):
        lr = lr_holder.param_groups[0]["lr"]
        for _ in range(STEPS_PER_EPOCH):
            loss, gw, gb = loss_and_grads(w, b)
            norm = None
            if clip is not None:  # torch.nn.utils.clip_grad_norm_: the norm of the per-tensor norms
                norm = math.sqrt(sum(v * v for v in gw)) ** 2 + math.sqrt(sum(v * v for v in gb)) ** 2
                norm = math.sqrt(norm)
                coef = min(1.0, clip / (norm + 1e-6))
                gw, gb = [v * coef for v in gw], [v * coef for v in gb]
            least, differing = REFERENCES[kind](a, [w, b], [gw, gb], state, lr)
            smallest, overruled = min(smallest, least), overruled + differing
            steps.append({"loss": loss, "lr": lr, "grad_norm": norm, "w": list(w), "b": list(b)})
        if sched:
            lr_holder.step()
            sched.step()
    if kind == "lion":
        assert smallest > 1e-9, f"{kind}: a sign was decided by |c| = {smallest}"
        assert overruled > 0, f"{kind}: the momentum never changed a sign; the case would not test it"
        print(f"{json.dumps(optimizer)}: smallest |c| {smallest:.2g}, sign(c) != sign(g) {overruled} times")
    else:
        assert smallest > 1e-9, f"{kind}: a trial was kept or refused by a loss gap of {smallest}"
        print(f"{json.dumps(optimizer)}: smallest relative loss gap {smallest:.2g}, {overruled} trials refused")
    return steps


def run(optimizer, schedule, clip):
    x = torch.tensor(X, dtype=torch.float64)
    y = torch.tensor(Y, dtype=torch.float64)
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(B0, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [w, b])
    sched = make_schedule(schedule, opt)
    steps = []
    for epoch in range(EPOCHS):
        for _ in range(STEPS_PER_EPOCH):
            opt.zero_grad()
            yhat = torch.sigmoid(x @ w + b)
            loss = ((yhat - y) ** 2).sum() / (2 * x.shape[0])
            loss.backward()
            norm = None
            if clip is not None:
                norm = float(torch.nn.utils.clip_grad_norm_([w, b], clip))
            lr = opt.param_groups[0]["lr"]
            opt.step()
            steps.append({"loss": float(loss), "lr": lr, "grad_norm": norm,
                          "w": [v[0] for v in w.detach().tolist()], "b": b.detach().tolist()})
        if sched:
            sched.step()
    return steps


def main():
    torch.set_default_dtype(torch.float64)
    cases = []
    for name, optimizer, schedule, clip in CASES:
        kind = next(iter(optimizer))
        reference = kind in REFERENCES
        case = {"name": name, "optimizer": optimizer, "epochs": EPOCHS, "steps_per_epoch": STEPS_PER_EPOCH,
                "steps": (run_reference if reference else run)(optimizer, schedule, clip)}
        if reference:
            case["reference"] = f"{REFERENCES[kind].__name__} in make_optimizer_goldens.py (float64), not torch"
        if schedule is not None:
            case["lr_schedule"] = schedule
        if clip is not None:
            case["clip_grad_norm"] = clip
        assert all(math.isfinite(v) for s in case["steps"] for v in s["w"] + s["b"])
        cases.append(case)
    out = {"about": __doc__.splitlines()[0], "torch": torch.__version__, "x": X, "y": Y, "w": W0, "b": B0,
           "cases": cases}
    path = pathlib.Path(__file__).with_name("optimizers.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path.name}: {len(cases)} cases, {EPOCHS * STEPS_PER_EPOCH} steps each")


if __name__ == "__main__":
    main()
