#!/usr/bin/python3
"""Reference outputs for tests/data/features_*_test.cpp, computed with torchaudio at test time.

Run with Debian's python (torch 1.13 + torchaudio 0.13):
    /usr/bin/python3 tests/data/make_feature_refs.py OUT.safetensors
Exit code 3 (and a line on stderr) when torchaudio cannot be imported; the tests then skip.

Writes one safetensors file (F32/F64 tensors, little-endian) whose __metadata__ holds, per case, the
JSON kwargs the reference was called with ("kwargs.<key>"), so the C++ side maps the same options:
    wave16k             (1, 16480)  int16-scale random + tones, seed 1234
    wave8k              (1, 8240)   same recipe at 8 kHz
    fbank.<name>        torchaudio.compliance.kaldi.fbank(wave, **kwargs)
    mfcc.<name>         torchaudio.compliance.kaldi.mfcc(wave, **kwargs)
    resample.input      (2, 4410) float in [-1, 1]
    resample.<a>_<b>    torchaudio.functional.resample(input, a, b) (lowpass 6, rolloff 0.99)
    resample.<a>_<b>.f64  the same on the float64 input (torchaudio builds its kernel in the wave's dtype)
    mel.<name>          torchaudio.functional.melscale_fbanks(...) transposed to (n_mels, n_freqs)
    logmel.wave         (1, 22050 * 0.5) float in [-1, 1]
    logmel.hifigan      HiFi-GAN meldataset.py mel_spectrogram of logmel.wave (n_fft 1024, hop 256,
                        80 mels, fmin 0, fmax 8000, librosa-equivalent Slaney filters)
"""
import json
import math
import struct
import sys

try:
    import torch
    import torchaudio
    import torchaudio.compliance.kaldi as kaldi
    import torchaudio.functional as AF
except Exception as e:  # noqa: BLE001
    sys.stderr.write("make_feature_refs.py: torchaudio unavailable: %s\n" % e)
    sys.exit(3)


