#!/usr/bin/env bash
# Installs the official SAM, SAM-HQ and SAM 2 packages into the active environment (with
# --with-grounding-dino also the official Grounding DINO), for the parity tests in tests/official.
# The versions are those tests/data/reference/official was made with.
# - sam2 is an sdist whose build imports torch: --no-build-isolation builds it against the torch
#   already installed instead of downloading another; SAM2_BUILD_CUDA=0 skips its optional CUDA
#   extension (image prediction does not use it).
# - rf-groundingdino requires opencv-python, which would overwrite opencv-python-headless's cv2, and
#   supervision, which only its demo helpers import: --no-deps, plus the modules its model imports.
set -euo pipefail

python -m pip install -q setuptools wheel
SAM2_BUILD_CUDA=0 python -m pip install -q --no-build-isolation \
    segment-anything==1.0 segment-anything-hq==0.3 sam2==1.1.0
python -c "import segment_anything, segment_anything_hq, sam2"
if [[ "${1:-}" == "--with-grounding-dino" ]]; then
    python -m pip install -q --no-deps rf-groundingdino==0.3.0 addict yapf platformdirs pycocotools
    python -c "import groundingdino.models"
fi
