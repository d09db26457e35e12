"""Format-swap check of the shipped default against the unprotected plain probe, on aigi-dev's
held-out validation split (the 20% the default never trained on).

    .venv/bin/python benchmarks/format_swap.py
Writes benchmarks/results/format_swap.{json,md}. Needs ../shared/data/aigi-dev.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared/data/aigi-dev/manifest.csv"


def main() -> None:
    from aigi import load_detector
    from aigi.config import load_train_config
    from aigi.data import load_data
    from aigi.data.splits import validation_split
    from aigi.evaluation.format_swap import format_swap
    from aigi.workflows.train import train_detector

    m = load_data(DATA)
    default = load_detector("univfd")
    seed = default.training_info["config"]["seed"]
    frac = default.training_info["config"]["val_fraction"]
    val = m.subset(validation_split(m, frac, seed)[1])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        plain = train_detector(
            load_train_config(HERE.parent / "configs/univfd-plain-probe.yaml"), m, Path(tmp) / "plain"
        )
        for name, det in [("univfd (shipped, shortcut denial)", default), ("univfd plain probe (no denial)", plain)]:
            results[name] = format_swap(det, val)
            print(name, json.dumps(results[name]), flush=True)
    out = HERE / "results" / "format_swap"
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    rows = "\n".join(
        f"| {n} | {r['auroc_before']:.3f} | {r['auroc_after']:.3f} | {r['auroc_change']:+.3f} | "
        f"{r['mean_p_fake_real_before']:.3f} → {r['mean_p_fake_real_after']:.3f} | "
        f"{r['mean_p_fake_fake_before']:.3f} → {r['mean_p_fake_fake_after']:.3f} | "
        f"{'YES' if r['learned_the_format'] else 'no'} |"
        for n, r in results.items()
    )
    r0 = next(iter(results.values()))
    out.with_suffix(".md").write_text(f"""# Format swap on aigi-dev's held-out validation split

{r0["n_real"]} real and {r0["n_fake"]} fake images the shipped default never trained on. "After": reals
re-encoded as the fakes are stored (256x256, JPEG q95) and fakes as the reals are (333x314, JPEG q80).
A drop in AUROC over 0.05 flags a detector that learned the storage format.

| detector | AUROC as stored | AUROC swapped | change | mean p_fake, reals | mean p_fake, fakes | learned the format? |
|---|---|---|---|---|---|---|
{rows}

Re-run: `.venv/bin/python benchmarks/format_swap.py`.
""")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
