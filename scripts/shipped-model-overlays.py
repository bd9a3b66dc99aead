"""Overlays of the shipped model for MODEL_CARD.md: a BraTS 2018 case (with its expert label) and the BraTS 2023
case (no label), written to docs/images/shipped_model_*.png; prints the predicted volumes (mL).

    .venv/bin/python scripts/shipped-model-overlays.py [SAMPLE_2018_DIR] [CASE_2023_DIR]
"""

import sys
from pathlib import Path

import glioseg
from glioseg.datasets.cases import read_case
from glioseg.evaluation.figures import plot_overlay

sample_2018 = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/brats2018-sample")
case_2023 = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/brats2023-sample/BraTS-GLI-00001-000")
model = glioseg.load_model()
for source, name, modalities in [
    (sample_2018 / "Brats18_TCIA10_637_1", "shipped_model_brats2018", ("FLAIR",)),
    (case_2023, "shipped_model_brats2023", ("FLAIR", "T1Gd")),  # T1Gd: to judge the enhancing rim
]:
    case = read_case(source)
    prediction = model.predict(case)
    print(case.case_id, {region: round(ml, 1) for region, ml in prediction.volumes_ml.items()})
    for modality in modalities:
        suffix = "" if modality == "FLAIR" else f"_{modality.lower()}"
        figure = plot_overlay(case, prediction.label, modality=modality)
        figure.savefig(f"docs/images/{name}{suffix}.png", dpi=80, facecolor="black")
