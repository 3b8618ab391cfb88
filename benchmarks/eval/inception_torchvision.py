#!/usr/bin/python3
"""torchvision's inception_v3 forward on the same batch as benchmarks/eval/fid_features_bench.cpp.

    /usr/bin/python3 benchmarks/eval/inception_torchvision.py --batch 8 --threads 1 --repeats 5

inception_v3(weights=None, aux_logits=False, init_weights=False).eval() under no_grad on a seeded
(batch, 3, 299, 299) input; prints one JSON line {"seconds_per_batch": median of repeats, "images_per_s"}.
The FID network is this graph with three pooling variants, so the op mix is the same. Exit 3 without
torchvision.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torchvision
except Exception as e:  # noqa: BLE001
    sys.stderr.write("inception_torchvision.py: torchvision unavailable: %s\n" % e)
    sys.exit(3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                          transform_input=False).eval()
    x = torch.rand(a.batch, 3, 299, 299) * 2 - 1
    times = []
    with torch.no_grad():
        net(x)  # warm-up
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    print(json.dumps({"seconds_per_batch": s, "images_per_s": a.batch / s, "threads": torch.get_num_threads(),
                      "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    main()
