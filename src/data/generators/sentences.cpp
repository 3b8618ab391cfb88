// The English sentence grammar of the `speech` corpus: a small word list and phrase-structure rules
//   S      -> Clause [", and" Clause] "."
//   Clause -> Subject VerbPhrase
//   Subject-> Name | "the" Adj* Noun | Number Adj? Nouns
//   VerbPhrase -> IntransVerb [Adverb] [Place] [Time] | TransVerb Object [Adverb] [Place] [Time]
//   Object -> "the" Adj* Noun | "a"/"an" Adj? Noun | Number Adj? Nouns
// with verbs agreeing in number with the subject. Sentences are 3..15 words (others are re-drawn), and
// numbers are written as words so the text is exactly what the synthesizers say.
#include <set>

#include "core/error.h"
#include "data/generators/generators.h"

namespace mmref::data::gen {

namespace {

struct Noun {
  const char* one;
  const char* many;
};

const std::vector<Noun> kNouns = {{"dog", "dogs"},
                                  {"cat", "cats"},
                                  {"farmer", "farmers"},
                                  {"teacher", "teachers"},
                                  {"child", "children"},
                                  {"bird", "birds"},
                                  {"horse", "horses"},
                                  {"doctor", "doctors"},
                                  {"sailor", "sailors"},
                                  {"baker", "bakers"},
                                  {"student", "students"},
                                  {"painter", "painters"},
                                  {"fox", "foxes"},
                                  {"robot", "robots"},
                                  {"singer", "singers"},
                                  {"pilot", "pilots"},
                                  {"neighbour", "neighbours"},
                                  {"driver", "drivers"},
                                  {"monkey", "monkeys"},
                                  {"rabbit", "rabbits"}};

const std::vector<Noun> kThings = {
    {"apple", "apples"},   {"boat", "boats"},       {"letter", "letters"}, {"house", "houses"},
    {"book", "books"},     {"garden", "gardens"},   {"window", "windows"}, {"bicycle", "bicycles"},
    {"song", "songs"},     {"picture", "pictures"}, {"box", "boxes"},      {"cake", "cakes"},
    {"bridge", "bridges"}, {"ticket", "tickets"},   {"lamp", "lamps"},     {"basket", "baskets"},
    {"river", "rivers"},   {"wagon", "wagons"},     {"orange", "oranges"}, {"engine", "engines"},
    {"map", "maps"},       {"stone", "stones"},     {"candle", "candles"}, {"kite", "kites"}};

const std::vector<std::string> kNames = {"Anna",  "Peter", "Maria",  "John", "Lucy",  "David", "Emma",
                                         "Oscar", "Sarah", "Thomas", "Nina", "Henry", "Alice", "Victor"};

const std::vector<std::string> kAdjectives = {
    "old",    "young", "small",  "big",  "quiet", "happy",  "tired", "clever", "red",    "green",   "blue",
    "yellow", "brave", "gentle", "busy", "lazy",  "bright", "dark",  "heavy",  "little", "strange", "famous"};

struct Verb {
  const char* s;  // third person singular
  const char* p;  // plural
};
const std::vector<Verb> kTransitive = {
    {"sees", "see"},       {"paints", "paint"},  {"carries", "carry"},      {"finds", "find"},
    {"buys", "buy"},       {"sells", "sell"},    {"opens", "open"},         {"cleans", "clean"},
    {"builds", "build"},   {"watches", "watch"}, {"follows", "follow"},     {"draws", "draw"},
    {"writes", "write"},   {"likes", "like"},    {"brings", "bring"},       {"counts", "count"},
    {"repairs", "repair"}, {"moves", "move"},    {"remembers", "remember"}, {"describes", "describe"}};
const std::vector<Verb> kIntransitive = {{"sleeps", "sleep"}, {"sings", "sing"},     {"waits", "wait"},
                                         {"laughs", "laugh"}, {"runs", "run"},       {"walks", "walk"},
                                         {"dances", "dance"}, {"works", "work"},     {"listens", "listen"},
                                         {"swims", "swim"},   {"travels", "travel"}, {"smiles", "smile"}};

const std::vector<std::string> kAdverbs = {"slowly", "quickly", "quietly", "carefully", "happily",
                                           "again",  "today",   "loudly",  "politely"};
const std::vector<std::string> kPlaces = {"near the river",    "in the garden",  "at the station",
                                          "behind the house",  "on the bridge",  "in the old town",
                                          "under the tree",    "by the window",  "at the market",
                                          "across the street", "in the kitchen", "on the hill"};
const std::vector<std::string> kTimes = {"every morning", "in the evening", "at noon",          "on Monday",
                                         "before dinner", "after school",   "at seven o'clock", "last summer",
                                         "every day",     "at midnight",    "on Friday night"};
const std::vector<std::string> kNumbers = {
    "two",       "three", "four",      "five",        "six",         "seven",      "eight",
    "nine",      "ten",   "eleven",    "twelve",      "fifteen",     "twenty",     "thirty",
    "forty two", "fifty", "sixty one", "ninety nine", "one hundred", "two hundred"};

bool starts_with_vowel(const std::string& w) {
  return !w.empty() && std::string("aeiou").find(w[0]) != std::string::npos;
}

std::string adjectives(Rng& rng, int max_n) {
  std::string s;
  int n = static_cast<int>(rng.below(max_n + 1));
  std::set<std::string> used;
  for (int i = 0; i < n; ++i) {
    const std::string& a = rng.pick(kAdjectives);
    if (!used.insert(a).second) continue;
    s += a + " ";
  }
  return s;
}

// Returns the phrase; *plural says whether the verb takes the plural form.
std::string noun_phrase(Rng& rng, const std::vector<Noun>& nouns, bool object, bool* plural) {
  int form = static_cast<int>(rng.below(object ? 3 : 4));
  const Noun& n = nouns[static_cast<size_t>(rng.below(static_cast<int64_t>(nouns.size())))];
  *plural = false;
  if (!object && form == 3) return rng.pick(kNames);
  if (form == 2) {
    *plural = true;
    return rng.pick(kNumbers) + " " + adjectives(rng, 1) + n.many;
  }
  if (object && form == 1) {
    std::string adj = adjectives(rng, 1);
    std::string rest = adj + n.one;
    return (starts_with_vowel(rest) ? "an " : "a ") + rest;
  }
  return "the " + adjectives(rng, 2) + n.one;
}

std::string clause(Rng& rng) {
  bool plural = false;
  std::string s = noun_phrase(rng, kNouns, /*object=*/false, &plural);
  if (rng.below(3) == 0) {
    const Verb& v = rng.pick(kIntransitive);
    s += " " + std::string(plural ? v.p : v.s);
  } else {
    const Verb& v = rng.pick(kTransitive);
    bool obj_plural = false;
    s +=
        " " + std::string(plural ? v.p : v.s) + " " + noun_phrase(rng, kThings, /*object=*/true, &obj_plural);
  }
  if (rng.below(3) == 0) s += " " + rng.pick(kAdverbs);
  if (rng.below(2) == 0) s += " " + rng.pick(kPlaces);
  if (rng.below(3) == 0) s += " " + rng.pick(kTimes);
  return s;
}

int word_count(const std::string& s) {
  int n = 0;
  bool in = false;
  for (char c : s) {
    bool sp = c == ' ';
    if (!sp && !in) ++n;
    in = !sp;
  }
  return n;
}

}  // namespace

std::string make_sentence(Rng& rng) {
  for (;;) {
    std::string s = clause(rng);
    if (rng.below(4) == 0) s += ", and " + clause(rng);
    int n = word_count(s);
    if (n < 3 || n > 15) continue;
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return s + ".";
  }
}

std::vector<std::string> make_sentences(uint64_t seed, int64_t n) {
  Rng rng(derive_seed(seed, /*stream=*/1, 0));
  std::vector<std::string> out;
  std::set<std::string> seen;
  int64_t tries = 0;
  while (static_cast<int64_t>(out.size()) < n) {
    if (++tries > 50 * n + 1000) {
      MMREF_FAIL("speech corpus: the sentence grammar gave only {} distinct sentences of the {} asked for",
                 out.size(), n);
    }
    std::string s = make_sentence(rng);
    if (seen.insert(s).second) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace mmref::data::gen
