#!/usr/bin/env bash
# Retrains glioseg's shipped model from the public BraTS 2018 sample, exactly as MODEL_CARD.md reports it:
# 4-fold cross-validation by patient (each case scored by the fold that did not see it), then the final model
# on all 12 cases, exported into the package; the runs' curves, configs and CV metrics are copied into docs/model/
# (the checkpoints stay in RUNS_DIR). About 1 h 45 min on 2 CPU cores (20 minutes a run); interrupted runs resume.
#
#   scripts/train-shipped-model.sh [SAMPLE_DIR] [RUNS_DIR]     (defaults: ../shared/data/brats2018-sample, runs/brats2018)
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLE="${1:-../shared/data/brats2018-sample}"
RUNS="${2:-runs/brats2018}"
GLIOSEG=.venv/bin/glioseg
RECIPE=(--folds 4 --epochs 40 --steps-per-epoch 50 --patch 48 48 48 --batch 2 --head classes --deep-supervision
        --loss dice_ce --spacing 2 2 2 --validate-every 5 --foreground-fraction 0.67)

train() {  # $1 = fold (0..3 or all); resumes a run that was stopped
    local out="$RUNS/fold$1"
    if [ -f "$out/last.pt" ]; then
        "$GLIOSEG" train "$SAMPLE" --out "$out" --fold "$1" "${RECIPE[@]}" --resume
    else
        "$GLIOSEG" train "$SAMPLE" --out "$out" --fold "$1" "${RECIPE[@]}"
    fi
}

for fold in 0 1 2 3; do train "$fold"; done
FOLDS=("$RUNS"/fold0 "$RUNS"/fold1 "$RUNS"/fold2 "$RUNS"/fold3)
"$GLIOSEG" crossval "${FOLDS[@]}" --data "$SAMPLE" --out "$RUNS/cv"
"$GLIOSEG" crossval "${FOLDS[@]}" --data "$SAMPLE" --out "$RUNS/cv_tta" --tta
"$GLIOSEG" crossval "${FOLDS[@]}" --data "$SAMPLE" --out "$RUNS/cv_window_whole" --window whole
train all
"$GLIOSEG" export "$RUNS/foldall" --out src/glioseg/models/brats2018-sample.pt

DOCS=docs/model  # what a reader needs to judge the model, small enough for the repository
for run in fold0 fold1 fold2 fold3 foldall; do
    cp "$RUNS/$run/curves.png" "$DOCS/curves_$run.png"
    cp "$RUNS/$run/history.jsonl" "$DOCS/history_$run.jsonl"
    cp "$RUNS/$run/config.json" "$DOCS/config_$run.json"
done
cp "$RUNS/fold0/splits.json" "$DOCS/splits.json"
cp "$RUNS/cv/metrics.csv" "$DOCS/cv_metrics.csv"
cp "$RUNS/cv/metrics.json" "$DOCS/cv_metrics.json"
cp "$RUNS/cv_tta/metrics.json" "$DOCS/cv_metrics_tta.json"
cp "$RUNS/cv_window_whole/metrics.json" "$DOCS/cv_metrics_window_whole.json"
.venv/bin/python scripts/shipped-model-overlays.py "$SAMPLE"
