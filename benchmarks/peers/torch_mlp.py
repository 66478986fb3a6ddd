#!/usr/bin/python3
"""The benchmark model in PyTorch: the peer `make bench` runs beside Kairoscope.

Same model, data, batch and optimizer as benchmarks/bench_test.go:
  MLP 40 -> H -> H (ReLU) -> 3 (mu, s, logit), float32, PyTorch's default
  Linear initialisation U(+-1/sqrt(fan_in)), Adam lr 1e-3, batch B, reshuffled
  every epoch with manual randperm indexing (no DataLoader). The last partial
  batch is one (short) step, so both sides take ceil(rows / B) steps per epoch;
  Kairoscope pads that batch with zero-weight rows, which its loss ignores.
  Loss: mean Gaussian NLL (sigma = softplus(s) + 1e-4, incl. 0.5*log(2*pi))
        + 0.5 * mean BCE(1[r > 0], sigmoid(logit)); loss.item() every step,
  as Kairoscope reads every step's loss.
Data: the raw float32 files benchmarks.WriteData writes (--data DIR), or,
without --data, torch.randn / exponential_ with the same distribution.

Run with Debian's /usr/bin/python3 (python3-torch), one thread:
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 torch_mlp.py --rows 10000 --hidden 64 --batch 256 --epochs 20
It times --epochs epochs after --warmup untimed ones and prints one JSON line:
  {"torch": version, "threads": n, "s_per_epoch": mean, "epochs": n,
   "steps_per_epoch": n, "loss": last epoch's mean loss,
   "peak_rss_bytes": VmHWM, "modes": {mode: {"s_per_epoch", "loss"}}}

--device cuda runs it on the GPU (the data on the device once, the shuffle
drawn there) and --modes times several ways of running the same epoch, each
from a fresh model of the same seed, the first giving s_per_epoch:
  step   loss.item() every step (a host sync per step; the CPU benchmark's way)
  epoch  the loss summed on the device and read once an epoch (what
         Kairoscope's GPU engine does)
  graph  the whole full-batch step (forward, backward, Adam) captured as one
         CUDA graph and replayed; the short last batch runs eagerly
         (--device cuda only)
On CUDA the clock is read after torch.cuda.synchronize().
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FEATURES = 40
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
SIGMA_EPS = 1e-4


def prob_loss(out, r, bce_w):
    mu, s, logit = out[:, 0], out[:, 1], out[:, 2]
    sigma = F.softplus(s) + SIGMA_EPS
    z = (r - mu) / sigma
    nll = HALF_LOG_2PI + torch.log(sigma) + 0.5 * z * z
    y = (r > 0).to(out.dtype)
    bce = F.binary_cross_entropy_with_logits(logit, y, reduction="mean")
    return nll.mean() + bce_w * bce


def peak_rss_bytes():
    """This process's peak RSS since exec (VmHWM), else getrusage's (KiB on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load(a):
    if not a.data:
        x = torch.randn(a.rows, FEATURES)
        r = torch.where(torch.rand(a.rows) < 0.5, torch.zeros(a.rows), torch.empty(a.rows).exponential_())
        return x, r
    xf = os.path.join(a.data, f"x{a.rows}.f32")
    rf = os.path.join(a.data, f"r{a.rows}.f32")
    x = torch.from_file(xf, shared=False, size=a.rows * FEATURES, dtype=torch.float32).view(a.rows, FEATURES)
    r = torch.from_file(rf, shared=False, size=a.rows, dtype=torch.float32)
    return x, r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--bce-weight", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="", help="directory of x<rows>.f32 and r<rows>.f32")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--modes", default="step", help="comma-separated: step, epoch, graph (see above)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in ("step", "epoch", "graph") or (m == "graph" and not cuda):
            ap.error(f"--modes: {m!r} is not step, epoch or (with --device cuda) graph")

    torch.manual_seed(a.seed)
    x, r = load(a)
    x, r = x.to(dev), r.to(dev)
    steps = (a.rows + a.batch - 1) // a.batch

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def make_model(mode):
        torch.manual_seed(a.seed)
        h = a.hidden
        model = nn.Sequential(nn.Linear(FEATURES, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 3)).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, capturable=(mode == "graph"))
        return model, opt

    def eager_epoch(model, opt, mode):
        perm = torch.randperm(a.rows, device=dev)
        total = 0.0 if mode == "step" else torch.zeros((), device=dev)
        for s in range(steps):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            xb, rb = x[idx], r[idx]
            opt.zero_grad(set_to_none=True)
            loss = prob_loss(model(xb), rb, a.bce_weight)
            loss.backward()
            opt.step()
            if mode == "step":
                total += loss.item() * len(idx)
            else:
                total += loss.detach() * len(idx)
        return float(total) / a.rows

    def graph_epochs(model, opt):
        """One epoch function replaying a captured full-batch step."""
        full = a.rows // a.batch
        static_idx = torch.zeros(a.batch, dtype=torch.long, device=dev)
        total = torch.zeros((), device=dev)

        def body():
            opt.zero_grad(set_to_none=False)
            loss = prob_loss(model(x[static_idx]), r[static_idx], a.bce_weight)
            loss.backward()
            opt.step()
            total.add_(loss.detach() * a.batch)

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up steps before capture, as PyTorch's docs do
                body()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            body()

        def epoch():
            perm = torch.randperm(a.rows, device=dev)
            total.zero_()
            for s in range(full):
                static_idx.copy_(perm[s * a.batch:(s + 1) * a.batch])
                g.replay()
            if full < steps:  # the short last batch, eagerly
                idx = perm[full * a.batch:]
                opt.zero_grad(set_to_none=False)
                loss = prob_loss(model(x[idx]), r[idx], a.bce_weight)
                loss.backward()
                opt.step()
                total.add_(loss.detach() * len(idx))
            return float(total) / a.rows

        return epoch

    def timed(mode):
        model, opt = make_model(mode)
        if mode == "graph":
            epoch = graph_epochs(model, opt)
        else:
            def epoch():
                return eager_epoch(model, opt, mode)
        for _ in range(a.warmup):
            epoch()
        loss = float("nan")
        sync()
        t0 = time.perf_counter()
        for _ in range(a.epochs):
            loss = epoch()
        sync()
        dt = time.perf_counter() - t0
        return {"s_per_epoch": dt / max(1, a.epochs), "loss": loss}

    results = {}
    for i, mode in enumerate(modes):
        if i == 0:
            results[mode] = timed(mode)  # the compared mode: its failure is the run's
            continue
        try:
            results[mode] = timed(mode)
        except Exception as e:  # a later mode's failure is reported, the run goes on
            results[mode] = {"error": f"{type(e).__name__}: {e}"}
    first = results[modes[0]]
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "s_per_epoch": first["s_per_epoch"], "epochs": a.epochs,
           "steps_per_epoch": steps, "loss": first["loss"], "peak_rss_bytes": peak_rss_bytes(),
           "device": a.device, "modes": results}
    if cuda:
        out["device_name"] = torch.cuda.get_device_name(dev)
        out["cuda"] = torch.version.cuda
        out["device_bytes"] = torch.cuda.max_memory_allocated(dev)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
