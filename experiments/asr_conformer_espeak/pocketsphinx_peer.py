#!/usr/bin/python3
"""The pocketsphinx peer for the Conformer-CTC experiment (a recogniser no one here wrote).

    experiments/asr_conformer_espeak/pocketsphinx_peer.py MANIFEST OUT_DIR [--speakers flite,festival]
        [--limit N] [--checkpoint CKPT --mmref build/cpu/bin/mmref]

Reads a speech manifest (JSONL: path, text, speaker = "synthesizer:voice"), keeps the utterances whose
synthesizer is in --speakers (empty = all), and writes into OUT_DIR:
  ref.jsonl               {"id": path, "text": reference}
  pocketsphinx_hyp.jsonl  {"id": path, "text": hypothesis} from Debian's pocketsphinx_continuous with the
                          pocketsphinx-en-us acoustic model, language model and dictionary (its defaults)
  mmref_hyp.jsonl         the same files through `mmref sample asr --checkpoint CKPT --decode beam` (when
                          --checkpoint is given)
  eval.yaml               an `mmref eval` config scoring both against ref.jsonl (WER and CER, jiwer rules)
Then run `mmref eval OUT_DIR/eval.yaml`. Audio goes to pocketsphinx as 16 kHz mono s16le through ffmpeg.
Python here only drives the peer and writes JSON; the scoring is mmref's harness.
"""
import argparse
import json
import os
import subprocess
import sys

HMM = "/usr/share/pocketsphinx/model/en-us/en-us"
LM = "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin"
DICT = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"


def pocketsphinx(path, tmp):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", path, "-ac", "1", "-ar", "16000", "-f", "s16le", tmp],
                   check=True)
    out = subprocess.run(["pocketsphinx_continuous", "-infile", tmp, "-hmm", HMM, "-lm", LM, "-dict", DICT,
                          "-logfn", "/dev/null", "-samprate", "16000"], stdout=subprocess.PIPE, check=True).stdout
    return " ".join(line.strip() for line in out.decode("utf-8", "replace").splitlines() if line.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("out")
    ap.add_argument("--speakers", default="flite,festival")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--checkpoint", default="")
    ap.add_argument("--mmref", default="build/cpu/bin/mmref")
    a = ap.parse_args()
    for f in (HMM, LM, DICT):
        if not os.path.exists(f):
            sys.exit("pocketsphinx_peer: %s is missing: apt-get install pocketsphinx pocketsphinx-en-us" % f)
    base = os.path.dirname(os.path.abspath(a.manifest))
    keep = set(s for s in a.speakers.split(",") if s)
    items = []
    with open(a.manifest) as fh:
        for line in fh:
            if not line.strip():
                continue
            j = json.loads(line)
            synth = j.get("speaker", "").split(":")[0]
            if keep and synth not in keep:
                continue
            p = j["path"] if os.path.isabs(j["path"]) else os.path.join(base, j["path"])
            items.append((p, j["text"]))
    if a.limit:
        items = items[: a.limit]
    if not items:
        sys.exit("pocketsphinx_peer: no utterances from %s in %s" % (sorted(keep), a.manifest))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "ref.jsonl"), "w") as fh:
        for p, t in items:
            fh.write(json.dumps({"id": p, "text": t}) + "\n")
    hyp_path = os.path.join(a.out, "pocketsphinx_hyp.jsonl")
    done = []
    if os.path.exists(hyp_path):  # a second call (e.g. with --checkpoint) reuses the peer's transcripts
        with open(hyp_path) as fh:
            done = [json.loads(line)["id"] for line in fh if line.strip()]
    if done != [p for p, _ in items]:
        with open(hyp_path + ".part", "w") as fh:
            for i, (p, _) in enumerate(items):
                fh.write(json.dumps({"id": p, "text": pocketsphinx(p, os.path.join(a.out, "tmp.raw"))}) + "\n")
                if (i + 1) % 20 == 0:
                    print("pocketsphinx: %d/%d" % (i + 1, len(items)), file=sys.stderr)
        os.replace(hyp_path + ".part", hyp_path)
        os.remove(os.path.join(a.out, "tmp.raw"))
    metrics = {
        "wer_pocketsphinx": {"metric": "wer", "hypotheses": "pocketsphinx_hyp.jsonl"},
        "cer_pocketsphinx": {"metric": "cer", "hypotheses": "pocketsphinx_hyp.jsonl"},
    }
    if a.checkpoint:
        js = os.path.join(a.out, "mmref_raw.jsonl")
        subprocess.run([a.mmref, "sample", "asr", "--checkpoint", a.checkpoint, "--decode", "beam", "--json", js]
                       + [p for p, _ in items], check=True, stdout=subprocess.DEVNULL)
        with open(js) as fi, open(os.path.join(a.out, "mmref_hyp.jsonl"), "w") as fo:
            for line in fi:
                j = json.loads(line)
                fo.write(json.dumps({"id": j["path"], "text": j["text"]}) + "\n")
        metrics["wer_mmref"] = {"metric": "wer", "hypotheses": "mmref_hyp.jsonl"}
        metrics["cer_mmref"] = {"metric": "cer", "hypotheses": "mmref_hyp.jsonl"}
    out = os.path.abspath(a.out)
    with open(os.path.join(a.out, "eval.yaml"), "w") as fh:
        fh.write("# written by pocketsphinx_peer.py: mmref eval %s/eval.yaml\n" % out)
        fh.write("eval: {out: %s/eval, bootstrap: 1000, seed: 0}\nmetrics:\n" % out)
        for name, m in metrics.items():
            fh.write("  %s: {metric: %s, references: %s/ref.jsonl, hypotheses: %s/%s, case: lower, "
                     "remove_punctuation: true}\n" % (name, m["metric"], out, out, m["hypotheses"]))
    print("pocketsphinx_peer: %d utterances -> %s/eval.yaml" % (len(items), out))


if __name__ == "__main__":
    main()
