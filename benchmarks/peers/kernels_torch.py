#!/usr/bin/python3
"""Python eager peer of the kernel.* bench targets (src/bench/targets_kernels.cpp), peer protocol of
src/bench/peer.h (the script side: peer_common.py). The point's "kernel" (attention | depthwise_conv1d |
group_norm_silu | conv1d) picks the op; sizes, defaults and mode (forward | train) match the C++ target:

    /usr/bin/python3 benchmarks/peers/kernels_torch.py --point '{"kernel": "attention", "seq": 256}' \
        --device cpu --warmup 3 --repeats 10 --threads 2

attention uses F.scaled_dot_product_attention where this torch has it (2.x), else matmul-softmax-matmul
(torch 1.13, like mmref's `torch` backend). float16 on CPU is computed in float32 (1.13's CPU matmul has
no half kernels).
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common  # noqa: E402
import torch  # noqa: E402

F = torch.nn.functional


def sizes(p, key, default):
    v = int(p.get(key, default))
    if v < 1:
        raise SystemExit("kernels_torch.py: %s must be >= 1, got %d" % (key, v))
    return v


def attention(p, dev, dt, inp):
    b, h = sizes(p, "batch", 1), sizes(p, "heads", 8)
    hkv = sizes(p, "kv_heads", h)
    s = sizes(p, "seq", 512)
    sk, d = sizes(p, "seq_k", s), sizes(p, "head_dim", 64)
    q, k, v = inp(b, h, s, d), inp(b, hkv, sk, d), inp(b, hkv, sk, d)
    causal = bool(p.get("causal", False))
    mask = p.get("mask", "none")
    bias = None
    if mask == "bias":
        bias = torch.randn(b, 1, s, sk, device=dev, dtype=dt)
    elif mask == "lengths":
        lens = torch.randint(sk // 2, sk + 1, (b,), device=dev)
        keep = torch.arange(sk, device=dev)[None, :] < lens[:, None]
        bias = torch.zeros(b, 1, 1, sk, device=dev, dtype=dt).masked_fill(~keep[:, None, None, :], float("-inf"))
    if causal:
        tri = torch.ones(s, sk, device=dev, dtype=torch.bool).tril(sk - s)
        cm = torch.zeros(s, sk, device=dev, dtype=dt).masked_fill(~tri, float("-inf"))
        bias = cm if bias is None else bias + cm
    rep = h // hkv
    sdpa = getattr(F, "scaled_dot_product_attention", None)

    def fwd():
        kk, vv = (k, v) if rep == 1 else (k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1))
        if sdpa is not None:
            return sdpa(q, kk, vv, attn_mask=bias)
        scores = torch.matmul(q, kk.transpose(-2, -1)) * (1.0 / math.sqrt(d))
        if bias is not None:
            scores = scores + bias
        return torch.matmul(scores.softmax(-1), vv)
    return fwd


def depthwise_conv1d(p, dev, dt, inp):
    b, c, t = sizes(p, "batch", 8), sizes(p, "channels", 256), sizes(p, "length", 1024)
    k, dil = sizes(p, "kernel_size", 15), sizes(p, "dilation", 1)
    total = dil * (k - 1)
    pad = (total, 0) if p.get("padding", "same") == "causal" else (total // 2, total - total // 2)
    x, w, bias = inp(b, c, t), inp(c, 1, k), inp(c)
    return lambda: F.conv1d(F.pad(x, pad), w, bias, dilation=dil, groups=c)


def group_norm_silu(p, dev, dt, inp):
    b, c, r = sizes(p, "batch", 4), sizes(p, "channels", 256), sizes(p, "resolution", 32)
    hgt, wid, g = sizes(p, "height", r), sizes(p, "width", r), sizes(p, "groups", 32)
    x, gamma, beta = inp(b, c, hgt, wid), inp(c), inp(c)
    return lambda: F.silu(F.group_norm(x, g, gamma, beta, 1e-5))


def conv1d(p, dev, dt, inp):
    b, cin, cout = sizes(p, "batch", 8), sizes(p, "in_channels", 256), sizes(p, "out_channels", 256)
    t, k = sizes(p, "length", 1024), sizes(p, "kernel_size", 7)
    st, dil, g = sizes(p, "stride", 1), sizes(p, "dilation", 1), sizes(p, "groups", 1)
    pad = int(p.get("padding", (k - 1) // 2 * dil))
    x, w, bias = inp(b, cin, t), inp(cout, cin // g, k), inp(cout)
    return lambda: F.conv1d(x, w, bias, stride=st, padding=pad, dilation=dil, groups=g)


KERNELS = {"attention": attention, "depthwise_conv1d": depthwise_conv1d, "group_norm_silu": group_norm_silu,
           "conv1d": conv1d}


def build(point, device):
    kernel = point.get("kernel", "attention")
    if kernel not in KERNELS:
        raise SystemExit("kernels_torch.py: unknown kernel %r" % kernel)
    dt = peer_common.dtype_of(point)
    if device.type == "cpu" and dt == torch.float16:
        dt = torch.float32
    train = point.get("mode", "forward") == "train"
    inputs = []

    def inp(*shape):
        t = torch.randn(*shape, device=device, dtype=dt)
        if train:
            t.requires_grad_(True)
            inputs.append(t)
        return t
    fwd = KERNELS[kernel](point, device, dt, inp)
    if not train:
        def call():
            with torch.no_grad():
                fwd()
        return call
    grad = [None]

    def step():
        out = fwd()
        if grad[0] is None:
            grad[0] = torch.randn_like(out)
        torch.autograd.grad(out, inputs, grad[0], allow_unused=True)
    return step


if __name__ == "__main__":
    sys.exit(peer_common.run(__doc__.splitlines()[0], build))
