#!/usr/bin/python3
"""Python eager peer of the diffusion.unet.forward bench target (src/bench/targets_diffusion.cpp).

    /usr/bin/python3 benchmarks/peers/unet2d_eager.py --point '{"rows": 2, "resolution": 32, "tokens": 16,
        "unet": {"in_channels": 3, "out_channels": 3, "block_out_channels": [32, 64, 64], ...}}' \
        --device cpu --warmup 1 --repeats 5 --threads 2

The same UNet2DConditionModel in Python eager PyTorch: the plain-PyTorch, diffusers-named composition of
tests/models/unet2d_reference.py (imported from there; attention is softmax(q k^T / sqrt(d)) v, the
normalisations F.group_norm + F.silu) built from the target's config (`unet`: diffusers config.json keys,
what the C++ target resolved), in eval mode under no_grad, on `rows` (2 x batch with cfg) random samples
of in_channels x resolution^2, random integer timesteps, random (rows, tokens, cross_attention_dim) context
states when the model has cross-attention and random class labels when it is class-conditioned.
Weights: PyTorch's default init (speed does not depend on them). Protocol: peer_common.py.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "models"))
import peer_common  # noqa: E402
import unet2d_reference as ref  # noqa: E402

import torch  # noqa: E402


def main():
    args = peer_common.parse_args(__doc__.splitlines()[1])
    p = args.point
    cfg = dict(ref.DEFAULTS)
    cfg.update(p.get("unet", {}))
    rows = int(p.get("rows", p.get("batch", 1)))
    res = int(p.get("resolution", 32))
    tokens = int(p.get("tokens", 16))
    dev, dtype = torch.device(args.device), peer_common.dtype_of(p)
    torch.manual_seed(int(p.get("seed", 0)))
    net = ref.UNet2DConditionModel(cfg).eval().to(dev, dtype)
    sample = torch.randn(rows, cfg["in_channels"], res, res, device=dev, dtype=dtype)
    timesteps = torch.randint(0, 1000, (rows,), device=dev)
    ehs = None
    if cfg["cross_attention_dim"]:
        ehs = torch.randn(rows, tokens, cfg["cross_attention_dim"], device=dev, dtype=dtype)
    labels = None
    if cfg["num_class_embeds"]:
        labels = torch.randint(0, cfg["num_class_embeds"], (rows,), device=dev)

    def call():
        with torch.no_grad():
            net(sample, timesteps, ehs, None, labels)

    times = peer_common.time_calls(call, args)
    peer_common.report(times, args, {"parameters": sum(q.numel() for q in net.parameters())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
