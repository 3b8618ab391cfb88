#!/usr/bin/env python3
"""Reference data for mmref's NISQA port (tests/models/nisqa_test.cpp, suite NisqaReference).

A plain-PyTorch re-implementation of the NISQA network (gabrielmittag/NISQA nisqa/NISQA_lib.py: NISQA,
NISQA_DIM, Framewise + AdaptCNN, TimeDependency + SelfAttention, Pooling + PoolAttFF/PoolAtt, with the
same module names, so state_dict() keys are the released checkpoints' keys) and its librosa front end
written in numpy from librosa 0.8.1's definitions (librosa is not installed here): reflect-padded
centred STFT with a periodic Hann window zero-padded to n_fft, Slaney mel filterbank, amplitude_to_db
(ref 1, amin 1e-4, top_db 80), then NISQA's segment_specs.

Writes into OUT_DIR:
  nisqa_tts.tar, nisqa_dim.tar, nisqa_alt.tar   torch.save({'args', 'model_state_dict', extras}) exactly
                                                like NISQA_model._saveResults (seeded random weights, BN
                                                statistics calibrated on the test audio)
  ref.safetensors (written by hand)             input.wave.<i> (48 kHz, F32); output.<model>.mel.<i> (F64
                                                dB mel); output.<model>.pred.<i> (one clip per forward, as
                                                NISQA predicts with its dataset padding to
                                                ms_max_segments); output.<model>.batch (all clips in one
                                                padded batch); with torchaudio: input.resample.<from> and
                                                output.resample.<from>_<to> (torchaudio sinc_interp_kaiser,
                                                librosa/resampy kaiser_best parameters)
Exit status 3: numpy or torch missing (the C++ test skips).
Usage: /usr/bin/python3 tests/models/nisqa_reference.py OUT_DIR
"""
import copy
import datetime
import json
import math
import os
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
except ImportError as e:  # pragma: no cover
    sys.stderr.write(f"numpy/torch unavailable: {e}\n")
    sys.exit(3)


# ---- librosa 0.8.1 front end in numpy --------------------------------------------------------------

