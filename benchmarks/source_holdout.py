"""Real sources and generator families never seen in training, over every shared data set: DINOv2-S, CLIP
ViT-B/16 (`clip-b16`) and the two fused, with and without the new data (aigi-human's real faces and human art,
aigi-modern's eight generator families).

    python benchmarks/source_holdout.py extract [--data-root ../shared/data] [--work runs/sh]
    python benchmarks/source_holdout.py report  [--work runs/sh]

The pool is the recipe's own (``configs/univfd.yaml``: ``recipe_manifest``, so the shipped run reads the same
cache): aigi-dev + aigi-wild + aigi-modern + aigi-human + rendered non-photo reals, at most
``max_per_generator`` images of every generator, real source and render kind, seeded. ``extract`` fills the
feature cache (resumable) for both backbones: every block's class and mean patch token of the plain view and
of one seeded augmented view (profile-picture sizes, re-compressed). ``report`` fits logistic heads from the
cache and writes ``benchmarks/results/source-holdout.{json,md}``:

- leave-family-out (``data.splits.FAMILIES``, the aigi-modern open models a fold of their own): AUROC per held-out
  family, and the share of its fakes flagged at the threshold the rule sets on the fold's validation split;
- leave-SOURCE-out: every real source (each photo source, each face source, paintings, drawings, each render
  kind) left out of training whole; the threshold set by the rule on a validation split of the rest; the
  left-out source's false-positive rate at it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SETS = ("aigi-dev", "aigi-wild", "aigi-modern", "aigi-human")
BACKBONES = {"dinov2-s14": 768, "clip-b16": 1536}  # per block: class token + mean patch token
ALL_BLOCKS = tuple(range(12))


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def recipe(config: Path):
    from aigi.config import load_train_config

    return load_train_config(config)


def pool(args, twins: bool = False):
    """The recipe's images (renders added, capped per group; with ``twins``, its fake twins of real faces and art
    too) and the config they were drawn with. The protocols add the twins themselves (``Pool.add_recon``), each
    tied to its real parent, so a held-out image's twin never trains."""
    import dataclasses

    from aigi.data import load_data
    from aigi.workflows.train import recipe_manifest

    cfg = recipe(args.config)
    data = load_data(",".join(str(args.data_root / s / "manifest.csv") for s in SETS))
    return recipe_manifest(cfg if twins else dataclasses.replace(cfg, reconstructions=[]), data), cfg


def detector(backbone: str):
    from aigi.detectors.univfd import UnivFD, UnivFDConfig

    return UnivFD(UnivFDConfig(backbone=backbone, blocks=ALL_BLOCKS, crops=0, feature_dim=BACKBONES[backbone]))


def features(args, backbone: str, progress=None):
    """[N, 2 views, 12 * width] float16 of the pool, through the cache; and the per-image errors."""
    from aigi.scoring import extract

    m, cfg = pool(args)
    feats, errors = extract(
        detector(backbone),
        [s.path for s in m],
        cfg.train_views(),
        cfg.view_recipe,
        cfg.seed,
        batch_size=16,
        progress=progress,
    )
    return feats["features"][:, :, 0], errors


def counter(name: str, total: int):
    done = [0]

    def progress(n):
        done[0] += n
        if done[0] % 400 < n:
            log(f"  {name}: {done[0]}/{total} image-views")

    return progress


def recon_manifest(args):
    """Every pool image of the recipe's ``reconstructions`` sources (or ``--recon-sources``) with its fake twin
    (``augment.reconstruct.reconstruct_sources``). Returns the twins and each one's parent index in the pool."""
    from aigi.augment.reconstruct import RECONSTRUCTION_VERSION, reconstruct_sources
    from aigi.paths import cache_dir

    m, cfg = pool(args)
    twins, parents = reconstruct_sources(
        m, args.recon_sources or cfg.reconstructions, cache_dir() / "reconstructions" / f"v{RECONSTRUCTION_VERSION}"
    )
    return twins, np.array(parents)


def extract_recon(args):
    from aigi.scoring import extract

    rm, _ = recon_manifest(args)
    _, cfg = pool(args)
    log(f"reconstructed faces: {len(rm)}")
    feats, errors = extract(detector("clip-b16"), [s.path for s in rm], cfg.train_views(), cfg.view_recipe,
                            cfg.seed, batch_size=16, progress=counter("recon", 2 * len(rm)))  # fmt: skip
    log(f"done; {sum(e is not None for e in errors)} unreadable")


