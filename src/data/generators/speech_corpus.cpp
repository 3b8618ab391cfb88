// `speech` and `speech_real` corpora (see corpus.h).
//
// speech: make_sentences(seed, count) gives `count` distinct sentences, one per utterance, so sentences
// are disjoint across splits by construction. About 5% of the utterances (at least one) are spoken by
// the held-out voice espeak-ng:en+f3 and form split `heldout`; the rest are split 80/10/10 into
// train/dev/test and spoken by the other voices in a fixed mix: 60% espeak-ng (9 voices, rate
// 140..200 wpm, pitch 30..70), 25% flite (kal, awb, rms, slt), 15% festival (kal_diphone,
// cmu_us_slt_arctic_hts). Why this mix: espeak-ng takes ~20 ms per sentence, flite ~50 ms and
// festival ~300-350 ms (text2wave start-up dominates) on the 2-core dev machine, so festival is kept
// small. Each synthesizer writes a temp wav which is resampled to opt.sample_rate mono with FFmpeg
// (load_audio) and saved as wavs/<id>.wav.
// Outputs: wavs/*.wav, {train,dev,test,heldout}.jsonl (path, text, duration, speaker =
// "synthesizer:voice", split; extra: rate, pitch), all.jsonl, metadata.csv (LJSpeech: id|text|text).
//
// speech_real: cards/ and librivox/ of pocketsphinx-testdata (10 utterances with transcripts),
// resampled to wavs/*.wav, manifest all.jsonl (split "test") and metadata.csv.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>

#include <ATen/core/Tensor.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/manifest.h"
#include "data/generators/generators.h"
#include "data/media/audio_io.h"

