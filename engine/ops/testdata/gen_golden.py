"""Golden values for engine/ops from PyTorch autograd and torch.optim.Adam.

Run from the repository root with Debian's interpreter (it has torch 1.13;
a plain `python3` on PATH may be a pyenv without torch):

    /usr/bin/python3 engine/ops/testdata/gen_golden.py

or `go test ./engine/ops -run Golden -update`, or `make golden`. It writes
engine/ops/testdata/golden.json (next to this file, whatever the cwd).

Everything is float64 and deterministic (no RNG): the inputs are closed-form
functions of their index and are written into the JSON, so the Go test reads
them instead of recomputing them.

Model: a 2-hidden-layer MLP, in=7 -> 5 -> 4 -> 3, ReLU on the hidden layers,
identity output, y = x @ W + b with W stored [in, out] (no nn.Linear
transposes). Loss (engine/ops.ProbLoss), bceW = 0.5:

    loss = sum_i wt_i * (NLL_i + bceW * BCE_i) / sum_i wt_i
    sigma_i = softplus(s_i) + 1e-4
    NLL_i = 0.5 log(2 pi) + log sigma_i + 0.5 ((r_i - mu_i) / sigma_i)^2
    BCE_i = softplus(logit_i) - y_i logit_i,  y_i = 1[r_i > 0]

softplus is written out as max(x,0) + log1p(exp(-|x|)) (torch's own softplus
switches to x above a threshold of 20). Some weights are 0 (padding rows) and
some targets are exactly 0 (y = 0).

Recorded: the loss and the gradient of every parameter (autograd), then 5
steps of torch.optim.Adam(lr=1e-2, defaults otherwise) on the same batch:
the loss before each step and the parameters after the 5th.
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)

N, IN, H1, H2, OUT = 12, 7, 5, 4, 3
BCE_W = 0.5
LR = 1e-2
STEPS = 5


def fill(shape, f):
    n = 1
    for d in shape:
        n *= d
    return torch.tensor([f(k) for k in range(n)], dtype=torch.float64).reshape(shape)


x = fill((N, IN), lambda k: 1.5 * math.sin(0.37 * k + 0.11))
r = torch.tensor([0.0 if i % 4 == 1 else 0.8 * math.cos(0.9 * i + 0.3) for i in range(N)])
wt = torch.tensor([1.0, 0.5, 0.0, 2.0, 1.0, 0.0, 1.5, 1.0, 0.25, 1.0, 0.0, 0.75])

init = [
    ("w1", fill((IN, H1), lambda k: 0.4 * math.sin(1.3 * k + 0.5))),
    ("b1", fill((H1,), lambda k: 0.1 * math.cos(k))),
    ("w2", fill((H1, H2), lambda k: 0.5 * math.cos(0.7 * k + 0.2))),
    ("b2", fill((H2,), lambda k: 0.05 * math.sin(k + 1))),
    ("w3", fill((H2, OUT), lambda k: 0.6 * math.sin(0.9 * k - 0.4))),
    ("b3", torch.tensor([0.1, 0.2, -0.1])),
]


def softplus(t):
    return torch.clamp(t, min=0) + torch.log1p(torch.exp(-torch.abs(t)))


def forward(p):
    w1, b1, w2, b2, w3, b3 = p
    h1 = torch.relu(x @ w1 + b1)
    h2 = torch.relu(h1 @ w2 + b2)
    return h2 @ w3 + b3


def loss_fn(out):
    mu, s, logit = out[:, 0], out[:, 1], out[:, 2]
    sigma = softplus(s) + 1e-4
    nll = 0.5 * math.log(2 * math.pi) + torch.log(sigma) + 0.5 * ((r - mu) / sigma) ** 2
    y = (r > 0).to(torch.float64)
    bce = softplus(logit) - y * logit
    return (wt * (nll + BCE_W * bce)).sum() / wt.sum()


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def tensors(names, ts):
    return [{"name": n, "shape": list(t.shape), "data": flat(t)} for n, t in zip(names, ts)]


names = [n for n, _ in init]
params = [t.clone().requires_grad_(True) for _, t in init]
loss = loss_fn(forward(params))
grads = torch.autograd.grad(loss, params)

adam_params = [t.clone().requires_grad_(True) for _, t in init]
opt = torch.optim.Adam(adam_params, lr=LR)
losses = []
for _ in range(STEPS):
    opt.zero_grad()
    l = loss_fn(forward(adam_params))
    losses.append(float(l))
    l.backward()
    opt.step()

golden = {
    "generator": "engine/ops/testdata/gen_golden.py",
    "torch_version": torch.__version__,
    "dtype": "float64",
    "n": N, "in": IN, "hidden": [H1, H2], "out": OUT,
    "bce_weight": BCE_W,
    "x": flat(x), "r": flat(r), "wt": flat(wt),
    "params": tensors(names, [t for _, t in init]),
    "loss": float(loss),
    "grads": tensors(names, grads),
    "adam": {
        "lr": LR, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "steps": STEPS,
        "losses": losses,
        "params": tensors(names, adam_params),
    },
}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
with open(path + ".tmp", "w") as f:
    json.dump(golden, f, indent=1)
    f.write("\n")
os.replace(path + ".tmp", path)
print("wrote", path, "loss", golden["loss"])
