#!/usr/bin/env bash
# Every detector side by side on aigi-dev (leave-generator-out seed 0, calibration, format swap,
# robustness on <=50 validation images per generator/source), the report committed under
# benchmarks/results/, and a screenshot of it from headless Chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/compare-aigi-dev}
.venv/bin/aigi compare --data ../shared/data/aigi-dev/manifest.csv \
  --config configs/univfd.yaml --config configs/univfd-plain-probe.yaml --seeds 0 --per-group 50 --out "$out"
cp "$out/report.html" benchmarks/results/compare-aigi-dev.html
cp "$out/report.json" benchmarks/results/compare-aigi-dev.json
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --hide-scrollbars --window-size=1300,4400 \
  --screenshot="$PWD/benchmarks/results/compare-aigi-dev.png" "file://$PWD/benchmarks/results/compare-aigi-dev.html"