def save_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        dtype = {torch.float32: "F32", torch.float64: "F64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make_wave(sr, seconds, seed):
    g = torch.Generator().manual_seed(seed)
    n = int(sr * seconds)
    t = torch.arange(n, dtype=torch.float64) / sr
    x = 1500.0 * torch.randn(n, generator=g, dtype=torch.float64)
    x += 6000.0 * torch.sin(2 * math.pi * 440.0 * t) + 3000.0 * torch.sin(2 * math.pi * 1733.0 * t)
    return x.round().clamp(-32768, 32767).float().unsqueeze(0)


FBANK_CASES = {
    "base80": dict(num_mel_bins=80, dither=0.0, energy_floor=0.0),
    "nosnip_hamming_energy": dict(num_mel_bins=40, snip_edges=False, window_type="hamming",
                                  use_energy=True, energy_floor=1.0),
    "hanning_htk_windowed_energy": dict(num_mel_bins=23, window_type="hanning", use_energy=True,
                                        htk_compat=True, raw_energy=False, energy_floor=0.0),
    "rect_nopow2_magnitude": dict(num_mel_bins=30, window_type="rectangular", round_to_power_of_two=False,
                                  use_power=False, low_freq=60.0, high_freq=-400.0),
    "blackman_nodc_nopreemph_cmn": dict(num_mel_bins=64, window_type="blackman", remove_dc_offset=False,
                                        preemphasis_coefficient=0.0, subtract_mean=True,
                                        frame_length=32.0, frame_shift=12.5),
    "linear_mel": dict(num_mel_bins=24, use_log_fbank=False, snip_edges=False),
    "sr8k_nosnip": dict(num_mel_bins=23, sample_frequency=8000.0, snip_edges=False, high_freq=3800.0),
}

MFCC_CASES = {
    "base13": dict(num_mel_bins=80, num_ceps=13, energy_floor=0.0),
    "energy_htk": dict(num_mel_bins=40, num_ceps=13, use_energy=True, htk_compat=True),
    "htk_noenergy": dict(num_mel_bins=23, num_ceps=13, htk_compat=True),
    "nosnip_nolifter_blackman": dict(num_mel_bins=40, num_ceps=20, snip_edges=False, cepstral_lifter=0.0,
                                     window_type="blackman", subtract_mean=True),
    "sr8k_energy": dict(num_mel_bins=23, num_ceps=13, sample_frequency=8000.0, use_energy=True),
}

RESAMPLE_CASES = [(16000, 8000), (44100, 16000), (8000, 22050), (22050, 16000), (16000, 24000), (48000, 44100)]

MEL_CASES = {
    # name: (n_freqs, f_min, f_max, n_mels, sample_rate, norm, mel_scale)
    "slaney_22k": (513, 0.0, 8000.0, 80, 22050, "slaney", "slaney"),
    "htk_22k": (513, 0.0, 8000.0, 80, 22050, "slaney", "htk"),
    "slaney_16k_nonorm": (257, 20.0, 7600.0, 40, 16000, None, "slaney"),
    "htk_24k_fmin": (1025, 55.0, 12000.0, 128, 24000, "slaney", "htk"),
}


def hifigan_mel(y, n_fft=1024, n_mels=80, sr=22050, hop=256, win=1024, fmin=0.0, fmax=8000.0):
    fb = AF.melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sr, norm="slaney", mel_scale="slaney").T
    pad = int((n_fft - hop) / 2)
    y = torch.nn.functional.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(y, n_fft, hop_length=hop, win_length=win, window=torch.hann_window(win), center=False,
                      pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    spec = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    return torch.log(torch.clamp(torch.matmul(fb, spec), min=1e-5))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make_feature_refs.py OUT.safetensors\n")
        return 2
    out = {}
    meta = {"torchaudio": torchaudio.__version__, "torch": torch.__version__}
    waves = {16000: make_wave(16000, 1.03, 1234), 8000: make_wave(8000, 1.03, 4321)}
    out["wave16k"] = waves[16000]
    out["wave8k"] = waves[8000]
    for kind, cases, fn in (("fbank", FBANK_CASES, kaldi.fbank), ("mfcc", MFCC_CASES, kaldi.mfcc)):
        for name, kw in cases.items():
            sr = int(kw.get("sample_frequency", 16000.0))
            out["%s.%s" % (kind, name)] = fn(waves[sr], **kw)
            meta["kwargs.%s.%s" % (kind, name)] = json.dumps(kw)

    g = torch.Generator().manual_seed(7)
    rin = torch.rand(2, 4410, generator=g) * 2 - 1
    out["resample.input"] = rin
    for a, b in RESAMPLE_CASES:
        out["resample.%d_%d" % (a, b)] = AF.resample(rin, a, b, lowpass_filter_width=6, rolloff=0.99)
        out["resample.%d_%d.f64" % (a, b)] = AF.resample(rin.double(), a, b, lowpass_filter_width=6, rolloff=0.99)

    for name, (nf, fmin, fmax, nm, sr, norm, scale) in MEL_CASES.items():
        out["mel.%s" % name] = AF.melscale_fbanks(nf, fmin, fmax, nm, sr, norm=norm, mel_scale=scale).T.contiguous()
        meta["kwargs.mel.%s" % name] = json.dumps(dict(n_freqs=nf, f_min=fmin, f_max=fmax, n_mels=nm,
                                                      sample_rate=sr, norm=norm or "none", mel_scale=scale))

    g = torch.Generator().manual_seed(11)
    t = torch.arange(11025, dtype=torch.float64) / 22050
    y = (0.3 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(11025, generator=g, dtype=torch.float64))
    y = y.float().unsqueeze(0)
    out["logmel.wave"] = y
    out["logmel.hifigan"] = hifigan_mel(y)[0].contiguous()

    save_safetensors(sys.argv[1], out, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