namespace mmref::data::gen {

namespace {

namespace sfs = std::filesystem;

struct Voice {
  std::string synth;  // "espeak-ng", "flite", "festival"
  std::string name;   // synthesizer voice name
};

const std::vector<std::string> kEspeakVoices = {"en-us",  "en",    "en-gb-x-rp", "en+m3",   "en-gb-scotland",
                                                "en-029", "en+f2", "en+f4",      "en-us+m5"};
const std::vector<std::string> kFliteVoices = {"kal", "awb", "rms", "slt"};
const std::vector<std::string> kFestivalVoices = {"kal_diphone", "cmu_us_slt_arctic_hts"};
const Voice kHeldoutVoice = {"espeak-ng", "en+f3"};

// Throws naming the Debian package when a synthesizer or festival voice is absent.
void check_synthesizers() {
  std::vector<std::string> missing;
  if (find_program("espeak-ng").empty()) missing.push_back("espeak-ng");
  if (find_program("flite").empty()) missing.push_back("flite");
  if (find_program("text2wave").empty()) missing.push_back("festival");
  if (!sfs::exists("/usr/share/festival/voices/english/kal_diphone")) missing.push_back("festvox-kallpc16k");
  if (!sfs::exists("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"))
    missing.push_back("festvox-us-slt-hts");
  if (!missing.empty()) {
    std::string pk;
    for (const auto& m : missing) pk += " " + m;
    MMREF_FAIL("speech corpus: synthesizer packages missing:{} (install with: apt-get install{})", pk, pk);
  }
}

struct Utterance {
  std::string id, text, split;
  Voice voice;
  int rate = 0, pitch = 0;  // espeak-ng only
  double duration = 0;
};

void synthesize(const Utterance& u, const std::string& tmp_wav, const std::string& tmp_txt) {
  if (u.voice.synth == "espeak-ng") {
    run_program({"espeak-ng", "-w", tmp_wav, "-v", u.voice.name, "-s", std::to_string(u.rate), "-p",
                 std::to_string(u.pitch), u.text});
  } else if (u.voice.synth == "flite") {
    run_program({"flite", "-voice", u.voice.name, "-t", u.text, "-o", tmp_wav});
  } else {
    fs::atomic_write(tmp_txt, u.text + "\n");
    run_program({"text2wave", "-eval", "(voice_" + u.voice.name + ")", "-o", tmp_wav, tmp_txt});
  }
}

// Resamples `src` to mono `sample_rate` and writes `dst`; returns the duration in seconds.
double convert_wav(const std::string& src, const std::string& dst, int sample_rate) {
  AudioOptions ao;
  ao.sample_rate = sample_rate;
  ao.channels = 1;
  at::Tensor wav = load_audio(src, ao);
  save_audio(dst, wav, sample_rate);
  return static_cast<double>(wav.size(1)) / sample_rate;
}

std::string csv_field(const std::string& s) {
  std::string t = s;
  for (char& c : t) {
    if (c == '|' || c == '\n') c = ' ';
  }
  return t;
}

void write_outputs(const std::string& out, const std::vector<Utterance>& utts,
                   const std::vector<std::string>& splits, std::vector<std::string>* files) {
  std::vector<ManifestEntry> all;
  std::string csv;
  for (const auto& u : utts) {
    ManifestEntry e;
    e.path = out + "/wavs/" + u.id + ".wav";
    e.text = u.text;
    e.speaker = u.voice.synth + ":" + u.voice.name;
    e.split = u.split;
    e.duration = u.duration;
    e.extra = nlohmann::json::object();
    if (u.rate > 0) {
      e.extra["rate"] = u.rate;
      e.extra["pitch"] = u.pitch;
    }
    all.push_back(e);
    csv += u.id + "|" + csv_field(u.text) + "|" + csv_field(u.text) + "\n";
    files->push_back("wavs/" + u.id + ".wav");
  }
  for (const auto& s : splits) {
    std::vector<ManifestEntry> part;
    for (const auto& e : all) {
      if (e.split == s) part.push_back(e);
    }
    write_manifest(out + "/" + s + ".jsonl", part);
    files->push_back(s + ".jsonl");
  }
  write_manifest(out + "/all.jsonl", all);
  fs::atomic_write(out + "/metadata.csv", csv);
  files->push_back("all.jsonl");
  files->push_back("metadata.csv");
}

// Converts/synthesises every utterance in parallel, filling durations; prints progress unless quiet.
void run_all(std::vector<Utterance>& utts, const CorpusOptions& opt, const std::string& label,
             const std::function<void(Utterance&, const std::string& tmp_dir)>& make_one) {
  const std::string tmp_dir = fs::make_temp_dir("mmref_speech_");
  std::atomic<int64_t> done{0};
  std::mutex mu;
  try {
    parallel_for(static_cast<int64_t>(utts.size()), opt.threads, [&](int64_t i) {
      make_one(utts[static_cast<size_t>(i)], tmp_dir);
      int64_t d = ++done;
      if (!opt.quiet && (d % 200 == 0 || d == static_cast<int64_t>(utts.size()))) {
        std::lock_guard<std::mutex> lock(mu);
        std::cerr << fmt::format("{}: {}/{} utterances\n", label, d, utts.size());
      }
    });
  } catch (...) {
    std::error_code ec;
    sfs::remove_all(tmp_dir, ec);
    throw;
  }
  std::error_code ec;
  sfs::remove_all(tmp_dir, ec);
}

}  // namespace

CorpusResult make_speech(const CorpusOptions& opt) {
  check_synthesizers();
  const int64_t n = opt.count > 0 ? opt.count : 2000;
  if (n < 4) MMREF_FAIL("speech corpus: count must be at least 4 (one utterance per split), got {}", n);
  const std::vector<std::string> sentences = make_sentences(opt.seed, n);

  // Split sizes: heldout ~5%, dev ~10%, test ~10% (each at least 1), train the rest.
  auto frac = [&](double f) {
    return std::max<int64_t>(1, static_cast<int64_t>(f * static_cast<double>(n) + 0.5));
  };
  const int64_t n_held = frac(0.05), n_dev = frac(0.10), n_test = frac(0.10);
  const int64_t n_train = n - n_held - n_dev - n_test;
  if (n_train < 1) MMREF_FAIL("speech corpus: count {} is too small for four splits", n);

  Rng rng(derive_seed(opt.seed, /*stream=*/2, 0));
  std::vector<std::string> split_of;
  for (int64_t i = 0; i < n_train; ++i) split_of.push_back("train");
  for (int64_t i = 0; i < n_dev; ++i) split_of.push_back("dev");
  for (int64_t i = 0; i < n_test; ++i) split_of.push_back("test");
  for (int64_t i = 0; i < n_held; ++i) split_of.push_back("heldout");
  rng.shuffle(split_of);

  // Synthesizer of each non-heldout utterance: exact 60/25/15 proportions, shuffled.
  const int64_t n_seen = n - n_held;
  const int64_t n_flite = static_cast<int64_t>(0.25 * static_cast<double>(n_seen) + 0.5);
  const int64_t n_fest = static_cast<int64_t>(0.15 * static_cast<double>(n_seen) + 0.5);
  std::vector<int> synth_of;
  for (int64_t i = 0; i < n_seen; ++i) synth_of.push_back(i < n_flite ? 1 : i < n_flite + n_fest ? 2 : 0);
  rng.shuffle(synth_of);

  std::vector<Utterance> utts(static_cast<size_t>(n));
  size_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    Utterance& u = utts[static_cast<size_t>(i)];
    u.id = fmt::format("utt_{:06d}", i);
    u.text = sentences[static_cast<size_t>(i)];
    u.split = split_of[static_cast<size_t>(i)];
    Rng vr(derive_seed(opt.seed, /*stream=*/3, static_cast<uint64_t>(i)));
    if (u.split == "heldout") {
      u.voice = kHeldoutVoice;
    } else {
      int s = synth_of[k++];
      if (s == 0) u.voice = {"espeak-ng", vr.pick(kEspeakVoices)};
      if (s == 1) u.voice = {"flite", vr.pick(kFliteVoices)};
      if (s == 2) u.voice = {"festival", vr.pick(kFestivalVoices)};
    }
    if (u.voice.synth == "espeak-ng") {
      u.rate = static_cast<int>(vr.range(140, 200));
      u.pitch = static_cast<int>(vr.range(30, 70));
    }
  }

