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


def measure(name: str, k: int, depth: int, rank: int, n: int = 64, batch: int = 32) -> dict:
    """The recipe's own parts: ``TorchVisionTokens.entering`` for the frozen pass, ``training.adapt.AdaptedTop``
    (peft LoRA on every linear layer of blocks k..depth-1) and a linear head on the last block's pooled tokens."""
    from aigi.backbones import load_backbone
    from aigi.backbones.hf import torch_vision_tokens
    from aigi.training.adapt import AdaptedTop, AdaptSettings, lora_tensors

    tokens = torch_vision_tokens(load_backbone(name, runtime="torch"))
    x = torch.randn(n, 3, 224, 224)
    with torch.inference_mode():
        t = time.perf_counter()
        h = torch.cat([tokens.entering(x[i : i + batch], k) for i in range(0, n, batch)])
        below_s = (time.perf_counter() - t) / n
    cached = h.to(torch.float16)
    top = AdaptedTop(tokens, k, [depth - 1], AdaptSettings(from_block=k, rank=rank, alpha=2 * rank))
    targets = sorted({m.rsplit(".", 1)[-1] for m, mod in top.blocks.named_modules() if hasattr(mod, "lora_A")})
    head = torch.nn.Linear(2 * h.shape[-1], 1)
    params = [p for p in top.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    y = torch.randint(0, 2, (n,)).float()
    t = time.perf_counter()
    for i in range(0, n, batch):
        z = head(top(cached[i : i + batch].float())).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y[i : i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_s = (time.perf_counter() - t) / n
    lora = lora_tensors(top.blocks, k)
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
