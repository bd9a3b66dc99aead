"""A raw four-sequence DICOM study to a native-space mask and a DICOM SEG: time, peak memory, each step's share,
and agreement with the same case predicted BraTS-ready.

Real BraTS cases made raw the way tests/raw_cases.py does (each sequence moved by up to 15 degrees and 20 mm,
FLAIR and T2 at 0.9 x 0.9 x 5 mm, a sagittal T1, a flipped T1Gd; the whole 240 x 240 x 155 field of view), written
as a DICOM study (tests/dicom_writer.py: one file per slice, a localiser beside). End to end: ``glioseg predict
STUDY --out DIR`` (the shipped model) timed with /usr/bin/time. Steps: the same functions called one after the
other in this process. Agreement: Dice of the native mask against the BraTS-ready case's own prediction put on the
native grid, and of both against the expert label there.

    .venv/bin/python benchmarks/raw_study.py [--cases 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from machine import REPO, RESULTS, SAMPLE, describe  # noqa: E402
from predict_speed import timed  # noqa: E402

GLIOSEG = REPO / ".venv" / "bin" / "glioseg"
FULL_FIELD = (slice(0, 240), slice(0, 240), slice(0, 155))
REGIONS = {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)}


def make_study(files, work: Path, seed: int) -> dict[str, Path]:
    from dicom_writer import write_study
    from glioseg.datasets.cases import read_case
    from raw_cases import make_raw

    paths, _ = make_raw(read_case(files), work, np.random.default_rng(seed), crop=FULL_FIELD)
    write_study({role: (np.asarray(nib.load(p).dataobj), nib.load(p).affine) for role, p in paths.items()},
                work / "study")  # fmt: skip
    return paths


def steps(study: Path, work: Path) -> dict[str, float]:
    """Seconds of each step, the functions glioseg predict calls, one after the other."""
    from glioseg.core.config import PredictConfig
    from glioseg.core.stopwatch import Stopwatch
    from glioseg.datasets.cases import read_case
    from glioseg.datasets.layouts import locate_case
    from glioseg.inference.native import motion_onto, native_grids, native_label, reference_series_files
    from glioseg.inference.postprocess import clean_label
    from glioseg.inference.predict import load_model
    from glioseg.raw.dicom_seg import write_dicom_seg
    from glioseg.raw.prepare import dicom_images, prepare_case
    from glioseg.raw.prepared import PreparedFiles

    seconds: dict[str, float] = {}
    clock = Stopwatch(seconds)
    images, sources = dicom_images(study, {}, work / "convert")
    clock.lap("read DICOM, dcm2niix")
    prepared = prepare_case(images, work / "prepared", "case", sources=sources, clock=clock)  # its stages, each
    files = PreparedFiles(prepared.folder)
    model = load_model()
    settings = PredictConfig()
    clock.lap("load model")
    case = read_case(locate_case(prepared.folder))
    prediction = model.predict(case, settings, keep_probabilities=True)
    clock.lap("segment (prepared grid)")
    grid = native_grids(files)["T1Gd"]
    label = native_label(prediction.probabilities, case.affine, grid, motion_onto(files, "T1Gd"),
                         model.config.model.head)  # fmt: skip
    label = clean_label(label, grid.spacing, settings.postprocess)
    clock.lap("back to the native grid")
    write_dicom_seg(work / "seg.dcm", label, grid.affine, reference_series_files(files))
    clock.lap("DICOM SEG")
    return {name: round(value, 2) for name, value in seconds.items()}


def agreement(native_mask: Path, ready_mask: Path, truth: Path) -> dict[str, dict[str, float]]:
    import SimpleITK as sitk

    from glioseg.core.labels import BRATS2021
    from glioseg.core.registration import RigidTransform, resample

    native = nib.load(native_mask)
    identity = RigidTransform(sitk.Euler3DTransform(), 0, 0, 0)

    def there(path: Path) -> np.ndarray:
        image = nib.load(path)
        data = np.asarray(image.dataobj, np.float32)
        return BRATS2021.to_internal(resample(data, image.affine, native.shape, native.affine, identity, True)
                                     .astype(np.uint8))  # fmt: skip

    label, ready, expert = BRATS2021.to_internal(np.asarray(native.dataobj)), there(ready_mask), there(truth)

    def dice(a, b, values):
        a, b = np.isin(a, values), np.isin(b, values)
        return round(float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1)), 3)

    return {name: {"raw_vs_ready": dice(label, ready, v), "raw_vs_expert": dice(label, expert, v),
                   "ready_vs_expert": dice(ready, expert, v)} for name, v in REGIONS.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2, help="how many sample cases (every fifth)")
    args = parser.parse_args()
    from glioseg.datasets.cases import find_cases

    results = {"machine": describe(), "cases": {}}
    for index, files in enumerate(find_cases(SAMPLE)[::5][: args.cases]):
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            make_study(files, work, seed=index)
            end_to_end = timed([str(GLIOSEG), "predict", str(work / "study"), "--out", str(work / "pred")])
            ready = timed([str(GLIOSEG), "predict", str(files.images[0].parent), "--out", str(work / "ready")])
            measured = {
                "end_to_end": end_to_end,
                "brats_ready_predict": ready,
                "steps_s": steps(work / "study", work / "steps"),
                "dice": agreement(
                    work / "pred" / "study.nii.gz", work / "ready" / f"{files.case_id}.nii.gz", files.label
                ),  # fmt: skip
            }
        results["cases"][files.case_id] = measured
        print(files.case_id, json.dumps(measured, indent=1))
    path = RESULTS / "raw_study.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"written {path}")


if __name__ == "__main__":
    main()
