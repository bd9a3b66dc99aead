#!/usr/bin/env bash
# Retrains glioseg's shipped model from the public BraTS 2018 sample, exactly as MODEL_CARD.md reports it:
# 4-fold cross-validation by patient (each case scored by the fold that did not see it), then the final model
# on all 12 cases, exported into the package. About 85 minutes on 2 CPU cores; interrupted runs resume.
#
#   scripts/train-shipped-model.sh [SAMPLE_DIR] [RUNS_DIR]     (defaults: ../shared/data/brats2018-sample, runs/brats2018)
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLE="${1:-../shared/data/brats2018-sample}"
RUNS="${2:-runs/brats2018}"
GLIOSEG=.venv/bin/glioseg
RECIPE=(--folds 4 --epochs 40 --steps-per-epoch 50 --patch 48 48 48 --batch 2 --head classes --deep-supervision
        --loss dice_ce --spacing 2 2 2 --validate-every 5)

train() {  # $1 = fold (0..3 or all); resumes a run that was stopped
    local out="$RUNS/fold$1"
    if [ -f "$out/last.pt" ]; then
        "$GLIOSEG" train "$SAMPLE" --out "$out" --fold "$1" "${RECIPE[@]}" --resume
    else
        "$GLIOSEG" train "$SAMPLE" --out "$out" --fold "$1" "${RECIPE[@]}"
    fi
}

for fold in 0 1 2 3; do train "$fold"; done
"$GLIOSEG" crossval "$RUNS"/fold0 "$RUNS"/fold1 "$RUNS"/fold2 "$RUNS"/fold3 --data "$SAMPLE" --out "$RUNS/cv"
train all
"$GLIOSEG" export "$RUNS/foldall" --out src/glioseg/models/brats2018-sample.pt