def extract_all(args):
    m, cfg = pool(args)
    log(f"pool: {len(m)} images; {m.summary()}")
    for backbone in args.backbones:
        _, errors = features(args, backbone, counter(backbone, len(m) * len(cfg.train_views())))
        log(f"{backbone} done; {sum(e is not None for e in errors)} unreadable")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["extract", "report", "before", "shipped", "ablate", "extract-recon"])
    ap.add_argument("--detector", default="univfd", help="before, shipped: the shipped detector to score")
    ap.add_argument("--reals-only", action="store_true", help="before: aigi-human's reals only")
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "sh")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "univfd.yaml")
    ap.add_argument("--backbones", nargs="+", default=["clip-b16", "dinov2-s14"])
    ap.add_argument("--recipes", nargs="*", help="report: only these recipes (names as in RECIPES)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--max-iter", type=int, default=None, help="the head's iterations (default: the recipe's)")
    ap.add_argument("--recon-sources", nargs="+", help="the real sources given twins (default: the recipe's)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    parts = {"extract": extract_all, "extract-recon": extract_recon, "report": report, "ablate": ablate}
    parts.update({"before": before, "shipped": shipped})
    parts[args.part](args)


# --- a shipped detector on what it never saw ---------------------------------------------------------------
def before(args):
    """A shipped detector (``--detector``, by default the one in the package) on every image of aigi-human and
    aigi-modern (``--reals-only``: aigi-human's reals): the share of each real source flagged and of each
    generator caught at its own threshold."""
    from aigi import load_detector
    from aigi.data import load_data
    from aigi.scoring import calibrated_scores

    det = load_detector(args.detector)
    m = load_data(",".join(str(args.data_root / s / "manifest.csv") for s in NEW_SETS))
    if args.reals_only:
        m = m.subset(lambda s: s.label == 0)
    p, _ = calibrated_scores(det, m, progress=counter("before", len(m)))
    y, gen = np.array(m.labels), np.array([s.generator for s in m])
    thr = det.calibration.threshold
    out = {"detector": det.version, "threshold": thr, "groups": {}}
    for g in sorted(set(gen.tolist())):
        k = gen == g
        out["groups"][g] = {"label": "fake" if y[k][0] else "real", "n": int(k.sum()),
                            "flagged": float((p[k] >= thr).mean()), "mean_p": float(np.nanmean(p[k]))}  # fmt: skip
    log(json.dumps(out["groups"]))
    (args.work / f"before-{Path(str(args.detector)).name}.json").write_text(json.dumps(out, indent=1))


def shipped(args):
    """The shipped default on its own validation split (as its training run drew it from the recipe's pool):
    every real source's and generator's rate at its threshold; robustness (JPEG q50, 0.5x resize, the social
    pipeline, a 50 % crop) on a seeded subset of it; the format swap on its aigi-dev part."""
    from detection_quality import robustness_at

    from aigi import load_detector
    from aigi.data.splits import seeded_subset, validation_split
    from aigi.evaluation.format_swap import format_swap
    from aigi.evaluation.metrics import auroc
    from aigi.records import unsure_interval
    from aigi.scoring import calibrated_scores

    det = load_detector(args.detector)
    full, cfg = pool(args, twins=True)
    val = full.subset(validation_split(full, cfg.val_fraction, cfg.seed)[1])
    thr = det.calibration.threshold
    p, _ = calibrated_scores(det, val)
    y, gens = np.asarray(val.labels), np.asarray([s.generator for s in val])
    lo, hi = unsure_interval(thr, det.calibration.unsure_band)
    out = {"detector": det.version, "threshold": thr, "validation": val.summary(), "auroc": auroc(y, p),
           "unsure_share": float(((p > lo) & (p < hi)).mean()),
           "unsure_share_real": float(((p > lo) & (p < hi))[y == 0].mean()),
           "unsure_share_fake": float(((p > lo) & (p < hi))[y == 1].mean()),
           "flagged_fakes": float((p[y == 1] >= thr).mean()), "fpr_reals": float((p[y == 0] >= thr).mean()),
           "at_0.5": {"tpr": float((p[y == 1] >= 0.5).mean()), "fpr": float((p[y == 0] >= 0.5).mean())},
           "fpr_per_real_source": {g: float((p[(gens == g) & (y == 0)] >= thr).mean()) for g in sorted(set(gens[y == 0]))},
           "tpr_per_generator": {g: float((p[gens == g] >= thr).mean()) for g in sorted(set(gens[y == 1]))}}  # fmt: skip
    log(f"validation: AUROC {out['auroc']:.3f}, flagged {out['flagged_fakes']:.3f}, unsure {out['unsure_share']:.3f}")
    out["robustness"] = robustness_at(
        det, seeded_subset(val.subset(lambda s: not s.generator.startswith("render-")), 10, 0), thr
    )
    out["format_swap"] = format_swap(det, val.subset(lambda s: "/aigi-dev/" in s.path))
    log(f"format swap: {out['format_swap']['auroc_before']:.3f} -> {out['format_swap']['auroc_after']:.3f}")
    (args.work / "shipped.json").write_text(json.dumps(out, indent=1))


# --- heads from the cache ------------------------------------------------------------------------------
NEW_SETS = ("aigi-modern", "aigi-human")
EARLY = tuple(range(8))


class Recipe(NamedTuple):
    backbones: tuple[str, ...]  # whose block descriptors are concatenated
    new_data: bool  # whether aigi-human and aigi-modern are in training
    blocks: tuple[int, ...] = ALL_BLOCKS  # the blocks read
    twins: bool = False  # whether the recipe's fake twins of real faces and art are in training
    tokens: str = "both"  # each block's class and mean patch token, or one of them (UnivFDConfig.tokens)
    balance: bool = False  # every real source and generator weighs the same (UnivFDConfig.balance "group")
    C: float = 3e-3
    # content taken away from the head: content_k > 0 clusters (content_clusters, on block content_block's clip-b16
    # class token), then either the rows balanced inside them (content_weights) or, content_proj > 0, that many
    # directions between their centroids projected out (content_projection)
    content_k: int = 0
    content_block: int = 11
    content_proj: int = 0
    # score fusion: one head per part (each its own recipe, fitted on the same split), their calibrated validation
    # scores fused by evaluation.fusion's logistic fusion; the fields above then say only new_data and twins
    parts: tuple = ()


RECIPES = {
    "DINOv2-S, dev+wild": Recipe(("dinov2-s14",), False),
    "clip-b16, dev+wild": Recipe(("clip-b16",), False),
    "DINOv2-S, + human + modern": Recipe(("dinov2-s14",), True),
    "clip-b16, + human + modern": Recipe(("clip-b16",), True),
    "fused, + human + modern": Recipe(("clip-b16", "dinov2-s14"), True),
    "previous default: clip-b16 blocks 0-7, + twins": Recipe(("clip-b16",), True, EARLY, True),
    "shipped: clip-b16 blocks 0-7 patch tokens, balanced, + twins": Recipe(
        ("clip-b16",), True, EARLY, True, "patch", True, 1e-3
    ),
    "score fusion of the two + human + modern heads": Recipe(
        ("clip-b16", "dinov2-s14"), True, parts=(Recipe(("clip-b16",), True), Recipe(("dinov2-s14",), True))
    ),
    "score fusion, both heads as shipped (blocks 0-7 patch tokens, balanced, no twins)": Recipe(
        ("clip-b16", "dinov2-s14"),
        True,
        parts=tuple(Recipe((b,), True, EARLY, False, "patch", True, 1e-3) for b in ("clip-b16", "dinov2-s14")),
    ),
}
SEEDS = (0, 1, 2)


class Pool:
    """The pool's cached descriptors per backbone (plain view 0 and augmented view 1), labels and groups."""

    def __init__(self, args):
        self.m, self.cfg = pool(args)
        self.y = np.array(self.m.labels)
        self.gen = np.array([s.generator for s in self.m])
        self.new = np.array([any(f"/{n}/" in s.path for n in NEW_SETS) for s in self.m])
        self.f = {b: features(args, b)[0] for b in BACKBONES}
        ok = np.all([~np.isnan(f[:, :, 0]).any(1) for f in self.f.values()], 0)
        log(f"pool {len(self.m)} images, {int((~ok).sum())} unreadable")
        self.ok = ok
        self.cfg_work = args.work
        self.parent = np.full(len(self.m), -1)  # a reconstruction's real twin (recon_manifest); -1 for the rest
        if getattr(args, "recon", False):
            self.add_recon(args)

    def add_recon(self, args):
        """Append the reconstructed faces (``extract-recon``) as fakes; ``parent`` ties each to its real twin."""
        from aigi.scoring import extract

        rm, parents = recon_manifest(args)
        f, errors = extract(detector("clip-b16"), [s.path for s in rm], self.cfg.train_views(), self.cfg.view_recipe,
                            self.cfg.seed)  # fmt: skip
        n = len(rm)
        self.f["clip-b16"] = np.concatenate([self.f["clip-b16"], f["features"][:, :, 0]])
        for b in self.f:
            if b != "clip-b16":  # only CLIP was extracted for them: recipes with them use CLIP alone
                self.f[b] = np.concatenate([self.f[b], np.full((n, *self.f[b].shape[1:]), np.nan, self.f[b].dtype)])
        self.y = np.concatenate([self.y, np.ones(n, int)])
        self.gen = np.concatenate([self.gen, np.array(["recon-face"] * n)])
        self.new = np.concatenate([self.new, np.ones(n, bool)])
        self.ok = np.concatenate([self.ok, np.array([e is None for e in errors])])
        self.parent = np.concatenate([self.parent, parents])
        self.m = self.m.__class__(list(self.m.samples) + list(rm.samples), self.m.source, self.m.layout)

    def with_twins(self, train_idx, twins: bool = True):
        """``train_idx`` plus the reconstructions whose real twin is in it (never a twin of a test image)."""
        if not twins:
            return train_idx
        kids = np.flatnonzero((self.parent >= 0) & np.isin(self.parent, train_idx) & self.ok)
        return np.concatenate([train_idx, kids])

    def x(self, backbones, idx, views, blocks=ALL_BLOCKS, tokens="both"):
        """[len(idx) * len(views), d] float32: the descriptors of ``idx`` for each view, side by side by backbone
        (``blocks``: only those blocks'; ``tokens``: their class and mean patch tokens, or one of the two, as
        ``UnivFDConfig.tokens`` reads them)."""
        from aigi.detectors.univfd import token_columns

        def part(b, v):
            f = self.f[b][idx, v]
            if tuple(blocks) == ALL_BLOCKS and tokens == "both":
                return f
            w = BACKBONES[b]
            return f[:, np.concatenate([k * w + token_columns(w, 1, tokens).numpy() for k in blocks])]

        return np.concatenate([np.concatenate([part(b, v) for b in backbones], 1) for v in views], 0).astype(np.float32)


def content_clusters(pool, fit_idx, r: Recipe, seed: int) -> np.ndarray:
    """Each row's content cluster: k-means (``r.content_k`` clusters, seeded) over the L2-normalised clip-b16
    class token of block ``r.content_block`` (what the image shows, not how it was made) of the plain view."""
    from sklearn.cluster import KMeans

    d = BACKBONES["clip-b16"]
    z = pool.f["clip-b16"][fit_idx, 0, r.content_block * d : r.content_block * d + d // 2].astype(np.float32)
    return KMeans(r.content_k, n_init=3, random_state=seed).fit_predict(z / np.linalg.norm(z, axis=1, keepdims=True))


def content_weights(y, lab, weight):
    """Content-balanced row weights: inside every content cluster (``lab``) both classes are scaled to the
    smaller class's weight there, so no content says "fake" or "real" (a cluster of one class drops out: anime
    fakes with no real drawing beside them teach nothing); then the two classes weigh the same again.
    ``weight``: the rows' weights before (None: all 1)."""
    w = np.ones(len(y)) if weight is None else weight.copy()
    for c in np.unique(lab):
        real, fake = (lab == c) & (y == 0), (lab == c) & (y == 1)
        target = min(w[real].sum(), w[fake].sum())
        for k in (real, fake):
            if k.any():
                w[k] *= target / w[k].sum()
    if not all(w[y == cls].sum() > 0 for cls in (0, 1)):
        raise ValueError("content_weights: no content cluster holds both classes; use fewer clusters")
    for cls in (0, 1):
        w[y == cls] *= 0.5 * w.sum() / w[y == cls].sum()
    return w / w.mean()


def content_projection(X, lab, rank: int):
    """x -> x with the ``rank`` leading directions between the content clusters' centroids taken out (in the
    standardised space of the rows ``lab`` labels, the first of ``X``): the head cannot use the clusters' main
    differences."""
    mu, sd = X[: len(lab)].mean(0), X[: len(lab)].std(0) + 1e-6
    Z = (X[: len(lab)] - mu) / sd
    M = np.stack([Z[lab == c].mean(0) for c in np.unique(lab)])
    V = np.linalg.svd(M - M.mean(0), full_matrices=False)[2][:rank]

    def project(A):
        A = (A - mu) / sd
        return (A - (A @ V.T) @ V).astype(np.float32)

    return project


def head_for(pool, r: Recipe, fit_idx, seed: int, max_iter: int):
    """The recipe's head fitted on ``fit_idx`` (both views; rows weighted by ``logistic.balanced_weights`` when the
    recipe balances, then by content when it says so). Returns idx -> raw logit of the plain view."""
    from detection_quality import fit

    from aigi.detectors.logistic import balanced_weights

    views = pool.cfg.train_views()
    weight = balanced_weights(pool.y[fit_idx], pool.gen[fit_idx]) if r.balance else None
    X = pool.x(r.backbones, fit_idx, views, r.blocks, r.tokens)

    def tf(A):
        return A

    if r.content_k:
        lab = content_clusters(pool, fit_idx, r, seed)
        if r.content_proj:
            tf = content_projection(X, lab, r.content_proj)
        else:
            weight = content_weights(pool.y[fit_idx], lab, weight)
    weight = None if weight is None else np.tile(weight, len(views))
    head = fit(tf(X), np.tile(pool.y[fit_idx], len(views)), r.C, max_iter, weight)
    return lambda idx: head(tf(pool.x(r.backbones, idx, [0], r.blocks, r.tokens)))


def train_and_threshold(pool, r: Recipe, train_idx, seed: int, max_iter: int):
    """As ``aigi train`` does: a seeded validation split of ``train_idx`` (stratified by label and group; the
    recipe's ``val_fraction``), the head fitted on the rest (``head_for``; with ``r.parts``, one head per part,
    each Platt-scaled on validation, fused by logistic regression on validation), Platt scaling on validation,
    the threshold by the per-source rule. Returns (score: idx -> calibrated p of the plain view, threshold)."""
    from aigi.calibration import Calibration, logit
    from aigi.data.splits import stratified_split
    from aigi.evaluation.fusion import fit_logistic_fusion, logistic_fuse
    from aigi.workflows.train import source_fpr_threshold

    strata = [f"{pool.y[i]}/{pool.gen[i]}" for i in train_idx]
    rest, val = stratified_split(strata, pool.cfg.val_fraction, seed)
    fit_idx, val_idx = train_idx[rest], train_idx[val]
    yv = pool.y[val_idx]
    if r.parts:
        raws = [head_for(pool, part, fit_idx, seed, max_iter) for part in r.parts]
        zs = [h(val_idx) for h in raws]
        cals = [Calibration.fit(z, yv, pool.cfg.calibration, pool.cfg.unsure_band) for z in zs]

        def branches(idx):
            return [c.apply_logit(h(idx)) for c, h in zip(cals, raws)]

        fused = fit_logistic_fusion(*(c.apply_logit(z) for c, z in zip(cals, zs)), yv)

        def raw(idx):
            return logit(logistic_fuse(*branches(idx), fused))
    else:
        raw = head_for(pool, r, fit_idx, seed, max_iter)
    zv = raw(val_idx)
    cal = Calibration.fit(zv, yv, pool.cfg.calibration, pool.cfg.unsure_band)
    thr = source_fpr_threshold(cal.apply_logit(zv), yv, pool.gen[val_idx], pool.cfg.max_source_fpr)
    return (lambda idx: cal.apply_logit(raw(idx))), thr


def lofo(pool, r: Recipe, seed: int, max_iter: int):
    """Leave-family-out: per held-out family, AUROC against the held-out 20 % of reals and the share of its
    fakes flagged at the rule's threshold."""
    from aigi.data.manifest import Manifest
    from aigi.data.splits import FAMILIES, leave_family_out
    from aigi.evaluation.metrics import auroc

    keep = np.flatnonzero(pool.ok & (r.new_data | ~pool.new) & (pool.parent < 0))
    base = Manifest([pool.m.samples[i] for i in keep], "pool")
    out = {}
    for fold in leave_family_out(base, seed, families=FAMILIES):
        train, test = pool.with_twins(keep[fold.train], r.twins), keep[fold.test]
        if not r.new_data:  # the family's fakes of the new sets are tested too
            fam = FAMILIES[fold.name]
            extra = np.flatnonzero(pool.ok & pool.new & (pool.y == 1) & np.isin(pool.gen, fam))
            test = np.concatenate([test, extra])
        score, thr = train_and_threshold(pool, r, train, seed, max_iter)
        p = score(test)
        yt = pool.y[test]
        out[fold.name] = {
            "auroc": auroc(yt, p),
            "flagged": float((p[yt == 1] >= thr).mean()),
            "fpr_test_reals": float((p[yt == 0] >= thr).mean()),
            "threshold": thr,
            "per_generator": {
                g: {"auroc": auroc(yt[(yt == 0) | (pool.gen[test] == g)], p[(yt == 0) | (pool.gen[test] == g)]),
                    "flagged": float((p[pool.gen[test] == g] >= thr).mean())}
                for g in sorted(set(pool.gen[test][yt == 1].tolist()))
            },
        }  # fmt: skip
        log(f"    lofo {fold.name}: AUROC {out[fold.name]['auroc']:.3f}, flagged {out[fold.name]['flagged']:.2f}")
    return out


def loso(pool, r: Recipe, seed: int, max_iter: int, sources=None):
    """Leave-source-out: per real source (``sources``, default all), train without it at all; its false-positive
    rate at the rule's threshold (all its images, plain view)."""
    out = {}
    for src in sources or sorted(set(pool.gen[(pool.y == 0) & (pool.parent < 0)].tolist())):
        held = pool.ok & (pool.gen == src)
        rest = np.flatnonzero(pool.ok & ~held & (r.new_data | ~pool.new) & (pool.parent < 0))
        score, thr = train_and_threshold(pool, r, pool.with_twins(rest, r.twins), seed, max_iter)
        p = score(np.flatnonzero(held))
        out[src] = {"fpr": float((p >= thr).mean()), "n": int(held.sum()), "threshold": thr,
                    "mean_p": float(p.mean())}  # fmt: skip
        log(f"    loso {src}: FPR {out[src]['fpr']:.3f} (n {out[src]['n']}, thr {thr:.3f})")
    return out


HARD_SOURCES = ["face-photo", "unsplash-face", "human-drawing", "human-painting", "urban100-photo", "camera-photo"]
CLIP = ("clip-b16",)
ABLATIONS = {  # one thing changed at a time around the shipped recipe (clip-b16, all data)
    "both tokens, C 3e-3 (the previous default)": Recipe(CLIP, True, EARLY, True),
    "both tokens, balanced, C 3e-3": Recipe(CLIP, True, EARLY, True, "both", True),
    "class tokens, C 3e-3": Recipe(CLIP, True, EARLY, True, "cls"),
    "patch tokens, C 3e-3": Recipe(CLIP, True, EARLY, True, "patch"),
    "patch tokens, balanced, C 1e-3 (shipped)": Recipe(CLIP, True, EARLY, True, "patch", True, 1e-3),
    "patch tokens, balanced, C 3e-4": Recipe(CLIP, True, EARLY, True, "patch", True, 3e-4),
    "patch tokens, balanced, C 1e-3, no twins": Recipe(CLIP, True, EARLY, False, "patch", True, 1e-3),
    "patch tokens, balanced, C 1e-3, all 12 blocks": Recipe(CLIP, True, ALL_BLOCKS, True, "patch", True, 1e-3),
    "patch tokens, balanced, C 1e-3, blocks 0-5": Recipe(CLIP, True, tuple(range(6)), True, "patch", True, 1e-3),
    "fused both tokens, blocks 0-7, C 3e-3": Recipe(("clip-b16", "dinov2-s14"), True, EARLY),
    "shipped + content-balanced (32 clusters of block 11's class token)": Recipe(
        CLIP, True, EARLY, True, "patch", True, 1e-3, 32, 11
    ),
    "shipped + content-balanced (32 clusters of block 7's class token)": Recipe(
        CLIP, True, EARLY, True, "patch", True, 1e-3, 32, 7
    ),
    "shipped + 8 directions between 32 content clusters projected out": Recipe(
        CLIP, True, EARLY, True, "patch", True, 1e-3, 32, 11, 8
    ),
}


def ablate(args):
    """Split seeds ``--seeds``, every recipe variant in ABLATIONS: leave-family-out, and leave-source-out on
    the sources that fail (faces, art, Urban100, camera originals)."""
    args.recon = True
    pool = Pool(args)
    path = args.work / "ablations.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    for seed in args.seeds:
        for name, r in ABLATIONS.items():
            key = f"{name} | seed {seed}"
            if key in res or (args.recipes and name not in args.recipes):
                continue
            log(key)
            res[key] = {
                "lofo": lofo(pool, r, seed, args.max_iter),
                "loso": loso(pool, r, seed, args.max_iter, HARD_SOURCES),
            }
            out = res[key]
            log(f"  {key}: LOFO mean {np.mean([v['auroc'] for v in out['lofo'].values()]):.3f}, flagged "
                f"{np.mean([v['flagged'] for v in out['lofo'].values()]):.2f}; LOSO "
                + ", ".join(f"{k} {v['fpr']:.2f}" for k, v in out["loso"].items()))  # fmt: skip
            merged = json.loads(path.read_text()) if path.exists() else {}  # another run may have added its own
            path.write_text(json.dumps({**merged, key: out}, indent=1))


def LOSO_SOURCES(pool) -> list[str]:
    return sorted(set(pool.gen[(pool.y == 0) & (pool.parent < 0)].tolist()))


def report(args):
    args.recon = True  # the shipped recipe trains with its twins (added to the pool, used only where a recipe says)
    pool = Pool(args)
    path = args.work / "source-holdout.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    for seed in args.seeds:  # every recipe on seed 0 first: a run cut short still compares them all
        for name, r in RECIPES.items():
            # the recipes without the new data are the "before" rows: split seed 0 only, to fit 2 cores
            if (args.recipes and name not in args.recipes) or (seed > 0 and not r.new_data):
                continue
            # render kinds are left out on seed 0 only (0-4 % in every recipe there), to fit 2 cores
            sources = None if seed == 0 else [s for s in LOSO_SOURCES(pool) if not s.startswith("render-")]
            for proto, fn in (("lofo", lofo), ("loso", loso)):
                key = f"{name} | {proto} | seed {seed}"
                if key in res:
                    continue
                log(f"{key}")
                kw = {"sources": sources} if proto == "loso" else {}
                res[key] = fn(pool, r, seed, args.max_iter, **kw)
                merged = json.loads(path.read_text()) if path.exists() else {}  # resumable, and shared by runs
                res = {**merged, key: res[key]}
                path.write_text(json.dumps(res, indent=1))
    write_markdown(res, pool)


def ablation_section(work: Path) -> list[str]:
    """Each recipe variant (``ablate``), means over the split seeds run: mean leave-family-out AUROC and flagged
    share, the GAN-face and early-diffusion folds, and the left-out FPR of the sources that fail."""
    path = work / "ablations.json"
    if not path.exists():
        return []
    res = json.loads(path.read_text())
    lines = ["", "## Ablations (all data; one change at a time; means over the split seeds listed)", "",
             "| variant | seeds | mean AUROC | GAN faces | early diffusion | mean flagged | " + " | ".join(HARD_SOURCES) + " |",
             "|---" * (6 + len(HARD_SOURCES)) + "|"]  # fmt: skip
    for name in ABLATIONS:
        runs = {k.rsplit(" ", 1)[1]: v for k, v in res.items() if k.startswith(f"{name} | seed ")}
        if not runs:
            continue

        def mean(f, runs=runs):
            return float(np.mean([f(r) for r in runs.values()]))

        cells = [f"{mean(lambda r, s=src: r['loso'][s]['fpr']):.3f}" for src in HARD_SOURCES]
        lines.append(f"| {name} | {','.join(runs)} | {mean(lambda r: np.mean([v['auroc'] for v in r['lofo'].values()])):.3f} | "
                     f"{mean(lambda r: r['lofo']['gan-faces']['auroc']):.3f} | {mean(lambda r: r['lofo']['early-diffusion']['auroc']):.3f} | "
                     f"{mean(lambda r: np.mean([v['flagged'] for v in r['lofo'].values()])):.2f} | " + " | ".join(cells) + " |")  # fmt: skip
    return lines


def before_section(work: Path) -> list[str]:
    """The shipped detectors as they were before the new data, on aigi-human and aigi-modern (``before``)."""
    found = sorted(work.glob("before-*.json"))
    if not found:
        return []
    runs = {f.stem.removeprefix("before-"): json.loads(f.read_text()) for f in found}
    groups = sorted(
        {g for r in runs.values() for g in r["groups"]},
        key=lambda g: (runs[next(iter(runs))]["groups"].get(g, {}).get("label", "z"), g),
    )
    lines = ["", "## Shipped detectors before the new data, on aigi-human and aigi-modern (never seen by them)", "",
             "Share of each group flagged at the detector's own threshold (`before`): a real group's false-positive",
             "rate, a generator's share caught.", "",
             "| group | " + " | ".join(f"{k} (thr {v['threshold']:.3f})" for k, v in runs.items()) + " |",
             "|---" * (len(runs) + 1) + "|"]  # fmt: skip
    for g in groups:
        label = next(r["groups"][g]["label"] for r in runs.values() if g in r["groups"])
        n = next(r["groups"][g]["n"] for r in runs.values() if g in r["groups"])
        cells = [f"{r['groups'][g]['flagged']:.3f}" if g in r["groups"] else "–" for r in runs.values()]
        lines.append(f"| {label} {g} ({n}) | " + " | ".join(cells) + " |")
    return lines


def write_markdown(res, pool):
    """benchmarks/results/source-holdout.{md,json}: means over the seeds present."""
    from aigi.data.splits import FAMILIES

    out = ROOT / "benchmarks" / "results"
    (out / "source-holdout.json").write_text(json.dumps(res, indent=1))
    fams = list(FAMILIES)
    sources = sorted(set(pool.gen[(pool.y == 0) & (pool.parent < 0)].tolist()))
    lines = ["# Never seen in training: generator families and real sources", "",
             "From `benchmarks/source_holdout.py` (the feature cache of `configs/univfd.yaml`'s pool: aigi-dev, aigi-wild,",
             "aigi-modern, aigi-human and 400 renders, at most 150 images per generator, real source and render kind;",
             "the plain view and one augmented view per image). Every fold trains as `aigi train` does: a seeded",
             "validation split, the head on the rest, Platt scaling and the per-source threshold rule (no validation",
             "real source over 4 %) on the validation split. Values are means over the split seeds listed.", "",
             "## Leave-family-out: AUROC (share of the family's fakes flagged at the rule's threshold)", "",
             "| recipe | seeds | " + " | ".join(fams) + " | mean AUROC | mean flagged |",
             "|---" * (len(fams) + 4) + "|"]  # fmt: skip
    summary = {}
    for name in RECIPES:
        runs = [v for k, v in res.items() if k.startswith(f"{name} | lofo |")]
        if not runs:
            continue
        seeds = [k.rsplit(" ", 1)[1] for k in res if k.startswith(f"{name} | lofo |")]
        a = {f: np.mean([r[f]["auroc"] for r in runs if f in r]) for f in fams if any(f in r for r in runs)}
        t = {f: np.mean([r[f]["flagged"] for r in runs if f in r]) for f in a}
        summary[name] = {"auroc": a, "flagged": t, "mean_auroc": float(np.mean(list(a.values()))),
                         "mean_flagged": float(np.mean(list(t.values())))}  # fmt: skip
        cells = [f"{a[f]:.3f} ({t[f]:.2f})" if f in a else "–" for f in fams]
        lines.append(f"| {name} | {','.join(seeds)} | " + " | ".join(cells)
                     + f" | **{summary[name]['mean_auroc']:.3f}** | {summary[name]['mean_flagged']:.2f} |")  # fmt: skip
    lines += ["", "## Leave-source-out: false-positive rate of a real source left out of training whole", "",
              "At the threshold the rule sets on the rest. Faces and art are rows of their own.", "",
              "| real source (images) | " + " | ".join(n for n in RECIPES if any(k.startswith(f"{n} | loso") for k in res)) + " |",
              "|---" * (1 + sum(any(k.startswith(f"{n} | loso") for k in res) for n in RECIPES)) + "|"]  # fmt: skip
    faces_art = ["unsplash-face", "face-photo", "human-painting", "human-drawing"]
    order = faces_art + [s for s in sources if s not in faces_art]
    for src in order:
        cells = []
        for name in RECIPES:
            runs = [v for k, v in res.items() if k.startswith(f"{name} | loso |")]
            if runs:
                vals = [r[src]["fpr"] for r in runs if src in r]
                cells.append(f"{np.mean(vals):.3f}" if vals else "–")
                summary.setdefault(name, {}).setdefault("loso_fpr", {})[src] = float(np.mean(vals)) if vals else None
        n = int(((pool.gen == src) & pool.ok & (pool.parent < 0)).sum())
        lines.append(f"| {src} ({n}) | " + " | ".join(cells) + " |")
    lines += ablation_section(Path(pool.cfg_work))
    lines += before_section(Path(pool.cfg_work))
    (out / "source-holdout.md").write_text("\n".join(lines) + "\n")
    (out / "source-holdout-summary.json").write_text(json.dumps(summary, indent=1))
    log(f"wrote {out / 'source-holdout.md'}")


if __name__ == "__main__":
    main()
