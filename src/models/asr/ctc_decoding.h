// CTC decoding of (T, V) log-probabilities (blank = id 0 by default):
//   greedy       best id per frame, repeats merged, blanks dropped; every token gets the frame where it
//                starts and ends (the CTC alignment, for timestamps)
//   prefix beam  prefix beam search (Graves 2012; Hannun et al. 2014 "first-pass LVCSR" without an LM):
//                per prefix the probability of ending in blank and in non-blank, merged over paths,
//                `beam` prefixes kept per frame, optional pruning of ids below `token_prune` log-prob
// Both take the valid length, so a padded batch decodes row by row.
// Ref: wenet/utils/ctc_utils.py (greedy), wenet's ctc_prefix_beam_search (search
// structure); Graves et al. 2006 (CTC).
#pragma once
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mmref::models {

struct CtcToken {
  int64_t id = 0;
  int64_t start_frame = 0, end_frame = 0;  // [start, end] frames (of the encoder output) the token spans
};

struct CtcHypothesis {
  std::vector<CtcToken> tokens;
  double log_prob = 0;  // of the prefix (sum over its paths); greedy: the best path's
  std::vector<int64_t> ids() const;
};

// log_probs: (T, V) float, rows are log-softmax outputs; length <= T valid frames (-1 = all).
CtcHypothesis ctc_greedy(const at::Tensor& log_probs, int64_t length = -1, int64_t blank = 0);

struct CtcBeamOptions {
  int64_t beam = 10;
  int64_t blank = 0;
  double token_prune = -1e30;  // ids with log-prob below this at a frame are not expanded
  int64_t top_k_per_frame = 0; // > 0: expand only the k most likely ids per frame
};

// The n-best list (best first, at most beam entries).
std::vector<CtcHypothesis> ctc_prefix_beam_search(const at::Tensor& log_probs, int64_t length = -1,
                                                  const CtcBeamOptions& opt = {});

}  // namespace mmref::models
