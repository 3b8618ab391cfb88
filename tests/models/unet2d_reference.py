#!/usr/bin/python3
"""Reference outputs for tests/models/unet2d_test.cpp (suite Unet2dReference), computed at test time.

A plain-PyTorch UNet2DConditionModel: the composition of huggingface/diffusers (unet_2d_condition.py,
unet_2d_blocks.py, resnet.py, transformer_2d.py, attention.py, attention_processor.py, embeddings.py)
with torch.nn modules named exactly as diffusers names them, so state_dict() keys are diffusers' keys.
Attention is a plain softmax(q k^T / sqrt(d) + bias) v, normalisation F.group_norm (+ F.silu).

Run with Debian's python (torch 1.13):
    /usr/bin/python3 tests/models/unet2d_reference.py OUT_DIR CASES.json
Exit code 3 (and a line on stderr) when torch cannot be imported; the tests then skip.

CASES.json is a list of {"name", "seed", "batch", "height", "width", "seq_len", "mask", "float_timesteps",
"config": {diffusers UNet2DConditionModel config keys as mmref's UNet2DConfig reads them}}. For each case
OUT_DIR/<name>.safetensors holds (F32 unless noted):
    weight.<diffusers state-dict key>   the seeded random weights (norm gains 1 + 0.1 N(0,1), biases
                                        0.1 N(0,1), other weights N(0, 1/fan_in))
    input.sample (B, C, H, W), input.timesteps (B) I64 or F32, input.encoder_hidden_states (B, L, Dc),
    input.encoder_attention_mask (B, L) 1/0 (row b keeps its first max(1, L - 2b) tokens),
    input.class_labels (B) I64, input.loss_weight (B, out, H, W)
    output.sample                       the fp32 forward
    output.grad_sample                  d sum(output * loss_weight) / d sample, fp32
    output.sample_f64, output.grad_sample_f64   the same weights and inputs run in float64 (F64)
    output.flops                        I64 scalar: 2 x multiply-adds of every Conv2d / Linear (forward
                                        hooks) plus the two attention matmuls
"""
import copy
import json
import math
import struct
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    sys.stderr.write("unet2d_reference.py: torch unavailable: %s\n" % e)
    sys.exit(3)

FLOPS = [0]


def save_safetensors(path, tensors):
    header = {}
    blobs = []
    offset = 0
    names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def gn(x, norm, silu):
    y = F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
    return F.silu(y) if silu else y


def attention(q, k, v, bias):  # (B, h, N, d), (B, h, L, d) -> (B, h, N, d)
    b, h, n, d = q.shape
    FLOPS[0] += 2 * 2 * b * h * n * k.shape[2] * d
    scores = torch.matmul(q, k.transpose(-1, -2)) * d ** -0.5
    if bias is not None:
        scores = scores + bias
    return torch.matmul(scores.softmax(-1), v)


