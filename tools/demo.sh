#!/usr/bin/env bash
# The README's first command: install the Debian packages, build everything, and answer a question
# end to end with a small random model (its weights are random, so its answer is meaningless; the
# point is the whole pipeline). Set BQ_MODEL=DIR to use a real checkpoint folder instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${BQ_BUILD_DIR:-$root/build}"
bash "$root/tools/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)"

"$build/bertqa-gpu" --version
echo
model="${BQ_MODEL:-}"
if [ -z "$model" ]; then
  model="$build/demo-model-tiny"
  [ -f "$model/model.safetensors" ] || "$build/bertqa-make-model" --out "$model" --preset tiny --seed 1
  echo "== a tiny model with RANDOM weights ($model): the answer below shows the pipeline, not skill =="
fi
context="The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway."
question="In what country is Normandy located?"
echo "question: $question"
"$build/bertqa-gpu" ask --model "$model" --context "$context" --question "$question" --top-k 3
cat <<EOT

To answer with the real model (bert-large-uncased-whole-word-masking-finetuned-squad):
  git clone https://huggingface.co/google-bert/bert-large-uncased-whole-word-masking-finetuned-squad bert-large-squad
  $build/bertqa-gpu ask --model bert-large-squad --context-file story.txt --question "..."
or, where Hugging Face has already downloaded it (hf download, from_pretrained), by its repo id:
  $build/bertqa-gpu ask --model google-bert/bert-large-uncased-whole-word-masking-finetuned-squad ...
(add --device cuda --precision fp16 on an NVIDIA GPU; $build/bertqa-gpu check --model bert-large-squad
compares that card with the CPU reference in every precision)
EOT
