"""The script side of the peer protocol of `mmref bench` (src/bench/peer.h), shared by the scripts in this folder.

A peer is run as
    /usr/bin/python3 SCRIPT --point '<json>' --device cpu|cuda --warmup N --repeats N --threads T
and prints, as its LAST stdout line, one JSON object
    {"times_ms": [one per repeat], "peak_rss_bytes": int, "torch_version": "..."}
(plus "peak_allocated_bytes", torch.cuda.max_memory_allocated(), on CUDA, and the script's own keys).
parse_args resets the peak counters after `import torch` (VmHWM through /proc/self/clear_refs, CUDA's
max_memory_allocated), so the peaks cover the model, inputs and calls, like the C++ runner's (memory.h).
Errors go to stderr with a non-zero exit code.
"""
import argparse
import json
import resource
import sys
import time

import torch

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def _reset_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _peak_rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def parse_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--point", required=True, help="the sweep point as a JSON object")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's default)")
    a = ap.parse_args()
    a.point = json.loads(a.point)
    if not isinstance(a.point, dict):
        ap.error("--point must be a JSON object")
    if a.repeats < 1 or a.warmup < 0:
        ap.error("--repeats must be >= 1 and --warmup >= 0")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.stderr.write("peer: --device cuda but torch.cuda.is_available() is false\n")
        sys.exit(2)
    _reset_rss()
    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    return a


def dtype_of(point):
    name = point.get("dtype", "float32")
    if name not in DTYPES:
        sys.stderr.write("peer: dtype '%s' is unknown (float32, bfloat16, float16)\n" % name)
        sys.exit(2)
    return DTYPES[name]


def time_calls(fn, args):
    """Runs fn() warmup + repeats times; returns the per-repeat milliseconds (CUDA synchronised)."""
    cuda = args.device == "cuda"
    for _ in range(args.warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def report(times, args, extra=None):
    out = {"times_ms": times,
           "peak_rss_bytes": _peak_rss(),
           "torch_version": torch.__version__,
           "threads": torch.get_num_threads()}
    if args.device == "cuda":
        out["peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
    out.update(extra or {})
    sys.stdout.flush()
    print(json.dumps(out))


def run(description, build):
    """The whole peer for scripts whose `build(point, device)` returns the callable to time."""
    args = parse_args(description)
    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    torch.manual_seed(int(args.point.get("seed", 0)))
    call = build(args.point, device)
    report(time_calls(call, args), args)
    return 0