# ------------------------------------------------------------------ resnet.py
class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps, dropout, output_scale_factor=1.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=1, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps, affine=True)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1, stride=1, padding=0) if cin != cout else None
        self.output_scale_factor = output_scale_factor

    def forward(self, x, temb):
        h = self.conv1(gn(x, self.norm1, True))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(gn(h, self.norm2, True)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / self.output_scale_factor


class Downsample2D(nn.Module):
    def __init__(self, c, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1), mode="constant", value=0)
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# ------------------------------------------------------------------ attention_processor.py / attention.py
class Attention(nn.Module):
    def __init__(self, query_dim, cross_attention_dim=None, heads=8, dim_head=64, dropout=0.0, bias=False,
                 norm_num_groups=None, eps=1e-5, residual_connection=False, rescale_output_factor=1.0):
        super().__init__()
        inner = heads * dim_head
        kv = cross_attention_dim if cross_attention_dim else query_dim
        self.heads = heads
        self.residual_connection = residual_connection
        self.rescale_output_factor = rescale_output_factor
        self.group_norm = nn.GroupNorm(norm_num_groups, query_dim, eps=eps, affine=True) if norm_num_groups else None
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(kv, inner, bias=bias)
        self.to_v = nn.Linear(kv, inner, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim, bias=True), nn.Dropout(dropout)])

    def forward(self, x, encoder_hidden_states=None, bias=None):
        residual = x
        spatial = x.ndim == 4
        if spatial:
            b, c, hh, ww = x.shape
            x = x.view(b, c, hh * ww).transpose(1, 2)
        if self.group_norm is not None:
            x = gn(x.transpose(1, 2), self.group_norm, False).transpose(1, 2)
        ctx = x if encoder_hidden_states is None else encoder_hidden_states
        b, n, _ = x.shape
        q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.to_k(ctx).view(b, ctx.shape[1], self.heads, -1).transpose(1, 2)
        v = self.to_v(ctx).view(b, ctx.shape[1], self.heads, -1).transpose(1, 2)
        y = attention(q, k, v, bias).transpose(1, 2).reshape(b, n, -1)
        y = self.to_out[1](self.to_out[0](y))
        if spatial:
            y = y.transpose(-1, -2).reshape(b, c, hh, ww)
        if self.residual_connection:
            y = y + residual
        return y / self.rescale_output_factor


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4, dropout=0.0):
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, dim_head, dropout, cross_attention_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=True, eps=1e-5)
        self.attn1 = Attention(dim, None, heads, dim_head, dropout, bias=False)
        if cross_attention_dim:
            self.norm2 = nn.LayerNorm(dim, elementwise_affine=True, eps=1e-5)
            self.attn2 = Attention(dim, cross_attention_dim, heads, dim_head, dropout, bias=False)
        else:
            self.norm2 = None
            self.attn2 = None
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=True, eps=1e-5)
        self.ff = FeedForward(dim, dropout=dropout)

    def forward(self, x, ehs, bias):
        x = self.attn1(self.norm1(x)) + x
        if self.attn2 is not None:
            x = self.attn2(self.norm2(x), encoder_hidden_states=ehs, bias=bias) + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    def __init__(self, heads, dim_head, in_channels, num_layers, cross_attention_dim, groups, linear, dropout):
        super().__init__()
        inner = heads * dim_head
        self.linear = linear
        self.norm = nn.GroupNorm(groups, in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(in_channels, inner) if linear else nn.Conv2d(in_channels, inner, 1, 1, 0)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, dim_head, dropout, cross_attention_dim) for _ in range(num_layers)])
        self.proj_out = nn.Linear(inner, in_channels) if linear else nn.Conv2d(inner, in_channels, 1, 1, 0)

    def forward(self, x, ehs, bias):
        b, _, hh, ww = x.shape
        residual = x
        h = gn(x, self.norm, False)
        if not self.linear:
            h = self.proj_in(h)
            inner = h.shape[1]
            h = h.permute(0, 2, 3, 1).reshape(b, hh * ww, inner)
        else:
            inner = h.shape[1]
            h = self.proj_in(h.permute(0, 2, 3, 1).reshape(b, hh * ww, inner))
        for blk in self.transformer_blocks:
            h = blk(h, ehs, bias)
        if not self.linear:
            h = self.proj_out(h.reshape(b, hh, ww, inner).permute(0, 3, 1, 2).contiguous())
        else:
            h = self.proj_out(h).reshape(b, hh, ww, inner).permute(0, 3, 1, 2).contiguous()
        return h + residual


# ------------------------------------------------------------------ unet_2d_blocks.py
def make_attention(kind, ch, heads, attn_dim_head, cfg):
    if kind == "cross":
        return Transformer2DModel(heads, ch // heads, ch, cfg["transformer_layers_per_block"],
                                  cfg["cross_attention_dim"], cfg["norm_num_groups"],
                                  cfg["use_linear_projection"], cfg["dropout"])
    return Attention(ch, None, ch // attn_dim_head, attn_dim_head, bias=True, norm_num_groups=cfg["norm_num_groups"],
                     eps=cfg["norm_eps"], residual_connection=True)


def block_kind(t):
    return "cross" if t.startswith("CrossAttn") else ("attn" if t.startswith("Attn") else "plain")


