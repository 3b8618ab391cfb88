#!/usr/bin/python3
"""torchaudio's Kaldi fbank on the same input as benchmarks/data/features_bench.cpp BM_KaldiFbank10s.

    /usr/bin/python3 benchmarks/data/fbank_torchaudio.py [--threads N] [--seconds 10]

10 s of 16 kHz int16-scale noise, fbank(num_mel_bins=80, dither=0, energy_floor=0) (povey, 25/10 ms,
snip_edges). Prints one JSON line: {"seconds_per_call": best of 5 repeats (timeit, 20 calls each),
"frames": ..., "frames_per_s": ..., "threads": ...}. Exit 3 when torchaudio is missing.
"""
import argparse
import json
import sys
import timeit

try:
    import torch
    import torchaudio.compliance.kaldi as kaldi
except Exception as e:  # noqa: BLE001
    sys.stderr.write("fbank_torchaudio.py: torchaudio unavailable: %s\n" % e)
    sys.exit(3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--number", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    wave = (torch.randn(1, int(16000 * a.seconds), generator=g) * 2000).round()

    def run():
        return kaldi.fbank(wave, num_mel_bins=80, dither=0.0, energy_floor=0.0, sample_frequency=16000)

    frames = run().shape[0]
    best = min(timeit.repeat(run, number=a.number, repeat=5)) / a.number
    print(json.dumps({"seconds_per_call": best, "frames": frames, "frames_per_s": frames / best,
                      "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
