#!/usr/bin/python3
"""Python eager peer of the asr.conformer.infer / asr.conformer.train_step bench targets (src/bench/targets_asr.cpp).

    /usr/bin/python3 benchmarks/peers/conformer_torchaudio.py --point '{"mode": "infer", "batch": 1,
        "frames": 1000, "vocab": 32, "model": {"d_model": 144, "heads": 4, "ffn": 576, "layers": 4,
        "kernel": 15, "input_layer": "conv2d"}}' --device cpu --warmup 1 --repeats 5 --threads 2

The model: wenet's Conv2d subsampling (Conv2d(1, D, 3, 2), ReLU, Conv2d(D, D, 3, 2), ReLU, Linear(D * F', D),
x sqrt(D); conv2d6 / conv2d8 / linear as wenet), then torchaudio.models.Conformer (the construction of
benchmarks/models/conformer_torchaudio.py: input_dim = D, num_heads, ffn_dim, num_layers,
depthwise_conv_kernel_size; macaron feed-forwards, conv module with BatchNorm), then the CTC projection
Linear(D, vocab) and log_softmax. It is the closest same-size eager model, not the same network:
torchaudio's self-attention is nn.MultiheadAttention without relative positions (no linear_pos, no q p^T
term), so it does a little less work per layer than mmref's wenet encoder.

mode "infer": eval(), no_grad forward of (batch, frames, 80) random features.
mode "train": train() forward, CTC loss (sum / batch, zero_infinity) on random targets of `tokens` labels,
backward, clip_grad_norm_(5), AdamW (lr, weight decay 0.01 on >= 2-D tensors, none on the rest) -- the
C++ target's step. Protocol: peer_common.py.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

try:
    import torchaudio  # noqa: E402
except Exception as e:  # noqa: BLE001
    sys.stderr.write("conformer_torchaudio.py: torchaudio unavailable: %s\n" % e)
    sys.exit(3)

MEL_BINS = 80
SUBSAMPLING = {"conv2d": [(3, 2), (3, 2)], "conv2d6": [(3, 2), (5, 3)], "conv2d8": [(3, 2), (3, 2), (3, 2)],
               "linear": []}


class Subsampling(nn.Module):
    """wenet's Conv2dSubsampling4/6/8 (or LinearNoSubsampling) with the x sqrt(D) of its positional encoding."""

    def __init__(self, idim, d, layer, dropout):
        super().__init__()
        if layer not in SUBSAMPLING:
            raise SystemExit("conformer_torchaudio.py: input_layer '%s' is unknown" % layer)
        self.convs = SUBSAMPLING[layer]
        mods, cin, f = [], 1, idim
        for k, s in self.convs:
            mods += [nn.Conv2d(cin, d, k, s), nn.ReLU()]
            cin, f = d, (f - k) // s + 1
        self.conv = nn.Sequential(*mods)
        self.out = nn.Linear(d * f, d) if self.convs else nn.Sequential(nn.Linear(idim, d), nn.LayerNorm(d))
        self.scale = math.sqrt(d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, lengths):  # (B, T, F), (B) -> (B, T', D), (B)
        if self.convs:
            x = self.conv(x.unsqueeze(1))  # (B, D, T', F')
            b, c, t, f = x.shape
            x = self.out(x.transpose(1, 2).reshape(b, t, c * f))  # (B, T', D)
            for k, s in self.convs:
                lengths = torch.div(lengths - k, s, rounding_mode="floor") + 1
        else:
            x = self.out(x)
        return self.dropout(x * self.scale), lengths


class ConformerCtc(nn.Module):
    def __init__(self, m, vocab):
        super().__init__()
        d = m["d_model"]
        self.embed = Subsampling(MEL_BINS, d, m.get("input_layer", "conv2d"), m.get("dropout", 0.1))
        self.encoder = torchaudio.models.Conformer(input_dim=d, num_heads=m["heads"], ffn_dim=m["ffn"],
                                                   num_layers=m["layers"],
                                                   depthwise_conv_kernel_size=m["kernel"],
                                                   dropout=m.get("dropout", 0.1))
        self.ctc_lo = nn.Linear(d, vocab)

    def forward(self, feats, lengths):  # (B, T, 80), (B) -> (B, T', V), (B)
        x, lengths = self.embed(feats, lengths)
        x, lengths = self.encoder(x, lengths)
        return F.log_softmax(self.ctc_lo(x), dim=-1), lengths


def main():
    args = peer_common.parse_args(__doc__.splitlines()[1])
    p = args.point
    mode = p.get("mode", "infer")
    batch = int(p.get("batch", 1))
    frames = int(p.get("frames", round(float(p.get("seconds", 10.0)) * 100)))
    vocab = int(p.get("vocab", 32))
    dev, dtype = torch.device(args.device), peer_common.dtype_of(p)
    torch.manual_seed(int(p.get("seed", 0)))
    net = ConformerCtc(p["model"], vocab).to(dev, dtype)
    feats = torch.randn(batch, frames, MEL_BINS, device=dev, dtype=dtype)
    lengths = torch.full((batch,), frames, dtype=torch.int64, device=dev)
    if mode == "infer":
        net.eval()

        def call():
            with torch.no_grad():
                net(feats, lengths)
    elif mode == "train":
        net.train()
        tokens = max(1, int(p.get("tokens", 1)))
        targets = torch.randint(1, vocab, (batch, tokens), device=dev)
        target_lengths = torch.full((batch,), tokens, dtype=torch.int64, device=dev)
        params = [q for q in net.parameters() if q.requires_grad]
        groups = [{"params": [q for q in params if q.ndim >= 2], "weight_decay": 0.01},
                  {"params": [q for q in params if q.ndim < 2], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=float(p.get("lr", 1e-3)))

        def call():
            opt.zero_grad()
            lp, out_lengths = net(feats, lengths)
            loss = F.ctc_loss(lp.transpose(0, 1).float(), targets, out_lengths, target_lengths, blank=0,
                              reduction="sum", zero_infinity=True) / batch
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
    else:
        sys.stderr.write("conformer_torchaudio.py: mode '%s' is unknown (infer, train)\n" % mode)
        return 2
    times = peer_common.time_calls(call, args)
    peer_common.report(times, args, {"torchaudio_version": torchaudio.__version__,
                                     "parameters": sum(q.numel() for q in net.parameters())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