class DownBlock(nn.Module):
    def __init__(self, kind, cin, cout, temb, num_layers, add_downsample, heads, attn_dim_head, cfg):
        super().__init__()
        self.kind = kind
        g, eps, dr = cfg["norm_num_groups"], cfg["norm_eps"], cfg["dropout"]
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if i == 0 else cout, cout, temb, g, eps, dr) for i in range(num_layers)])
        if kind != "plain":
            self.attentions = nn.ModuleList(
                [make_attention(kind, cout, heads, attn_dim_head, cfg) for _ in range(num_layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(cout, cfg["downsample_padding"])]) if add_downsample else None

    def forward(self, x, temb, ehs, bias):
        out = ()
        for i, r in enumerate(self.resnets):
            x = r(x, temb)
            if self.kind == "cross":
                x = self.attentions[i](x, ehs, bias)
            elif self.kind == "attn":
                x = self.attentions[i](x)
            out += (x,)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            out += (x,)
        return x, out


class UpBlock(nn.Module):
    def __init__(self, kind, cin, prev, cout, temb, num_layers, add_upsample, heads, attn_dim_head, cfg):
        super().__init__()
        self.kind = kind
        g, eps, dr = cfg["norm_num_groups"], cfg["norm_eps"], cfg["dropout"]
        res = []
        for i in range(num_layers):
            skip = cin if i == num_layers - 1 else cout
            rin = prev if i == 0 else cout
            res.append(ResnetBlock2D(rin + skip, cout, temb, g, eps, dr))
        self.resnets = nn.ModuleList(res)
        if kind != "plain":
            self.attentions = nn.ModuleList(
                [make_attention(kind, cout, heads, attn_dim_head, cfg) for _ in range(num_layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if add_upsample else None

    def forward(self, x, skips, temb, ehs, bias):
        for i, r in enumerate(self.resnets):
            x = torch.cat([x, skips[-1]], dim=1)
            skips = skips[:-1]
            x = r(x, temb)
            if self.kind == "cross":
                x = self.attentions[i](x, ehs, bias)
            elif self.kind == "attn":
                x = self.attentions[i](x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class MidBlock(nn.Module):
    def __init__(self, cross, ch, temb, heads, cfg):
        super().__init__()
        g, eps, dr, s = cfg["norm_num_groups"], cfg["norm_eps"], cfg["dropout"], cfg["mid_block_scale_factor"]
        self.cross = cross
        res = [ResnetBlock2D(ch, ch, temb, g, eps, dr, s)]
        if cross:
            self.attentions = nn.ModuleList([make_attention("cross", ch, heads, 1, cfg)])
            res.append(ResnetBlock2D(ch, ch, temb, g, eps, dr, s))
        self.resnets = nn.ModuleList(res)

    def forward(self, x, temb, ehs, bias):
        x = self.resnets[0](x, temb)
        if self.cross:
            x = self.resnets[1](self.attentions[0](x, ehs, bias), temb)
        return x


# ------------------------------------------------------------------ embeddings.py / unet_2d_condition.py
def get_timestep_embedding(timesteps, dim, flip_sin_to_cos, shift, max_period=10000):
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32)
    exponent = exponent / (half - shift)
    emb = torch.exp(exponent)
    emb = timesteps[:, None].float() * emb[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


def per_level(v, i):
    return v if isinstance(v, int) else (v[0] if len(v) == 1 else v[i])


class UNet2DConditionModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ch = cfg["block_out_channels"]
        n = len(ch)
        temb = ch[0] * 4
        head_dim = cfg["attention_head_dim"]
        heads = cfg.get("num_attention_heads") or head_dim
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        self.class_embedding = nn.Embedding(cfg["num_class_embeds"], temb) if cfg["num_class_embeds"] else None
        self.down_blocks = nn.ModuleList()
        out = ch[0]
        for i, t in enumerate(cfg["down_block_types"]):
            cin, out = out, ch[i]
            self.down_blocks.append(DownBlock(block_kind(t), cin, out, temb, cfg["layers_per_block"], i < n - 1,
                                              per_level(heads, i), per_level(head_dim, i), cfg))
        mid = cfg["mid_block_type"]
        self.mid_block = None if mid == "none" else MidBlock(mid == "UNetMidBlock2DCrossAttn", ch[-1], temb,
                                                             per_level(heads, n - 1), cfg)
        rev = list(reversed(ch))
        self.up_blocks = nn.ModuleList()
        out = rev[0]
        for i, t in enumerate(cfg["up_block_types"]):
            prev, out = out, rev[i]
            cin = rev[min(i + 1, n - 1)]
            self.up_blocks.append(UpBlock(block_kind(t), cin, prev, out, temb, cfg["layers_per_block"] + 1, i < n - 1,
                                          per_level(heads, n - 1 - i), per_level(head_dim, i), cfg))
        self.conv_norm_out = nn.GroupNorm(cfg["norm_num_groups"], ch[0], eps=cfg["norm_eps"])
        self.conv_out = nn.Conv2d(ch[0], cfg["out_channels"], 3, padding=1)

    def forward(self, sample, timesteps, ehs=None, mask=None, class_labels=None):
        cfg = self.cfg
        bias = None
        if mask is not None:
            bias = ((1 - mask.to(sample.dtype)) * -10000.0).unsqueeze(1)[:, None]  # (B, 1, 1, L)
        timesteps = timesteps.expand(sample.shape[0])
        t_emb = get_timestep_embedding(timesteps, cfg["block_out_channels"][0], cfg["flip_sin_to_cos"],
                                       cfg["freq_shift"]).to(sample.dtype)
        emb = self.time_embedding(t_emb)
        if self.class_embedding is not None:
            emb = emb + self.class_embedding(class_labels).to(sample.dtype)
        x = self.conv_in(sample)
        skips = (x,)
        for blk in self.down_blocks:
            x, res = blk(x, emb, ehs, bias)
            skips += res
        if self.mid_block is not None:
            x = self.mid_block(x, emb, ehs, bias)
        for blk in self.up_blocks:
            k = len(blk.resnets)
            x = blk(x, skips[-k:], emb, ehs, bias)
            skips = skips[:-k]
        x = gn(x, self.conv_norm_out, True)
        return self.conv_out(x)


DEFAULTS = {"in_channels": 4, "out_channels": 4, "flip_sin_to_cos": True, "freq_shift": 0,
            "mid_block_type": "UNetMidBlock2DCrossAttn", "layers_per_block": 2, "downsample_padding": 1,
            "mid_block_scale_factor": 1.0, "dropout": 0.0, "norm_num_groups": 32, "norm_eps": 1e-5,
            "cross_attention_dim": 1280, "transformer_layers_per_block": 1, "attention_head_dim": 8,
            "num_attention_heads": None, "use_linear_projection": False, "num_class_embeds": 0}


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 2)
            is_norm = "norm" in leaf[-2]
            if is_norm and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.ndim >= 2:
                fan_in = p[0].numel() if not name.startswith("class_embedding") else 1
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def hooks(model):
    def lin(m, i, o):
        FLOPS[0] += 2 * o.numel() * m.in_features

    def conv(m, i, o):
        FLOPS[0] += 2 * o.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.register_forward_hook(lin)
        elif isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv)


def run_case(case, out_dir):
    cfg = dict(DEFAULTS)
    cfg.update(case["config"])
    gen = torch.Generator().manual_seed(case["seed"])
    torch.manual_seed(case["seed"])
    model = UNet2DConditionModel(cfg).eval()
    randomize(model, gen)
    b, h, w = case["batch"], case["height"], case["width"]
    t = {}
    t["input.sample"] = torch.randn(b, cfg["in_channels"], h, w, generator=gen)
    if case.get("float_timesteps"):
        t["input.timesteps"] = torch.rand(b, generator=gen) * 1000
    else:
        t["input.timesteps"] = torch.randint(0, 1000, (b,), generator=gen)
    if case.get("seq_len"):
        L = case["seq_len"]
        t["input.encoder_hidden_states"] = torch.randn(b, L, cfg["cross_attention_dim"], generator=gen)
        if case.get("mask"):
            m = torch.ones(b, L)
            for i in range(b):
                keep = max(1, L - 2 * i)
                m[i, keep:] = 0
            t["input.encoder_attention_mask"] = m
    if cfg["num_class_embeds"]:
        t["input.class_labels"] = torch.randint(0, cfg["num_class_embeds"], (b,), generator=gen)
    t["input.loss_weight"] = torch.randn(b, cfg["out_channels"], h, w, generator=gen)

    def run(m, dtype):
        x = t["input.sample"].to(dtype).clone().requires_grad_(True)
        ehs = t.get("input.encoder_hidden_states")
        mask = t.get("input.encoder_attention_mask")
        FLOPS[0] = 0
        y = m(x, t["input.timesteps"], None if ehs is None else ehs.to(dtype), mask, t.get("input.class_labels"))
        flops = FLOPS[0]
        (y * t["input.loss_weight"].to(dtype)).sum().backward()
        return y.detach(), x.grad.detach(), flops

    for k, v in model.state_dict().items():
        t["weight." + k] = v.clone()
    model64 = copy.deepcopy(model).double()
    hooks(model)
    y, g, flops = run(model, torch.float32)
    y64, g64, _ = run(model64, torch.float64)
    t["output.sample"], t["output.grad_sample"] = y, g
    t["output.sample_f64"], t["output.grad_sample_f64"] = y64, g64
    t["output.flops"] = torch.tensor(flops, dtype=torch.int64)
    save_safetensors("%s/%s.safetensors" % (out_dir, case["name"]), t)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: unet2d_reference.py OUT_DIR CASES.json\n")
        return 2
    torch.set_num_threads(1)  # the 2-core test machine runs other jobs; 2 OpenMP threads contend badly
    with open(sys.argv[2]) as f:
        cases = json.load(f)
    for case in cases:
        run_case(case, sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
