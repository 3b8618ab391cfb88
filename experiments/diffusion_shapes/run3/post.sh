#!/bin/bash
# After the shapes base run: CLIP metrics of its final samples, the orange LoRA, before/after samples and metrics.
set -e
cd /work/main
RUN=$(ls -d runs/shapes_base2500/*/ | tail -1); RUN=${RUN%/}
CLIP=$(ls runs/clip_shapes/*/clip.safetensors | tail -1)
VOCAB=../shared/golden/clip/bpe_simple_vocab_16e6.txt.gz
M=build/cpu/bin/mmref
E=/tmp/exp
cat > $E/base_eval.yaml <<Y
eval: {out: $E/base_eval, bootstrap: 1000}
metrics:
  test_samples: {metric: clip_score, images: $RUN/final_samples/test, captions: $RUN/final_samples/test/captions.jsonl, weights: $CLIP, vocab: $VOCAB, real: $RUN/final_samples/test_real, bootstrap: 200}
  heldout_samples: {metric: clip_score, images: $RUN/final_samples/heldout, captions: $RUN/final_samples/heldout/captions.jsonl, weights: $CLIP, vocab: $VOCAB, real: $RUN/final_samples/heldout_real, bootstrap: 200}
  test_real: {metric: clip_score, images: $RUN/final_samples/test_real, captions: $RUN/final_samples/test_real/captions.jsonl, weights: $CLIP, vocab: $VOCAB}
  heldout_real: {metric: clip_score, images: $RUN/final_samples/heldout_real, captions: $RUN/final_samples/heldout_real/captions.jsonl, weights: $CLIP, vocab: $VOCAB}
Y
$M eval $E/base_eval.yaml > $E/base_eval.log 2>&1
BASE=$RUN/checkpoints/ckpt-00002500.safetensors
$M train configs/diffusion/shapes_32_lora_orange.yaml finetune.base=$BASE name=shapes_lora_orange3 > $E/lora.log 2>&1
LORA=$(ls -d runs/shapes_lora_orange3/*/ | tail -1); LORA=${LORA%/}
$M sample diffusion --checkpoint $BASE --prompts $E/orange_prompts.jsonl --seed 7 --out $E/before > $E/before.log 2>&1
$M sample diffusion --checkpoint $LORA/checkpoints/ckpt-00000240.safetensors --prompts $E/orange_prompts.jsonl --seed 7 --out $E/after > $E/after.log 2>&1
cat > $E/orange_eval.yaml <<Y
eval: {out: $E/orange_eval, bootstrap: 1000}
metrics:
  before_scene: {metric: scene, images: $E/before, captions: $E/before/prompts.jsonl}
  after_scene: {metric: scene, images: $E/after, captions: $E/after/prompts.jsonl}
  before_clip: {metric: clip_score, images: $E/before, captions: $E/before/prompts.jsonl, weights: $CLIP, vocab: $VOCAB, real: $E/orange_real, bootstrap: 200}
  after_clip: {metric: clip_score, images: $E/after, captions: $E/after/prompts.jsonl, weights: $CLIP, vocab: $VOCAB, real: $E/orange_real, bootstrap: 200}
  real_clip: {metric: clip_score, images: $E/orange_real, captions: $E/orange_real/captions.jsonl, weights: $CLIP, vocab: $VOCAB}
Y
$M eval $E/orange_eval.yaml > $E/orange_eval.log 2>&1
echo done
