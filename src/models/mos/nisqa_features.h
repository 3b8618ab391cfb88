// NISQA's front end with libtorch ops only (models do not link src/data or FFmpeg, STYLE.md rule 7):
//
//   resample_kaiser_best   windowed-sinc polyphase resampling, Kaiser window, as torchaudio's
//                          resample(resampling_method="sinc_interp_kaiser", lowpass_filter_width=64,
//                          rolloff=0.9475937167399596, beta=14.769656459379492), the parameters
//                          torchaudio documents as equivalent to resampy's "kaiser_best", which is
//                          librosa 0.8.1's default (what NISQA's env.yml pins). Neither bit-identical to
//                          resampy (its filter is tabulated and interpolated) nor to librosa >= 0.10's
//                          soxr_hq: the filters differ in the transition band (above 0.9476 x the lower
//                          Nyquist frequency) and in ripple, so predictions for resampled audio differ from
//                          the reference by that much (tests compare 48 kHz audio, no resampling). NISQA's
//                          configs (config/*.yaml) set ms_sr: null, i.e. no resampling at all: hop and
//                          window follow the file's own rate; this only runs for a checkpoint with an ms_sr.
//   mel_spectrogram_db     librosa.feature.melspectrogram(center=True, pad_mode="reflect", window="hann",
//                          power=1.0, norm="slaney", htk=False, fmin=0) then
//                          librosa.amplitude_to_db(ref=1.0, amin=1e-4, top_db=80.0), as NISQA's
//                          get_librosa_melspec. Computed in float64; librosa stores its STFT as complex64,
//                          which moves the dB values by at most 1.2e-5 dB on the test clips
//                          (tests/models/nisqa_reference.py records it).
//   segment_spec           NISQA's segment_specs: overlapping seg_length-frame windows every seg_hop frames.
//
// Ref: librosa 0.8.1 core/spectrum.py (stft, _spectrogram, amplitude_to_db, power_to_db), filters.py
//      (mel), core/convert.py (hz_to_mel, mel_to_hz, mel_frequencies); numpy.pad mode="reflect";
//      pytorch/audio torchaudio/functional/functional.py (_get_sinc_resample_kernel);
//      gabrielmittag/NISQA nisqa/NISQA_lib.py (get_librosa_melspec, segment_specs).
// Tests: tests/models/nisqa_test.cpp (hand-computed tables; NisqaReference against numpy and torchaudio).
#pragma once
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace mmref::models {

// Slaney mel scale (librosa htk=False): linear below 1 kHz (200/3 Hz per mel), logarithmic above.
double slaney_hz_to_mel(double hz);
double slaney_mel_to_hz(double mel);

// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney"): (n_mels, 1 + n_fft/2)
// float64. Filters above Nyquist (fmax > sr/2) are all zero, as librosa's "empty filters".
at::Tensor slaney_mel_filterbank(double sample_rate, int64_t n_fft, int64_t n_mels, double fmin, double fmax);

// numpy.pad(x, pad, mode="reflect") for a 1-D x, including pads longer than x (repeated reflection).
at::Tensor reflect_pad_numpy(const at::Tensor& x, int64_t pad);

// |librosa.stft(x, n_fft, hop, win_length, window="hann", center=True, pad_mode="reflect")|: the
// periodic Hann window of win_length samples centred in n_fft; (1 + n_fft/2, 1 + len/hop) float64.
at::Tensor stft_magnitude(const at::Tensor& wave, int64_t n_fft, int64_t hop_length, int64_t win_length);

// librosa.amplitude_to_db(S, ref, amin, top_db): 20 log10(max(amin, S)) - 20 log10(max(amin, ref)),
// then floored at (max - top_db) over the whole array (top_db <= 0: no floor).
at::Tensor amplitude_to_db(const at::Tensor& s, double ref = 1.0, double amin = 1e-4, double top_db = 80.0);

struct NisqaMelOptions {
  double sample_rate = 48000;  // the rate of the wave given to mel_spectrogram_db
  int64_t n_fft = 4096;
  int64_t hop_length = 480;  // samples
  int64_t win_length = 960;  // samples, <= n_fft
  int64_t n_mels = 48;
  double fmax = 20000;
};

// 1-D wave -> (n_mels, 1 + len/hop) dB mel spectrogram, float64, on the wave's device.
at::Tensor mel_spectrogram_db(const at::Tensor& wave, const NisqaMelOptions& o);

// (H, T) spectrogram -> (ceil((T - seg_length + 1) / seg_hop), 1, H, seg_length); T >= seg_length.
at::Tensor segment_spec(const at::Tensor& spec, int64_t seg_length, int64_t seg_hop);

// 1-D wave at from_hz -> ceil(len * to_hz / from_hz) samples at to_hz, float64 (see the top of this file).
at::Tensor resample_kaiser_best(const at::Tensor& wave, int64_t from_hz, int64_t to_hz);

}  // namespace mmref::models
