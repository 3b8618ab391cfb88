#!/bin/bash
# Run 4 (CLIP text tower conditioning): CLIP score / clip_fid of its final samples with the scoring CLIP,
# which is also the conditioning tower here (see the README's caveat), and the sample grids.
set -e
cd "$(dirname "$0")/../../.."
RUN=$(ls -d runs/shapes_clip/*/ | tail -1); RUN=${RUN%/}
CLIP=$(ls runs/clip_shapes/*/clip.safetensors | tail -1)
VOCAB=../shared/golden/clip/bpe_simple_vocab_16e6.txt.gz
M=build/cpu/bin/mmref
E=${E:-/tmp/exp4}
mkdir -p $E
cat > $E/eval.yaml <<Y
eval: {out: $E/eval, bootstrap: 1000}
metrics:
  test_samples: {metric: clip_score, images: $RUN/final_samples/test, captions: $RUN/final_samples/test/captions.jsonl, weights: $CLIP, vocab: $VOCAB, real: $RUN/final_samples/test_real, bootstrap: 200}
  heldout_samples: {metric: clip_score, images: $RUN/final_samples/heldout, captions: $RUN/final_samples/heldout/captions.jsonl, weights: $CLIP, vocab: $VOCAB, real: $RUN/final_samples/heldout_real, bootstrap: 200}
  test_real: {metric: clip_score, images: $RUN/final_samples/test_real, captions: $RUN/final_samples/test_real/captions.jsonl, weights: $CLIP, vocab: $VOCAB}
Y
$M eval $E/eval.yaml > $E/eval.log 2>&1
echo "run: $RUN"; echo "results: $E/eval"
# 8 x 8 grids of the first 64 final samples per split (1 px black borders), as run 3's.
for split in test heldout; do
  /usr/bin/python3 - "$RUN/final_samples/$split" "experiments/diffusion_shapes/run4_${split}_grid.png" <<'PY'
import sys, numpy as np
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
g = np.zeros((8 * 33 + 1, 8 * 33 + 1, 3), np.uint8)
for i in range(64):
    im = np.asarray(Image.open(f"{src}/{i:05d}.png").convert("RGB"))
    r, c = divmod(i, 8)
    g[1 + r * 33:1 + r * 33 + 32, 1 + c * 33:1 + c * 33 + 32] = im
Image.fromarray(g).save(out)
print("wrote", out)
PY
done
