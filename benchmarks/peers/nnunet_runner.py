"""nnU-Net v2 as the peer of `benchmarks/predict_speed.py`; runs in the peer environment (.venv-peers).

prepare WORK SAMPLE: the real sample as an nnU-Net raw dataset (labels 1/2/4 -> 1/2/3, symlinked images),
    nnU-Net's own fingerprint and planner (3d_fullres), a network built from those plans saved as an nnU-Net
    checkpoint (untrained weights: timing does not need trained ones).
predict WORK CASE_FOLDER OUT [--mirror]: nnUNetPredictor on one case, as `nnUNetv2_predict` does it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DATASET = "Dataset001_BraTS2018"
SUFFIXES = ("flair", "t1", "t1ce", "t2")  # channels 0000..0003


def environment(work: Path) -> None:
    """nnU-Net reads its folders from the environment when first imported."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[name] = str(work / name)
        (work / name).mkdir(parents=True, exist_ok=True)


def prepare(work: Path, sample: Path) -> None:
    import nibabel as nib
    import numpy as np

    environment(work)
    raw = work / "nnUNet_raw" / DATASET
    (raw / "imagesTr").mkdir(parents=True, exist_ok=True)
    (raw / "labelsTr").mkdir(parents=True, exist_ok=True)
    cases = sorted(p for p in sample.iterdir() if p.is_dir())
    for case in cases:
        for channel, suffix in enumerate(SUFFIXES):
            link = raw / "imagesTr" / f"{case.name}_{channel:04d}.nii.gz"
            if not link.exists():
                link.symlink_to((case / f"{case.name}_{suffix}.nii.gz").resolve())
        label_path = raw / "labelsTr" / f"{case.name}.nii.gz"
        if not label_path.exists():
            label = nib.load(case / f"{case.name}_seg.nii.gz")
            values = np.asarray(label.dataobj).astype(np.uint8)
            values[values == 4] = 3
            nib.save(nib.Nifti1Image(values, label.affine, label.header), label_path)
    dataset = {
        "channel_names": {"0": "FLAIR", "1": "T1", "2": "T1ce", "3": "T2"},
        "labels": {"background": 0, "NCR": 1, "edema": 2, "ET": 3},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    (raw / "dataset.json").write_text(json.dumps(dataset, indent=1))

    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments

    extract_fingerprints([1], num_processes=2, check_dataset_integrity=True)
    plan_experiments([1])
    plans_path = work / "nnUNet_preprocessed" / DATASET / "nnUNetPlans.json"
    plans = json.loads(plans_path.read_text())

    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    manager = PlansManager(plans)
    network = nnUNetTrainer.build_network_architecture(
        manager, manager.get_configuration("3d_fullres"), 4, 4, enable_deep_supervision=False
    )
    model_folder = work / "nnUNet_results" / DATASET / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (model_folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (model_folder / "plans.json").write_text(json.dumps(plans, indent=1))
    (model_folder / "dataset.json").write_text(json.dumps(dataset, indent=1))
    torch.save(
        {
            "network_weights": network.state_dict(),
            "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset},
            "trainer_name": "nnUNetTrainer",
            "inference_allowed_mirroring_axes": (0, 1, 2),
        },
        model_folder / "fold_0" / "checkpoint_final.pth",
    )
    configuration = plans["configurations"]["3d_fullres"]
    print(json.dumps({"patch_size": configuration["patch_size"], "spacing": configuration["spacing"],
                      "parameters": sum(p.numel() for p in network.parameters())}))  # fmt: skip


def predict(work: Path, case: Path, out: Path, mirror: bool) -> None:
    environment(work)
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(
        tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror, device=torch.device("cpu"),
        verbose=False, verbose_preprocessing=False, allow_tqdm=False,
    )  # fmt: skip
    predictor.initialize_from_trained_model_folder(
        str(work / "nnUNet_results" / DATASET / "nnUNetTrainer__nnUNetPlans__3d_fullres"), use_folds=(0,)
    )
    files = [str(case / f"{case.name}_{suffix}.nii.gz") for suffix in SUFFIXES]
    out.mkdir(parents=True, exist_ok=True)
    predictor.predict_from_files(
        [files], [str(out / case.name)], save_probabilities=False, overwrite=True,
        num_processes_preprocessing=1, num_processes_segmentation_export=1,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    first = commands.add_parser("prepare")
    first.add_argument("work", type=Path)
    first.add_argument("sample", type=Path)
    second = commands.add_parser("predict")
    second.add_argument("work", type=Path)
    second.add_argument("case", type=Path)
    second.add_argument("out", type=Path)
    second.add_argument("--mirror", action="store_true")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.work, args.sample)
    else:
        predict(args.work, args.case, args.out, args.mirror)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
