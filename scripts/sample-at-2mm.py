"""Write a BraTS 2018-layout dataset at 2 mm: each case cropped to the brain and resampled exactly as glioseg's
preprocessing does with ``--spacing 2 2 2``, so training on the copy sees bit-identical network input (labels by
nearest neighbour, in the file's own values). A third of the size: this is how the shipped model's sample
travelled to a GPU machine that takes 64 MiB per call.

    .venv/bin/python scripts/sample-at-2mm.py ../shared/data/brats2018-sample runs/brats2018-2mm
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

from glioseg.config import PreprocessConfig
from glioseg.layouts import find_cases
from glioseg.preprocess import crop_and_resample

SPACING = (2.0, 2.0, 2.0)


def copy_at_2mm(image_paths: list[Path], label_path: Path, out: Path) -> None:
    """The four modalities and the label of one case, cropped and resampled, into ``out`` under the same names."""
    sources = [nib.load(path) for path in image_paths]
    image = np.stack([np.asarray(source.dataobj, dtype=np.float32) for source in sources])
    label = np.asarray(nib.load(label_path).dataobj).astype(np.uint8)
    spacing = tuple(float(s) for s in sources[0].header.get_zooms()[:3])
    image, label, box, _ = crop_and_resample(image, label, spacing, PreprocessConfig(spacing_mm=SPACING))
    affine = sources[0].affine.copy()
    affine[:3, 3] += affine[:3, :3] @ np.array([start for start, _ in box])
    affine[:3, :3] *= np.array(SPACING) / np.array(spacing)
    out.mkdir(parents=True, exist_ok=True)
    for path, channel in zip(image_paths, image):
        nib.save(nib.Nifti1Image(channel, affine), out / Path(path).name)
    nib.save(nib.Nifti1Image(label, affine), out / Path(label_path).name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sample", type=Path, help="labelled dataset in the BraTS 2018-2021 layout")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    for case in find_cases(args.sample):
        if len(case.images) != 4 or case.label is None:
            raise SystemExit(f"{case.case_id}: needs four modality files and a label (BraTS 2018-2021 layout)")
        copy_at_2mm([Path(p) for p in case.images], Path(case.label), args.out / case.case_id)
        print(case.case_id)


if __name__ == "__main__":
    main()
