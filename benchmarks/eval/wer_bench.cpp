// WER/CER throughput (src/eval/wer.h). items_per_second counts reference words (reference characters for
// the CER benchmark), one core.
//   build/<dir>/bin/mmref_bench_eval --benchmark_filter=Wer
// Corpus: 10,000 sentence pairs of 10..30 words (about 20) drawn with Zipf-like frequencies from a
// 5,000-word vocabulary of random lowercase words; the hypothesis is the reference with ~10% word errors
// (substitution, deletion or insertion, equally likely). Seeded std::mt19937_64, the same every run.
//   BM_WerProcessWords    jiwer.process_words(refs, hyps) end to end: wer_default transforms, interning,
//                         alignment, counts and chunks
//   BM_WerAlignIds        the aligner alone on pre-interned ids (Hyyrö bit-parallel, one 64-bit word)
//   BM_WerProcessChars    process_characters (cer_default), items = reference characters
//   BM_WerContiguous      wer_contiguous over 250-sentence blocks (~5,000-word sequences: the multi-word
//                         bit-parallel path)
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "eval/wer.h"

namespace mmref::eval {
namespace {

struct Corpus {
  Sentences refs{std::vector<std::string>{}};
  Sentences hyps{std::vector<std::string>{}};
  std::vector<std::vector<int32_t>> ref_ids, hyp_ids;
  int64_t ref_words = 0, ref_chars = 0;
};

Corpus make_corpus() {
  constexpr int kSentences = 10000, kVocab = 5000;
  std::mt19937_64 rng(1234);
  std::set<std::string> seen;
  std::vector<std::string> vocab;
  std::uniform_int_distribution<int> len(2, 10), letter('a', 'z');
  while (static_cast<int>(vocab.size()) < kVocab) {
    std::string w(static_cast<size_t>(len(rng)), 'a');
    for (char& c : w) c = static_cast<char>(letter(rng));
    if (seen.insert(w).second) vocab.push_back(w);
  }
  std::vector<double> weights(kVocab);
  for (int i = 0; i < kVocab; ++i) weights[i] = 1.0 / (i + 1);
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  std::uniform_int_distribution<int> words(10, 30), kind(0, 2);
  std::bernoulli_distribution error(0.1);

  Corpus c;
  std::unordered_map<std::string, int32_t> ids;
  const auto id = [&](const std::string& w) {
    return ids.emplace(w, static_cast<int32_t>(ids.size())).first->second;
  };
  const auto join = [](const std::vector<std::string>& ws) {
    std::string s;
    for (const auto& w : ws) s += (s.empty() ? "" : " ") + w;
    return s;
  };
  for (int s = 0; s < kSentences; ++s) {
    std::vector<std::string> ref, hyp;
    const int n = words(rng);
    for (int k = 0; k < n; ++k) ref.push_back(vocab[static_cast<size_t>(pick(rng))]);
    for (const auto& w : ref) {
      if (!error(rng)) {
        hyp.push_back(w);
        continue;
      }
      const int e = kind(rng);
      if (e == 0) hyp.push_back(vocab[static_cast<size_t>(pick(rng))]);                    // substitution
      if (e == 2) hyp.push_back(w), hyp.push_back(vocab[static_cast<size_t>(pick(rng))]);  // insertion
    }
    c.ref_ids.emplace_back();
    c.hyp_ids.emplace_back();
    for (const auto& w : ref) c.ref_ids.back().push_back(id(w));
    for (const auto& w : hyp) c.hyp_ids.back().push_back(id(w));
    c.refs.items.push_back(join(ref));
    c.hyps.items.push_back(join(hyp));
    c.ref_words += static_cast<int64_t>(ref.size());
    c.ref_chars += static_cast<int64_t>(c.refs.items.back().size());
  }
  return c;
}

const Corpus& corpus() {
  static const Corpus c = make_corpus();
  return c;
}

void BM_WerProcessWords(benchmark::State& state) {
  const Corpus& c = corpus();
  double rate = 0;
  for (auto _ : state) {
    const WordOutput out = process_words(c.refs, c.hyps);
    benchmark::DoNotOptimize(out.hits);  // (DoNotOptimize on a double reads back garbage with this gbench)
    rate = out.wer;
  }
  state.SetItemsProcessed(state.iterations() * c.ref_words);
  state.counters["wer"] = rate;
  state.counters["sentences"] = static_cast<double>(c.refs.items.size());
}
BENCHMARK(BM_WerProcessWords)->Unit(benchmark::kMillisecond);

void BM_WerAlignIds(benchmark::State& state) {
  const Corpus& c = corpus();
  Aligner aligner;
  std::vector<AlignmentChunk> chunks;
  for (auto _ : state) {
    ErrorCounts sum;
    for (size_t i = 0; i < c.ref_ids.size(); ++i) {
      aligner.align(c.ref_ids[i].data(), c.ref_ids[i].size(), c.hyp_ids[i].data(), c.hyp_ids[i].size(),
                    chunks);
      sum += count_errors(chunks);
    }
    benchmark::DoNotOptimize(sum.hits);
  }
  state.SetItemsProcessed(state.iterations() * c.ref_words);
}
BENCHMARK(BM_WerAlignIds)->Unit(benchmark::kMillisecond);

void BM_WerProcessChars(benchmark::State& state) {
  const Corpus& c = corpus();
  Sentences refs(std::vector<std::string>(c.refs.items.begin(), c.refs.items.begin() + 2000));
  Sentences hyps(std::vector<std::string>(c.hyps.items.begin(), c.hyps.items.begin() + 2000));
  int64_t chars = 0;
  for (const auto& s : refs.items) chars += static_cast<int64_t>(s.size());
  double rate = 0;
  for (auto _ : state) {
    const CharacterOutput out = process_characters(refs, hyps);
    benchmark::DoNotOptimize(out.hits);
    rate = out.cer;
  }
  state.SetItemsProcessed(state.iterations() * chars);
  state.counters["cer"] = rate;
}
BENCHMARK(BM_WerProcessChars)->Unit(benchmark::kMillisecond);

void BM_WerContiguous(benchmark::State& state) {
  const Corpus& c = corpus();
  constexpr size_t kBlock = 250, kBlocks = 8;
  std::vector<Sentences> refs, hyps;
  int64_t words = 0;
  for (size_t b = 0; b < kBlocks; ++b) {
    const auto from = static_cast<std::ptrdiff_t>(b * kBlock),
               to = static_cast<std::ptrdiff_t>((b + 1) * kBlock);
    refs.emplace_back(std::vector<std::string>(c.refs.items.begin() + from, c.refs.items.begin() + to));
    hyps.emplace_back(std::vector<std::string>(c.hyps.items.begin() + from, c.hyps.items.begin() + to));
    for (auto i = from; i < to; ++i) words += static_cast<int64_t>(c.ref_ids[static_cast<size_t>(i)].size());
  }
  for (auto _ : state) {
    for (size_t b = 0; b < kBlocks; ++b) {
      const WordOutput out = process_words(refs[b], hyps[b], wer_contiguous(), wer_contiguous());
      benchmark::DoNotOptimize(out.hits);
    }
  }
  state.SetItemsProcessed(state.iterations() * words);
  state.counters["words_per_sequence"] = static_cast<double>(words) / kBlocks;
}
BENCHMARK(BM_WerContiguous)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mmref::eval
