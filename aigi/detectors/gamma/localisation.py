"""GAMMA's localisation scoring: held-out manipulated images (an inpainting, copy-move or splice of each host,
never perturbed or augmented), scored with their true masks. The metrics are ``evaluation.localisation``'s."""

from __future__ import annotations

import numpy as np
from PIL import Image

from aigi.contract import Localiser


def score_manipulated(
    det: Localiser, hosts, kinds: list[str], donors=None, seed: int = 0, batch_size: int = 16, progress=None
):
    """For a localiser (:class:`aigi.contract.Localiser`, GAMMA): manipulate every host image (``kinds[i]``:
    an inpainting, copy-move, or splice with a donor drawn from ``donors``), without perturbation or augmented
    view, and score it. Returns (raw p_fake per host, NaN where it failed; predicted mask grids and true masks
    [S, S] at the model's crop, one per host that did not fail, in order; errors per host)."""
    import dataclasses

    from aigi.augment.manipulate import manipulate
    from aigi.augment.seeding import rendezvous_donor, sha_keys, variant_rngs
    from aigi.scoring import forward, load_prepared
    from aigi.training.cache import compute_cached, hash_files

    recipe = dataclasses.replace(det.manipulation_recipe(), perturb_p=0.0)
    donor_shas, _ = hash_files([s.path for s in donors]) if donors is not None else ([], [])
    pool = [j for j, sha in enumerate(donor_shas) if sha]  # unreadable donors leave the pool
    donor_keys = sha_keys([donor_shas[j] for j in pool]) if pool else None
    shas, errors = hash_files([s.path for s in hosts])
    idx = [i for i, sha in enumerate(shas) if sha]
    keys: list[tuple[str, str]] = []
    plans = []
    for i in idx:
        sha, kind = str(shas[i]), kinds[i]
        d = pool[rendezvous_donor(sha, 0, seed, donor_keys)] if kind == "splice" and donor_keys is not None else -1
        plans.append((sha, kind, d))
        keys.append(
            (sha, f"heldout-{kind}-{recipe.key()}-seed{seed}" + (f"-donor{str(donor_shas[d])[:16]}" if d >= 0 else ""))
        )
    tools = det.manipulation_tools()
    pre = det.preprocessing

    def make(n):
        sha, kind, d = plans[n]
        s = hosts.samples[idx[n]]
        _, rng = variant_rngs(sha, 0, seed)
        donor = load_prepared(det, donors.samples[d].path) if d >= 0 else None
        m = manipulate(load_prepared(det, s.path), s.label, kind, rng, recipe, tools, donor)
        truth = np.asarray(pre.geometry(Image.fromarray(m.mask.astype(np.uint8)), "nearest"))
        return pre(m.image), truth

    tok_cache, tgt_cache = det.token_caches()
    feats, truths, job_errors = compute_cached(
        tok_cache, keys, make, det.encode_tokens, tgt_cache, batch_size, progress
    )
    for n, e in enumerate(job_errors):
        if e:
            errors[idx[n]] = e
    ok = [n for n, f in enumerate(feats) if f is not None]
    p = np.full(len(hosts), np.nan)
    grids = truth_out = None
    if ok:
        out = forward(det, {"tokens": np.stack([f for f in feats if f is not None])})
        p[[idx[n] for n in ok]] = 1.0 / (1.0 + np.exp(-out["logit"].double().numpy()))
        grids = out["mask"].numpy()
        truth_out = np.stack([np.asarray(truths[n]).astype(bool) for n in ok])
    return p, grids, truth_out, errors
