"""What adapting the backbone over cached tokens would cost on this machine, before any recipe is built: the
plan is to cache each view's token sequence entering block k (run once, frozen) and train LoRA on the blocks
from k on plus the head. Measured on the real CLIP ViT-B/16 image tower (the default's backbone) and DINOv2-S:

- cache: bytes per image-view at float16 (the sequence entering block k: 1 + patches tokens x width);
- the frozen part once: seconds per image of the pass up to block k;
- training: seconds per image of forward + backward through blocks k..last-read with LoRA (rank r on the
  attention and MLP projections, through peft) and a linear head on the mean patch tokens, batch 32;
- peak resident memory of the process (one per case); adapter size (LoRA tensors only) at float32.

    .venv/bin/python benchmarks/adapt_cost.py            # writes benchmarks/results/adapt-cost.{json,md}

Synthetic pixels (the cost does not depend on the content); torch on CPU with the machine's threads.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
CASES = [  # (backbone, k = first adapted block, last block the head reads + 1, LoRA rank)
    ("clip-b16", 6, 8, 8),
    ("clip-b16", 4, 8, 8),
    ("clip-b16", 8, 12, 8),
    ("dinov2-s14", 8, 12, 8),
]


def vision_parts(name: str):
    """(embed: pixels -> the sequence entering block 0, the list of blocks) of a backbone's torch model."""
    if name == "clip-b16":
        from aigi.backbones.clip_b16 import load_clip_b16_torch

        vm = load_clip_b16_torch().vision_model
        return (lambda x: vm.pre_layrnorm(vm.embeddings(x))), list(vm.encoder.layers), 224
    from aigi.backbones.dinov2 import load_dinov2_torch

    m = load_dinov2_torch()
    return (lambda x: m.embeddings(x)), list(m.encoder.layer), 224


def run_blocks(blocks, h):
    for b in blocks:
        out = b(h, None) if "CLIP" in type(b).__name__ else b(h)
        h = out[0] if isinstance(out, tuple) else out
    return h


def measure(name: str, k: int, depth: int, rank: int, n: int = 64, batch: int = 32) -> dict:
    from peft import LoraConfig, inject_adapter_in_model

    embed, blocks, size = vision_parts(name)
    x = torch.randn(n, 3, size, size)
    with torch.inference_mode():
        t = time.perf_counter()
        h = torch.cat([run_blocks(blocks[:k], embed(x[i : i + batch])) for i in range(0, n, batch)])
        below_s = (time.perf_counter() - t) / n
    cached = h.to(torch.float16)
    above = torch.nn.ModuleList(blocks[k:depth])
    targets = sorted({m.rsplit(".", 1)[-1] for m, mod in above.named_modules() if isinstance(mod, torch.nn.Linear)})
    for p in above.parameters():
        p.requires_grad_(False)
    above = inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets), above)
    head = torch.nn.Linear(h.shape[-1], 1)
    params = [p for p in above.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    y = torch.randint(0, 2, (n,)).float()
    t = time.perf_counter()
    for i in range(0, n, batch):
        z = head(run_blocks(above, cached[i : i + batch].float())[:, 1:].mean(1)).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y[i : i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_s = (time.perf_counter() - t) / n
    lora = {k_: v for k_, v in above.state_dict().items() if "lora_" in k_}
    return {
        "backbone": name,
        "k": k,
        "depth": depth,
        "adapted_blocks": depth - k,
        "rank": rank,
        "targets": targets,
        "cache_bytes_per_view": int(cached[0].numel() * 2),
        "below_s_per_image": below_s,
        "train_s_per_image": train_s,
        "adapter_bytes": int(sum(v.numel() for v in lora.values()) * 4),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    import subprocess
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--case":  # one case per process, so its peak memory is its own
        torch.manual_seed(0)
        print(json.dumps(measure(*CASES[int(sys.argv[2])])))
        return
    rows = []
    for i in range(len(CASES)):
        done = subprocess.run([sys.executable, __file__, "--case", str(i)], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    out = ROOT / "benchmarks" / "results"
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "threads": torch.get_num_threads()},
              "rows": rows}  # fmt: skip
    (out / "adapt-cost.json").write_text(json.dumps(report, indent=1))
    lines = ["# Adapting the backbone over cached tokens: what it costs here", "",
             f"From `benchmarks/adapt_cost.py` on {os.cpu_count()} CPU cores ({torch.get_num_threads()} torch threads);",
             "synthetic 224 px inputs, batch 32, LoRA through peft on every linear layer of the adapted blocks.",
             "Per image-view; an epoch over the default's pool (about 2,500 training images x 2 views) is 5,000 of them.", "",
             "| backbone | adapted blocks | rank | cache per view | frozen pass to block k | train step (fwd + bwd) | "
             "epoch of 5,000 views | adapter | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['backbone']} | {r['k']}-{r['depth'] - 1} | {r['rank']} | {r['cache_bytes_per_view'] / 1024:.0f} kB | "
            f"{1000 * r['below_s_per_image']:.0f} ms | {1000 * r['train_s_per_image']:.0f} ms | "
            f"{5000 * r['train_s_per_image'] / 60:.1f} min | {r['adapter_bytes'] / 1024:.0f} kB | {r['peak_rss_mb']:.0f} MB |"
        )
    (out / "adapt-cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
