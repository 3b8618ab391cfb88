#!/usr/bin/python3
"""torchaudio's Conformer forward, timed as benchmarks/models/conformer_bench.cpp times mmref's port.

    /usr/bin/python3 benchmarks/models/conformer_torchaudio.py --input-dim 144 --heads 4 --ffn-dim 256 \
        --layers 6 --kernel 15 --frames 249 --threads 1 --repeats 5

torchaudio.models.Conformer(...).eval() under no_grad on a seeded (1, frames, input_dim) input with
lengths = [frames]; prints one JSON line {"seconds_per_forward": median of repeats, ...}. Exit 3 without
torchaudio.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torchaudio
except Exception as e:  # noqa: BLE001
    sys.stderr.write("conformer_torchaudio.py: torchaudio unavailable: %s\n" % e)
    sys.exit(3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input-dim", type=int, default=144)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn-dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--kernel", type=int, default=15)
    ap.add_argument("--frames", type=int, default=249)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = torchaudio.models.Conformer(input_dim=a.input_dim, num_heads=a.heads, ffn_dim=a.ffn_dim,
                                      num_layers=a.layers, depthwise_conv_kernel_size=a.kernel).eval()
    x = torch.randn(a.batch, a.frames, a.input_dim)
    lengths = torch.full((a.batch,), a.frames, dtype=torch.int64)
    times = []
    with torch.no_grad():
        net(x, lengths)  # warm-up
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            net(x, lengths)
            times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    print(json.dumps({"seconds_per_forward": s, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "torchaudio": torchaudio.__version__}))


if __name__ == "__main__":
    main()
