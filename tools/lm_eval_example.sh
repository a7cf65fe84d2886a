#!/usr/bin/env bash
# The README's `dint lm-eval` example, from a checkout after `make reproduce`: the tiny world's held-out facts as
# lm-eval tasks, lm_eval run on the tiny base model and on its SFT model (results/tiny/models/), then the two runs
# compared by dint lm-eval. Writes under results/tiny/lm_eval/ and copies the figure and the cards and pairs tables to
# docs/ for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=results/tiny/lm_eval
for m in base sft; do
  [ -f results/tiny/models/$m/config.json ] || { echo "error: results/tiny/models/$m is missing: run make reproduce first"; exit 1; }
done
rm -rf "$OUT"
$BIN/dint lm-eval-tasks --profile tiny --out "$OUT/tasks"
for m in base sft; do
  HF_HUB_OFFLINE=1 $BIN/lm_eval --model hf --model_args "pretrained=results/tiny/models/$m" --device cpu --batch_size 32 \
    --include_path "$OUT/tasks" --tasks world_qa,world_statement --output_path "$OUT/runs/$m" --log_samples
done
$BIN/dint lm-eval "$OUT/runs/base" "$OUT/runs/sft" --names base,sft --out "$OUT/compare"
mkdir -p docs
cp "$OUT/compare/lm_eval.png" docs/lm_eval.png
$BIN/python - "$OUT/compare" <<'PY'
import sys
import pandas as pd
folder = sys.argv[1]
cards = pd.read_csv(f"{folder}/cards.csv")
pairs = pd.read_csv(f"{folder}/pairs.csv")
fmt = lambda r: f"{r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
wide = cards.assign(value=cards.apply(fmt, axis=1)).pivot_table(index=["task", "model"], columns="measure", values="value",
                                                                 aggfunc="first", sort=False)
cols = ["accuracy", "ece", "entropy", "top_mass"]
p = pairs.assign(value=pairs.apply(fmt, axis=1),
                 p=pairs.pvalue_holm.map(lambda v: "" if pd.isna(v) else f"{v:.2g}"))
with open("docs/lm_eval.md", "w") as f:
    f.write(wide[cols].reset_index().to_markdown(index=False) + "\n\n")
    f.write(p[["task", "model", "reference", "measure", "value", "p"]].rename(
        columns={"value": "estimate [95% CI]", "p": "p (Holm)"}).to_markdown(index=False) + "\n")
print(open("docs/lm_eval.md").read())
PY
