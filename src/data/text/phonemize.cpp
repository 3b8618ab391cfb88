// espeak-ng phonemizer: see phonemize.h.
// Ref: espeak-ng src/libespeak-ng/speech.c and espeak-ng.c (how the CLI's --ipa output is produced).
#include "data/text/phonemize.h"

#include <mutex>

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>

#include "core/error.h"

namespace mmref::data {

namespace {

// The only process-wide state in this module: espeak-ng itself is global, so its guards must be too.
std::once_flag g_init_once;
std::mutex g_espeak_mutex;
std::string g_current_voice;  // guarded by g_espeak_mutex

std::string status_message(espeak_ng_STATUS status) {
  char buf[512] = {0};
  espeak_ng_GetStatusCodeMessage(status, buf, sizeof(buf));
  return buf;
}

void init_espeak() {
  espeak_ng_InitializePath(nullptr);
  espeak_ng_ERROR_CONTEXT context = nullptr;
  espeak_ng_STATUS status = espeak_ng_Initialize(&context);
  if (status != ENS_OK) {
    espeak_ng_ClearErrorContext(&context);
    MMREF_FAIL("espeak-ng: cannot initialise ({}); install espeak-ng-data (apt-get install espeak-ng)",
               status_message(status));
  }
  status = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, nullptr);
  if (status != ENS_OK) {
    MMREF_FAIL("espeak-ng: cannot initialise synchronous output ({})", status_message(status));
  }
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void append_collapsed(std::string& out, const char* s) {
  for (const char* p = s; *p; ++p) {
    if (is_space(*p)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += *p;
    }
  }
}

}  // namespace

std::string phonemize(const std::string& text, const std::string& voice) {
  std::lock_guard<std::mutex> lock(g_espeak_mutex);
  std::call_once(g_init_once, init_espeak);
  if (voice != g_current_voice) {
    espeak_ng_STATUS status = espeak_ng_SetVoiceByName(voice.c_str());
    if (status != ENS_OK) {
      g_current_voice.clear();
      MMREF_FAIL("espeak-ng: unknown voice '{}' ({}); list voices with `espeak-ng --voices`", voice,
                 status_message(status));
    }
    g_current_voice = voice;
  }
  std::string out;
  const void* ptr = text.c_str();
  // espeak_TextToPhonemes returns one clause per call and sets ptr to null at the end of the text.
  while (ptr != nullptr) {
    const char* clause = espeak_TextToPhonemes(&ptr, espeakCHARS_UTF8, espeakPHONEMES_IPA);
    if (clause == nullptr) break;
    if (!out.empty() && out.back() != ' ') out += ' ';
    append_collapsed(out, clause);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace mmref::data
