#!/usr/bin/python3
"""Python eager peer of the train.mlp_step bench target (src/bench/targets_train.cpp), peer protocol of
src/bench/peer.h (the script side: peer_common.py). One call = one step of the bare loop of
benchmarks/train/train_step_torch.py: zero_grad, forward, MSE, backward, clip_grad_norm_(1.0), AdamW
(lr 1e-3, weight decay 0.01 on matrices only) on a fixed random batch.

    /usr/bin/python3 benchmarks/peers/train_mlp_step.py --point '{"batch": 256, "hidden": 512}' \
        --device cpu --warmup 3 --repeats 20 --threads 2
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common  # noqa: E402
import torch  # noqa: E402


def build(p, device):
    dt = peer_common.dtype_of(p)
    batch, d, hidden, layers = int(p.get("batch", 256)), int(p.get("input_dim", 64)), int(p.get("hidden", 512)), \
        int(p.get("layers", 4))
    mods = []
    for i in range(layers):
        out = 1 if i + 1 == layers else hidden
        mods.append(torch.nn.Linear(d, out))
        if i + 1 < layers:
            mods.append(torch.nn.SiLU())
        d = out
    net = torch.nn.Sequential(*mods).to(device=device, dtype=dt)
    x = torch.randn(batch, int(p.get("input_dim", 64)), device=device, dtype=dt)
    y = torch.randn(batch, 1, device=device, dtype=dt)
    decay = [q for q in net.parameters() if q.dim() >= 2]
    no_decay = [q for q in net.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    params = list(net.parameters())

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return step


if __name__ == "__main__":
    sys.exit(peer_common.run(__doc__.splitlines()[0], build))