def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr, n_fft, n_mels, fmin, fmax):
    fft_hz = np.linspace(0, float(sr) / 2, 1 + n_fft // 2, endpoint=True)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_hz)
    ramps = np.subtract.outer(mel_hz, fft_hz)
    w = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        w[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    w *= (2.0 / (mel_hz[2:n_mels + 2] - mel_hz[:n_mels]))[:, None]
    return w


def stft_mag(y, n_fft, hop, win, dtype=np.float64):
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    lpad = (n_fft - win) // 2
    fw = np.zeros(n_fft)
    fw[lpad:lpad + win] = window
    yp = np.pad(y.astype(dtype), n_fft // 2, mode="reflect")
    n_frames = 1 + (len(yp) - n_fft) // hop
    frames = np.stack([yp[t * hop:t * hop + n_fft] for t in range(n_frames)], axis=1)  # (n_fft, T)
    spec = np.fft.rfft(fw.astype(dtype)[:, None] * frames, axis=0)
    if dtype == np.float32:
        spec = spec.astype(np.complex64)  # librosa 0.8.1 stores the STFT as complex64
    return np.abs(spec)


def amplitude_to_db(s, amin=1e-4, top_db=80.0):
    p = np.square(np.abs(s))
    db = 10.0 * np.log10(np.maximum(amin * amin, p)) - 10.0 * np.log10(max(amin * amin, 1.0))
    return np.maximum(db, db.max() - top_db)


def melspec_db(y, sr, a, dtype=np.float64):
    hop = int(sr * a["ms_hop_length"])
    win = int(sr * a["ms_win_length"])
    fb = mel_filterbank(sr, a["ms_n_fft"], a["ms_n_mels"], 0.0, a["ms_fmax"])
    s = fb.astype(dtype) @ stft_mag(y, a["ms_n_fft"], hop, win, dtype)
    return amplitude_to_db(s)


def segment_specs(spec, seg_length, seg_hop, max_length):
    x = torch.tensor(spec)
    n_wins = x.shape[1] - (seg_length - 1)
    idx = torch.arange(seg_length).unsqueeze(0) + torch.arange(n_wins).unsqueeze(1)
    x = x.transpose(1, 0)[idx, :].unsqueeze(1).transpose(3, 2)  # (n, 1, H, seg)
    if seg_hop > 1:
        x = x[::seg_hop]
        n_wins = int(np.ceil(n_wins / seg_hop))
    padded = torch.zeros((max_length,) + tuple(x.shape[1:]))
    padded[:n_wins] = x
    return padded, n_wins


# ---- the NISQA network ------------------------------------------------------------------------------

class AdaptCNN(nn.Module):
    def __init__(self, a):
        super().__init__()
        k = a["cnn_kernel_size"]
        k = (k, k) if isinstance(k, int) else tuple(k)
        pad = (1, 0) if k[1] == 1 else (1, 1)
        c1, c2, c3 = a["cnn_c_out_1"], a["cnn_c_out_2"], a["cnn_c_out_3"]
        self.pools = [tuple(a["cnn_pool_1"]), tuple(a["cnn_pool_2"]), tuple(a["cnn_pool_3"])]
        chans = [(1, c1), (c1, c2), (c2, c3), (c3, c3), (c3, c3), (c3, c3)]
        for i, (cin, cout) in enumerate(chans):
            if i < 5:
                conv = nn.Conv2d(cin, cout, k, padding=pad)
            else:
                conv = nn.Conv2d(cin, cout, (k[0], self.pools[2][1]), padding=(1, 0))
            setattr(self, f"conv{i + 1}", conv)
            setattr(self, f"bn{i + 1}", nn.BatchNorm2d(cout))
        self.dropout = nn.Dropout2d(p=a["cnn_dropout"])
        self.flat = c3 * self.pools[2][0]
        self.fc_out_h = a["cnn_fc_out_h"]
        if self.fc_out_h:
            self.fc = nn.Linear(self.flat, self.fc_out_h)
        self.fan_out = self.fc_out_h or self.flat

    def _block(self, i, x):
        return F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))

    def forward(self, x):
        x = F.adaptive_max_pool2d(self._block(1, x), self.pools[0])
        x = F.adaptive_max_pool2d(self._block(2, x), self.pools[1])
        x = self._block(3, self.dropout(x))
        x = self._block(4, self.dropout(x))
        x = F.adaptive_max_pool2d(x, self.pools[2])
        x = self._block(5, self.dropout(x))
        x = self._block(6, self.dropout(x))
        x = x.view(-1, self.flat)
        return self.fc(x) if self.fc_out_h else x


class Framewise(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.model = AdaptCNN(a)

    def forward(self, x, n_wins):
        packed = pack_padded_sequence(x, n_wins, batch_first=True, enforce_sorted=False)
        y = self.model(packed.data)
        y = PackedSequence(y, batch_sizes=packed.batch_sizes, sorted_indices=packed.sorted_indices,
                           unsorted_indices=packed.unsorted_indices)
        y, _ = pad_packed_sequence(y, batch_first=True, padding_value=0.0, total_length=int(n_wins.max()))
        return y


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout, max_len=3000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pos = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe.unsqueeze(0).transpose(0, 1))

    def forward(self, x):
        return self.dropout(x + self.pe[:x.size(0), :])


class SelfAttentionLayer(nn.Module):
    def __init__(self, d_model, nhead, sa_h, dropout):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, sa_h)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(sa_h, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src, n_wins):
        mask = ~(torch.arange(src.shape[0])[None, :] < n_wins[:, None].to(torch.long))  # (B, T)
        src = self.norm1(src + self.dropout1(self.self_attn(src, src, src, key_padding_mask=mask)[0]))
        src = self.norm2(src + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(src))))))
        return src, n_wins


class SelfAttention(nn.Module):
    def __init__(self, input_size, d_model, nhead, pos_enc, num_layers, sa_h, dropout):
        super().__init__()
        layer = SelfAttentionLayer(d_model, nhead, sa_h, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear = nn.Linear(input_size, d_model)
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])
        self.pos_encoder = PositionalEncoding(d_model, dropout) if pos_enc else nn.Identity()
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, x, n_wins):
        out = self.pos_encoder(self.norm1(self.linear(x).transpose(1, 0)))  # (T, B, D)
        for layer in self.layers:
            out, n_wins = layer(out, n_wins)
        return out.transpose(1, 0), n_wins


