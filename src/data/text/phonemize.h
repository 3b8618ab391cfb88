// Grapheme-to-phoneme conversion through the espeak-ng library: text -> IPA string with stress marks,
// as `espeak-ng -q --ipa -v en-us "text"` prints it (clauses joined by one space instead of newlines).
//
//   phonemize("Hello world.") -> "həlˈoʊ wˈɜːld"
//
// espeak-ng keeps global state and is not thread-safe: the library is initialised once (std::once_flag)
// and every call holds one process-wide mutex, so phonemize() may be called from any thread (calls are
// serialised). The voice is switched only when it differs from the previous call's.
// Numbers are spoken by espeak itself; run normalize_text() first for mmref's own number reading.
//
// Ref: espeak-ng src/libespeak-ng/speech.c (espeak_TextToPhonemes); piper-phonemize (same library use).
#pragma once
#include <string>

namespace mmref::data {

// Throws mmref::Error when espeak-ng cannot initialise (missing espeak-ng-data) or the voice is unknown.
std::string phonemize(const std::string& text, const std::string& voice = "en-us");

}  // namespace mmref::data
