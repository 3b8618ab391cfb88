#!/usr/bin/python3
"""The Python eager peer of `mmref bench train-step` (src/train/step_bench.h, the "bare" loop).

    /usr/bin/python3 benchmarks/train/train_step_torch.py --input-dim 64 --hidden 512 --layers 4 \
        --batch-size 256 --steps 300 --warmup 30 --threads 1

The same MLP (Linear + SiLU layers, nn.Linear init), the same fixed batch shapes, AdamW (lr 1e-3,
weight decay 0.01 on weights only), MSE, clip_grad_norm_(1.0), timed per step with perf_counter.
Prints one JSON line: {"median_ms", "steps", "threads", "torch"}. Exit 3 when torch is missing.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
except Exception as e:  # noqa: BLE001
    sys.stderr.write("train_step_torch.py: torch unavailable: %s\n" % e)
    sys.exit(3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input-dim", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    mods = []
    d = a.input_dim
    for i in range(a.layers):
        out = 1 if i + 1 == a.layers else a.hidden
        mods.append(torch.nn.Linear(d, out))
        if i + 1 < a.layers:
            mods.append(torch.nn.SiLU())
        d = out
    net = torch.nn.Sequential(*mods)
    x = torch.randn(a.batch_size, a.input_dim)
    y = torch.randn(a.batch_size, 1)
    decay = [p for p in net.parameters() if p.dim() >= 2]
    no_decay = [p for p in net.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    params = list(net.parameters())
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"median_ms": 1e3 * statistics.median(times), "steps": a.steps,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