class TimeDependency(nn.Module):
    def __init__(self, input_size, a, prefix):
        super().__init__()
        kind = a[prefix]
        if kind == "self_att":
            p = prefix + "_sa_"
            self.model = SelfAttention(input_size, a[p + "d_model"], a[p + "nhead"], a[p + "pos_enc"],
                                       a[p + "num_layers"], a[p + "h"], a[p + "dropout"])
            self.fan_out = a[p + "d_model"]
        else:
            assert kind in (None, "skip")
            self.model = None
            self.fan_out = input_size

    def forward(self, x, n_wins):
        return (x, n_wins) if self.model is None else self.model(x, n_wins)


class PoolAttFF(nn.Module):
    def __init__(self, d, h, dropout):
        super().__init__()
        self.linear1 = nn.Linear(d, h)
        self.linear2 = nn.Linear(h, 1)
        self.linear3 = nn.Linear(d, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, n_wins):
        att = self.linear2(self.dropout(F.relu(self.linear1(x)))).transpose(2, 1)
        valid = torch.arange(att.shape[2])[None, :] < n_wins[:, None].to(torch.long)
        att[~valid.unsqueeze(1)] = float("-inf")
        return self.linear3(torch.bmm(F.softmax(att, dim=2), x).squeeze(1))


class PoolAtt(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.linear1 = nn.Linear(d, 1)
        self.linear2 = nn.Linear(d, 1)

    def forward(self, x, n_wins):
        att = self.linear1(x).transpose(2, 1)
        valid = torch.arange(att.shape[2])[None, :] < n_wins[:, None].to(torch.long)
        att[~valid.unsqueeze(1)] = float("-inf")
        return self.linear2(torch.bmm(F.softmax(att, dim=2), x).squeeze(1))


class Pooling(nn.Module):
    def __init__(self, d, a):
        super().__init__()
        assert a["pool"] == "att"
        h = a["pool_att_h"]
        self.model = PoolAtt(d) if h is None else PoolAttFF(d, h, a["pool_att_dropout"])

    def forward(self, x, n_wins):
        return self.model(x, n_wins)


class NISQA(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.cnn = Framewise(a)
        self.time_dependency = TimeDependency(self.cnn.model.fan_out, a, "td")
        self.time_dependency_2 = TimeDependency(self.time_dependency.fan_out, a, "td_2")
        self.pool = Pooling(self.time_dependency_2.fan_out, a)

    def forward(self, x, n_wins):
        x = self.cnn(x, n_wins)
        x, n_wins = self.time_dependency(x, n_wins)
        x, n_wins = self.time_dependency_2(x, n_wins)
        return self.pool(x, n_wins)


class NISQA_DIM(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.cnn = Framewise(a)
        self.time_dependency = TimeDependency(self.cnn.model.fan_out, a, "td")
        pool = Pooling(self.time_dependency.fan_out, a)
        self.pool_layers = nn.ModuleList([copy.deepcopy(pool) for _ in range(5)])

    def forward(self, x, n_wins):
        x = self.cnn(x, n_wins)
        x, n_wins = self.time_dependency(x, n_wins)
        return torch.cat([p(x, n_wins) for p in self.pool_layers], dim=1)


# ---- args, weights, audio --------------------------------------------------------------------------

def make_args(model, **over):
    a = {
        "name": "mmref_nisqa_reference", "mode": "main", "pretrained_model": False,
        "data_dir": "/data/NISQA_Corpus", "output_dir": "/data/runs", "csv_file": "NISQA_corpus_file.csv",
        "csv_con": None, "csv_deg": "filepath_deg", "csv_mos_train": "mos", "csv_mos_val": "mos",
        "csv_db_train": ["NISQA_TRAIN_SIM", "NISQA_TRAIN_LIVE"], "csv_db_val": ["NISQA_VAL_SIM"],
        "tr_epochs": 500, "tr_early_stop": 20, "tr_bs": 40, "tr_bs_val": 40, "tr_lr": 0.001,
        "tr_lr_patience": 15, "tr_num_workers": 4, "tr_parallel": True, "tr_ds_to_memory": False,
        "tr_ds_to_memory_workers": 0, "tr_device": None, "tr_checkpoint": "every_epoch", "tr_verbose": 2,
        "tr_bias_mapping": None, "tr_bias_min_r": None, "tr_bias_anchor_db": None,
        "ms_sr": None, "ms_fmax": 20000, "ms_n_fft": 4096, "ms_hop_length": 0.01, "ms_win_length": 0.02,
        "ms_n_mels": 48, "ms_seg_length": 15, "ms_seg_hop_length": 4, "ms_max_segments": 1300,
        "ms_channel": None, "model": model,
        "cnn_model": "adapt", "cnn_c_out_1": 16, "cnn_c_out_2": 32, "cnn_c_out_3": 64,
        "cnn_kernel_size": (3, 3), "cnn_dropout": 0.2, "cnn_fc_out_h": None,
        "cnn_pool_1": [24, 7], "cnn_pool_2": [12, 5], "cnn_pool_3": [6, 3],
        "td": "self_att", "td_sa_d_model": 64, "td_sa_nhead": 1, "td_sa_pos_enc": False,
        "td_sa_num_layers": 2, "td_sa_h": 64, "td_sa_dropout": 0.1, "td_lstm_h": None,
        "td_lstm_num_layers": None, "td_lstm_dropout": None, "td_lstm_bidirectional": None,
        "td_2": "skip", "td_2_sa_d_model": None, "td_2_sa_nhead": None, "td_2_sa_pos_enc": None,
        "td_2_sa_num_layers": None, "td_2_sa_h": None, "td_2_sa_dropout": None, "td_2_lstm_h": None,
        "td_2_lstm_num_layers": None, "td_2_lstm_dropout": None, "td_2_lstm_bidirectional": None,
        "pool": "att", "pool_att_h": 128, "pool_att_dropout": 0,
        "now": datetime.datetime(2021, 3, 1, 12, 30, 5),
        "n_channel": None, "dim": model == "NISQA_DIM", "double_ended": False, "csv_ref": None,
    }
    a.update(over)
    return a


MODELS = {
    # nisqa_tts.tar / nisqa_mos_only.tar layout: NISQA, one output.
    "tts": make_args("NISQA"),
    # nisqa.tar layout: NISQA_DIM, MOS + NOI/DIS/COL/LOUD.
    "dim": make_args("NISQA_DIM"),
    # Other branches: smaller front end, width-1 kernels, CNN fc, two heads, positional encoding, a second
    # self-attention stage, PoolAtt (no feed-forward), another segment hop.
    "alt": make_args("NISQA", ms_n_fft=2048, ms_n_mels=32, ms_fmax=16000, ms_seg_length=11,
                     ms_seg_hop_length=2, ms_win_length=0.025, cnn_c_out_1=8, cnn_c_out_2=12, cnn_c_out_3=16,
                     cnn_kernel_size=[3, 1], cnn_pool_1=[16, 5], cnn_pool_2=[8, 4], cnn_pool_3=[4, 2],
                     cnn_fc_out_h=40, td_sa_d_model=32, td_sa_nhead=2, td_sa_pos_enc=True, td_sa_num_layers=1,
                     td_sa_h=48, td_2="self_att", td_2_sa_d_model=16, td_2_sa_nhead=4, td_2_sa_pos_enc=False,
                     td_2_sa_num_layers=2, td_2_sa_h=24, td_2_sa_dropout=0.1, pool_att_h=None),
}


def make_waves(sr=48000):
    rng = np.random.default_rng(20210301)
    waves = []
    for dur, f0 in ((1.25, 120.0), (0.6, 210.0), (2.1, 95.0)):
        t = np.arange(int(dur * sr)) / sr
        pitch = f0 * (1 + 0.15 * np.sin(2 * np.pi * 2.5 * t))
        phase = 2 * np.pi * np.cumsum(pitch) / sr
        voiced = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 40) if k * f0 < 9000)
        env = np.abs(np.sin(2 * np.pi * 3.3 * t)) ** 0.7
        y = 0.25 * env * voiced + 0.01 * rng.standard_normal(len(t))
        y[int(0.3 * len(t)):int(0.36 * len(t))] *= 0.001  # a near-silent gap
        waves.append(y.astype(np.float32))
    return waves


def build(key, a, calib):
    torch.manual_seed({"tts": 11, "dim": 12, "alt": 13}[key])
    m = NISQA_DIM(a) if a["model"] == "NISQA_DIM" else NISQA(a)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Linear):  # also un-ties the deep-copied pools of NISQA_DIM
                mod.weight.normal_(0.0, 1.0 / math.sqrt(mod.in_features))
                mod.bias.uniform_(-0.2, 0.2)
            if isinstance(mod, nn.MultiheadAttention):
                mod.in_proj_bias.uniform_(-0.1, 0.1)
            if isinstance(mod, nn.LayerNorm):
                mod.weight.uniform_(0.8, 1.2)
                mod.bias.uniform_(-0.1, 0.1)
        # BatchNorm statistics from the test audio (cumulative average), then perturbed, so activations
        # stay O(1) and eval mode is not an identity.
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = None
                mod.weight.uniform_(0.8, 1.2)
                mod.bias.uniform_(-0.1, 0.1)
        m.train()
        m.cnn.model(calib)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = 0.1
                mod.running_mean.add_(0.05 * torch.randn_like(mod.running_mean))
                mod.running_var.mul_(torch.empty_like(mod.running_var).uniform_(0.8, 1.25))
    return m.eval()


