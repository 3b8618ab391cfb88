#!/usr/bin/python3
"""Writes tests/data/tiny_state_dict.pth, the fixture for tests/core/state_dict_test.cpp (PthTest).

Run with Debian's Python, which has torch 1.13 (the `python3` of a pyenv may not):
    /usr/bin/python3 tests/data/make_tiny_pth.py
Every value is a deterministic function of its position (torch.arange based), so the C++ test can
recompute it; the test's comment lists the same table. The dict is a real module state_dict() (an
OrderedDict with `_metadata`, as torch.save writes it for a model) plus extra entries that exercise
the loader: fp16/bf16/float64 tensors, a non-contiguous tensor, a view sharing storage with an offset.
"""
import collections
import os

import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.sub = torch.nn.Sequential(torch.nn.Linear(3, 2))


def main():
    m = Tiny()
    with torch.no_grad():
        m.fc.weight.copy_(torch.arange(12, dtype=torch.float32).reshape(3, 4) / 10)   # k / 10
        m.fc.bias.copy_(torch.tensor([-1.0, 0.0, 1.0]))
        m.bn.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
        m.bn.bias.copy_(torch.tensor([0.5, 0.25, 0.125]))
        m.bn.running_mean.copy_(torch.arange(3, dtype=torch.float32))                   # 0 1 2
        m.bn.running_var.copy_(torch.arange(3, dtype=torch.float32) + 1)                # 1 2 3
        m.bn.num_batches_tracked.fill_(7)
        m.sub[0].weight.copy_(torch.arange(6, dtype=torch.float32).reshape(2, 3) - 3)   # k - 3
        m.sub[0].bias.copy_(torch.tensor([0.75, -0.75]))
    sd = m.state_dict()   # OrderedDict with a _metadata attribute, like every real checkpoint
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")

    base = torch.arange(20, dtype=torch.float32).reshape(4, 5)
    sd["extra.half"] = (torch.arange(6, dtype=torch.float32) / 4).to(torch.float16)        # k / 4
    sd["extra.bf16"] = (torch.arange(4, dtype=torch.float32) * 0.5).to(torch.bfloat16)    # k / 2
    sd["extra.f64"] = torch.arange(5, dtype=torch.float64) / 3                              # k / 3
    sd["extra.i32"] = torch.arange(4, dtype=torch.int32) - 2                                # k - 2
    sd["extra.transposed"] = base.t()            # [5, 4], strides (1, 5): not contiguous
    sd["extra.row2"] = base[2]                   # [5] = 10..14, storage offset 10, shares base's storage
    sd["extra.scalar"] = torch.tensor(3.5, dtype=torch.float32)

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_state_dict.pth")
    torch.save(sd, out)   # zip format (torch >= 1.6 default)
    back = torch.load(out)
    assert list(back.keys()) == list(sd.keys())
    for k in sd:
        assert torch.equal(back[k], sd[k]), k
    print(f"wrote {out}: {len(sd)} tensors")


if __name__ == "__main__":
    main()