  fs::make_dirs(opt.out + "/wavs");
  run_all(utts, opt, "speech", [&](Utterance& u, const std::string& tmp_dir) {
    const std::string tmp_wav = tmp_dir + "/" + u.id + ".wav";
    const std::string tmp_txt = tmp_dir + "/" + u.id + ".txt";
    synthesize(u, tmp_wav, tmp_txt);
    u.duration = convert_wav(tmp_wav, opt.out + "/wavs/" + u.id + ".wav", opt.sample_rate);
    std::remove(tmp_wav.c_str());
    std::remove(tmp_txt.c_str());
  });

  CorpusResult r;
  write_outputs(opt.out, utts, {"train", "dev", "test", "heldout"}, &r.files);
  std::map<std::string, int64_t> split_n, synth_n;
  double hours = 0;
  for (const auto& u : utts) {
    split_n[u.split]++;
    synth_n[u.voice.synth]++;
    hours += u.duration / 3600.0;
  }
  r.stats["splits"] = split_n;
  r.stats["synthesizers"] = synth_n;
  r.stats["hours"] = hours;
  r.summary = fmt::format(
      "speech: {} utterances ({:.2f} h, {} Hz): train {}, dev {}, test {}, heldout {} (voice {}:{}); "
      "espeak-ng {}, flite {}, festival {}",
      n, hours, opt.sample_rate, split_n["train"], split_n["dev"], split_n["test"], split_n["heldout"],
      kHeldoutVoice.synth, kHeldoutVoice.name, synth_n["espeak-ng"], synth_n["flite"], synth_n["festival"]);
  return r;
}

CorpusResult make_speech_real(const CorpusOptions& opt) {
  const std::string root = "/usr/share/pocketsphinx/test/data";
  if (!sfs::exists(root + "/cards/cards.transcription")) {
    MMREF_FAIL(
        "speech_real corpus: pocketsphinx-testdata is not installed ({} is missing); install it with: "
        "apt-get install pocketsphinx-testdata",
        root);
  }
  // "<s> ten of clubs </s> (001)" -> ("001", "ten of clubs")
  std::vector<Utterance> utts;
  std::vector<std::string> sources;
  for (const std::string set : {"cards", "librivox"}) {
    const std::string tr =
        set == "cards" ? root + "/cards/cards.transcription" : root + "/librivox/transcription";
    std::istringstream in(fs::read_file(tr));
    std::string line;
    while (std::getline(in, line)) {
      auto open = line.rfind('(');
      auto close = line.rfind(')');
      if (open == std::string::npos || close == std::string::npos || close < open) continue;
      std::string id = line.substr(open + 1, close - open - 1);
      std::string text = line.substr(0, open);
      for (const std::string tag : {"<s>", "</s>"}) {
        for (auto p = text.find(tag); p != std::string::npos; p = text.find(tag)) text.erase(p, tag.size());
      }
      std::istringstream ws(text);
      std::string w, clean;
      while (ws >> w) clean += (clean.empty() ? "" : " ") + w;
      const std::string src = root + "/" + set + "/" + id + ".wav";
      if (clean.empty() || !sfs::exists(src)) continue;
      Utterance u;
      u.id = set + "_" + id;
      u.text = clean;
      u.split = "test";
      u.voice = {"pocketsphinx-testdata", set};
      utts.push_back(u);
      sources.push_back(src);
    }
  }
  if (utts.empty()) MMREF_FAIL("speech_real corpus: no transcribed wavs found under {}", root);
  if (opt.count > 0 && static_cast<int64_t>(utts.size()) > opt.count) {
    utts.resize(static_cast<size_t>(opt.count));
    sources.resize(static_cast<size_t>(opt.count));
  }
  fs::make_dirs(opt.out + "/wavs");
  std::map<std::string, std::string> src_of;
  for (size_t i = 0; i < utts.size(); ++i) src_of[utts[i].id] = sources[i];
  run_all(utts, opt, "speech_real", [&](Utterance& u, const std::string&) {
    u.duration = convert_wav(src_of.at(u.id), opt.out + "/wavs/" + u.id + ".wav", opt.sample_rate);
  });
  CorpusResult r;
  write_outputs(opt.out, utts, {"test"}, &r.files);
  double secs = 0;
  for (const auto& u : utts) secs += u.duration;
  r.stats["utterances"] = utts.size();
  r.stats["seconds"] = secs;
  r.summary =
      fmt::format("speech_real: {} transcribed utterances from pocketsphinx-testdata ({:.1f} s, {} Hz)",
                  utts.size(), secs, opt.sample_rate);
  return r;
}

}  // namespace mmref::data::gen