def save_checkpoint(path, m, a):
    opt = torch.optim.Adam(m.parameters(), lr=a["tr_lr"])
    torch.save({
        "runname": a["name"], "epoch": 42, "model_args": {k: v for k, v in a.items() if k[:3] in ("ms_", "cnn", "td", "td_", "poo")},
        "args": a, "model_state_dict": m.state_dict(), "optimizer_state_dict": opt.state_dict(),
        "db_results": [{"db": "NISQA_VAL_SIM", "r_p_file": 0.9, "rmse_map_file": 0.4}],
        "results": {"runname": a["name"], "epoch": "00042", "loss": "0.31"}, "model_name": a["model"],
    }, path)


def write_safetensors(path, tensors, metadata):
    names = {np.float32: "F32", np.float64: "F64", np.int64: "I64"}
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        arr = np.ascontiguousarray(tensors[k])
        b = arr.tobytes()
        header[k] = {"dtype": names[arr.dtype.type], "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    sr = 48000
    waves = make_waves(sr)
    tensors = {f"input.wave.{i}": w for i, w in enumerate(waves)}
    meta = {"models": ",".join(MODELS), "n_waves": str(len(waves)), "sample_rate": str(sr)}
    worst32 = 0.0
    for key, a in MODELS.items():
        specs = [melspec_db(w, sr, a) for w in waves]
        for i, (w, s) in enumerate(zip(waves, specs)):
            tensors[f"output.{key}.mel.{i}"] = s
            worst32 = max(worst32, float(np.abs(melspec_db(w, sr, a, np.float32) - s).max()))
        segs = [segment_specs(s, a["ms_seg_length"], a["ms_seg_hop_length"], a["ms_max_segments"]) for s in specs]
        calib = torch.cat([x[:n] for x, n in segs]).float()
        m = build(key, a, calib)
        save_checkpoint(os.path.join(out_dir, f"nisqa_{key}.tar"), m, a)
        with torch.no_grad():
            for i, (x, n) in enumerate(segs):
                y = m(x.unsqueeze(0), torch.tensor([n]))
                tensors[f"output.{key}.pred.{i}"] = y[0].numpy().astype(np.float32)
            xb = torch.stack([x for x, _ in segs])
            nb = torch.tensor([n for _, n in segs])
            tensors[f"output.{key}.batch"] = m(xb, nb).numpy().astype(np.float32)
    meta["mel_max_abs_db_float32_stft_vs_float64"] = repr(worst32)
    try:
        import torchaudio.functional as AF
        rng = np.random.default_rng(7)
        for src, dst in ((16000, 48000), (44100, 48000), (48000, 16000)):
            t = np.arange(int(0.25 * src)) / src
            x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t) + 0.05 * rng.standard_normal(len(t))
            xt = torch.tensor(x, dtype=torch.float64)
            kw = dict(lowpass_filter_width=64, rolloff=0.9475937167399596, beta=14.769656459379492)
            try:
                y = AF.resample(xt, src, dst, resampling_method="sinc_interp_kaiser", **kw)
            except ValueError:  # torchaudio < 2.1 names it kaiser_window
                y = AF.resample(xt, src, dst, resampling_method="kaiser_window", **kw)
            tensors[f"input.resample.{src}"] = x
            tensors[f"output.resample.{src}_{dst}"] = y.numpy()
        meta["torchaudio"] = "1"
    except ImportError:
        meta["torchaudio"] = "0"
    write_safetensors(os.path.join(out_dir, "ref.safetensors"), tensors, meta)


if __name__ == "__main__":
    main()
