"""Open-set attribution of the default (``configs/univfd.yaml``): which family made a fake, or ``unknown``.

    python benchmarks/attribution.py [--seeds 0 1 2] [--lofo-seeds 0]   # after source_holdout.py extract

Reads the feature cache ``source_holdout.py`` fills (CLIP ViT-B/16, every block's tokens of the plain and one
augmented view), takes the shipped head's columns (mean patch tokens of blocks 0-7) and, per split seed, the
recipe's validation split (35 %, stratified by generator and source):

- closed set: ``aigi.attribution.fit_attribution`` on the fit split's fakes (both views), then each
  validation fake's answer: the share named right per family (argmax; and with the ``unknown`` rule);
- leave-family-out (open set): each attribution family in turn out of the head's training (the unknown rule
  refitted without it too); the share of its validation fakes answered ``unknown``, and the share of the other
  families' validation fakes named right;
- cost: time per image of the attribution head and of the evidence map (`cost`, on the shipped detector), and
  its evidence maps on a few images of the bundled demo sample (never trained on; licences in its SOURCES.csv);
- social: the shipped detector's attribution on its own validation fakes, as stored and re-encoded by the
  social-media pipeline (`social`).

Writes ``benchmarks/results/attribution.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def shipped_recipe():
    from source_holdout import RECIPES

    return next(r for n, r in RECIPES.items() if n.startswith("shipped"))


def split(pool, seed):
    from aigi.data.splits import stratified_split

    idx = np.flatnonzero(pool.ok & (pool.parent < 0))
    strata = [f"{pool.y[i]}/{pool.gen[i]}" for i in idx]
    rest, val = stratified_split(strata, pool.cfg.val_fraction, seed)
    return idx[rest], idx[val]


def standardised(pool, r, fit_idx, idx, views):
    X = pool.x(r.backbones, fit_idx, pool.cfg.train_views(), r.blocks, r.tokens)
    mu, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1
    return (pool.x(r.backbones, idx, views, r.blocks, r.tokens) - mu) / sd


def fit_on(pool, r, fit_idx, seed, drop_family=None):
    from aigi.attribution import family_of, fit_attribution

    fakes = fit_idx[pool.y[fit_idx] == 1]
    if drop_family:
        fakes = fakes[[family_of(g) != drop_family for g in pool.gen[fakes]]]
    views = pool.cfg.train_views()
    X = standardised(pool, r, fit_idx, fakes, views)
    gens = np.tile(pool.gen[fakes], len(views))
    groups = np.tile(np.arange(len(fakes)), len(views))
    return fit_attribution(X, gens, groups, seed=seed)


def answers(pool, r, fit_idx, head, idx):
    from aigi.attribution import answer

    probs = head.probabilities(standardised(pool, r, fit_idx, idx, [0]))
    return [answer(p, head.families, head.unknown_below) for p in probs]


def p_calibration(pool, r, fit_idx, head, idx) -> dict:
    """Is ``p`` (the top family's probability) the chance the top family is right? Over the validation fakes
    ``idx`` of the families the head names: expected calibration error and the reliability curve, with the
    fitted temperature and without it (``T = 1``)."""
    from scipy.special import softmax

    from aigi.attribution import family_of
    from aigi.evaluation.metrics import expected_calibration_error, reliability_curve

    idx = idx[[family_of(g) in head.families for g in pool.gen[idx]]]
    z = standardised(pool, r, fit_idx, idx, [0]) @ head.weight.T + head.bias
    right = z.argmax(1) == np.array([head.families.index(family_of(g)) for g in pool.gen[idx]])
    p, raw = softmax(z / head.temperature, axis=1).max(1), softmax(z, axis=1).max(1)
    return {"temperature": head.temperature, "n": len(idx), "accuracy": float(right.mean()),
            "mean_p": float(p.mean()), "ece": expected_calibration_error(right, p),
            "ece_without_temperature": expected_calibration_error(right, raw),
            "reliability": reliability_curve(right, p)}  # fmt: skip


def run(args):
    from source_holdout import Pool

    from aigi.attribution import family_of

    args.recon = False
    pool = Pool(args)
    r = shipped_recipe()
    path = args.work / "attribution.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    for seed in args.seeds:
        key = f"closed | seed {seed}"
        fit_idx, val_idx = split(pool, seed)
        if key not in res:
            head = fit_on(pool, r, fit_idx, seed)
            vf = val_idx[pool.y[val_idx] == 1]
            ans = answers(pool, r, fit_idx, head, vf)
            per = {}
            for g, a in zip(pool.gen[vf], ans):
                fam = family_of(g)
                d = per.setdefault(fam, {"n": 0, "argmax_right": 0, "named_right": 0, "unknown": 0})
                d["n"] += 1
                d["argmax_right"] += a["top3"][0][0] == fam
                d["named_right"] += a["family"] == fam
                d["unknown"] += a["family"] == "unknown"
            for d in per.values():
                for k in ("argmax_right", "named_right", "unknown"):
                    d[k] /= d["n"]
            res[key] = {"families": head.families, "unknown_below": head.unknown_below, "report": head.report,
                        "per_family": per, "p": p_calibration(pool, r, fit_idx, head, vf)}  # fmt: skip
            log(f"{key}: " + ", ".join(f"{f} {d['argmax_right']:.2f}" for f, d in sorted(per.items())))
            path.write_text(json.dumps(res, indent=1))
        if seed not in args.lofo_seeds:
            continue
        for fam in res[key]["families"]:
            lk = f"lofo {fam} | seed {seed}"
            if lk in res:
                continue
            head = fit_on(pool, r, fit_idx, seed, drop_family=fam)
            vf = val_idx[pool.y[val_idx] == 1]
            ans = answers(pool, r, fit_idx, head, vf)
            held = np.array([family_of(g) == fam for g in pool.gen[vf]])
            known_right = np.mean([a["family"] == family_of(g) for a, g, h in zip(ans, pool.gen[vf], held) if not h])
            res[lk] = {"held_out_unknown": float(np.mean([a["family"] == "unknown" for a, h in zip(ans, held) if h])),
                       "held_out_n": int(held.sum()), "known_named_right": float(known_right),
                       "unknown_below": head.unknown_below}  # fmt: skip
            log(f"{lk}: held out unknown {res[lk]['held_out_unknown']:.2f}, known named right {known_right:.2f}")
            path.write_text(json.dumps(res, indent=1))
    write_markdown(res)


def cost(args):
    """Seconds per image of the attribution head (on cached descriptors) and of the evidence map (a backbone
    pass with the blocks' token sequences), beside the detector's whole per-image time."""
    import torch
    from PIL import Image

    from aigi import load_detector
    from aigi.samples import build_demo

    det = load_detector()
    demo, _ = build_demo(args.work / "demo")
    imgs = [Image.open(s.path).convert("RGB") for s in list(demo)[:8]]
    det.predict(imgs[:1])  # build the backbone
    t = time.perf_counter()
    det.predict(imgs)
    per_image = (time.perf_counter() - t) / len(imgs)
    feats = torch.randn(1000, det.descriptor_dim)
    t = time.perf_counter()
    with torch.no_grad():
        out = det({"features": feats})
        for i in range(len(feats)):
            det.extra_fields(out, i)
    attr = (time.perf_counter() - t) / len(feats)
    det.families, saved = [], det.families
    t = time.perf_counter()
    with torch.no_grad():
        det({"features": feats})
    head_only = (time.perf_counter() - t) / len(feats)
    det.families = saved
    t = time.perf_counter()
    for img in imgs:
        det.evidence(img)
    ev = (time.perf_counter() - t) / len(imgs)
    out = {"detect_s_per_image": per_image, "attribution_s_per_image": attr - head_only,
           "evidence_map_s_per_image": ev, "maps": evidence_maps(args, det)}  # fmt: skip
    log(json.dumps(out))
    (args.work / "attribution-cost.json").write_text(json.dumps(out, indent=1))
    write_markdown(json.loads((args.work / "attribution.json").read_text()), args.work)


def social(args):
    """The shipped detector on the fakes of its own validation split (the recipe's pool, split seed 0: never
    trained on), as stored and after the social-media pipeline (resize to 1080 px, JPEG q80): per family, the
    share of its fakes whose top family is right and the share named right (with the unknown rule), each over
    all of the family's fakes and whatever the verdict."""
    from source_holdout import pool

    from aigi import load_detector
    from aigi.attribution import NOT_A_GENERATOR, family_of
    from aigi.data.splits import validation_split
    from aigi.evaluation.attribution import family_answers
    from aigi.scoring import forward_manifest
    from aigi.transforms import perturbation

    det = load_detector()
    full, cfg = pool(args, twins=True)
    val = full.subset(validation_split(full, cfg.val_fraction, cfg.seed)[1])
    fakes = val.subset(lambda x: x.label == 1 and x.generator not in NOT_A_GENERATOR)
    res = {"detector": det.version, "n": len(fakes)}
    for cond, perturb in (("stored", None), ("social", perturbation("social", 1))):
        out, read, _ = forward_manifest(det, fakes, perturb)
        per: dict[str, dict] = {}
        for x, a in zip(fakes, family_answers(det, out, read)):
            if a is None:
                continue
            fam = family_of(x.generator)
            d = per.setdefault(fam, {"n": 0, "top_right": 0, "named_right": 0, "unknown": 0})
            d["n"] += 1
            d["top_right"] += a["top3"][0][0] == fam
            d["named_right"] += a["family"] == fam
            d["unknown"] += a["family"] == "unknown"
        res[cond] = {
            f: {**d, **{k: d[k] / d["n"] for k in ("top_right", "named_right", "unknown")}} for f, d in per.items()
        }
        log(f"{cond}: " + ", ".join(f"{f} {d['top_right']:.2f}" for f, d in sorted(res[cond].items())))
    (args.work / "attribution-social.json").write_text(json.dumps(res, indent=1))
    write_markdown(json.loads((args.work / "attribution.json").read_text()), args.work)


MAP_PICKS = ("astronaut", "grace_hopper", "camera-photo", "gpt-4o", "midjourney-v7", "nano-banana-pro")


def evidence_maps(args, det) -> list[dict]:
    """The shipped detector's evidence map on one image of each of :data:`MAP_PICKS` from the bundled demo sample
    (never trained on; permissive licences, listed in ``aigi/demo/SOURCES.csv``), written small into
    ``benchmarks/results/evidence-maps``."""
    from aigi.explain import evidence_overlay
    from aigi.samples import build_demo
    from aigi.scoring import load_prepared

    demo, _ = build_demo(args.work / "demo")
    out_dir = ROOT / "benchmarks" / "results" / "evidence-maps"
    out_dir.mkdir(parents=True, exist_ok=True)
    maps = []
    for pick in MAP_PICKS:
        s = next(x for x in demo if pick in Path(x.path).name)
        img = load_prepared(det, s.path)
        ev = det.evidence(img)
        p = float(det.calibration.apply_logit(np.array([ev["logit"]]))[0])
        over = evidence_overlay(img, ev, det.preprocessing)
        over.thumbnail((256, 300))
        name = f"{'real' if s.label == 0 else 'fake'}-{pick}.jpg"
        over.save(out_dir / name, quality=85)
        maps.append({"file": f"evidence-maps/{name}", "group": pick, "label": "fake" if s.label else "real",
                     "source": Path(s.path).name, "p_fake": p, "logit": ev["logit"], "global": ev["global"]})  # fmt: skip
    return maps


def published(work: Path, out: Path, name: str) -> dict | None:
    """A part's result from the work folder, copied into the results folder; None when that part has not run."""
    f = work / name
    if not f.exists():
        return None
    data = json.loads(f.read_text())
    (out / name).write_text(json.dumps(data, indent=1))
    return data


def write_markdown(res, work: Path | None = None):
    out = ROOT / "benchmarks" / "results"
    work = work or ROOT / "runs" / "sh"
    (out / "attribution.json").write_text(json.dumps(res, indent=1))
    closed = {k: v for k, v in res.items() if k.startswith("closed")}
    seeds = [k.rsplit(" ", 1)[1] for k in closed]
    fams = sorted({f for v in closed.values() for f in v["per_family"]})
    lines = ["# Attribution: which family made a fake, or `unknown`", "",
             "From `benchmarks/attribution.py`: the shipped recipe's descriptor (CLIP ViT-B/16, mean patch tokens of",
             "blocks 0-7), its 35 % validation split per split seed; the head trained on the other 65 %'s fakes.",
             f"Means over split seeds {', '.join(seeds)}.", "",
             "## Closed set, on validation fakes", "",
             "| family | images (per seed) | top family right | named right (with the unknown rule) | answered unknown |",
             "|---|---|---|---|---|"]  # fmt: skip
    for f in fams:
        rows = [v["per_family"][f] for v in closed.values() if f in v["per_family"]]
        known = all(f in v["families"] for v in closed.values())
        name = f if known else f"{f} (too few images to be named: should be `unknown`)"
        lines.append(f"| {name} | {np.mean([r['n'] for r in rows]):.0f} | {np.mean([r['argmax_right'] for r in rows]):.2f} | "
                     f"{np.mean([r['named_right'] for r in rows]):.2f} | {np.mean([r['unknown'] for r in rows]):.2f} |")  # fmt: skip
    cal = [v["p"] for v in closed.values() if "p" in v]
    if cal:
        lines += ["", "## Is `p` a probability? (closed set, validation fakes of the families it names)", "",
                  "`p` is the top family's probability after one temperature fitted on out-of-fold training logits",
                  "(`aigi.attribution.fit_temperature`); ECE over 15 equal bins of `p`, against whether the top family",
                  "is the true one.", "",
                  "| split seed | images | temperature | top family right | mean `p` | ECE | ECE at T = 1 |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for sd, c in zip(seeds, cal):
            lines.append(f"| {sd} | {c['n']} | {c['temperature']:.3f} | {c['accuracy']:.3f} | {c['mean_p']:.3f} | "
                         f"{c['ece']:.3f} | {c['ece_without_temperature']:.3f} |")  # fmt: skip
    lofo = {k: v for k, v in res.items() if k.startswith("lofo")}
    if lofo:
        lseeds = sorted({k.rsplit(" ", 1)[1] for k in lofo})
        lines += ["", f"## Leave-family-out (open set), split seeds {', '.join(lseeds)}", "",
                  "Each family out of the head's training (and of its unknown rule's fit).", "",
                  "| held-out family | its validation fakes | answered `unknown` | other families named right |",
                  "|---|---|---|---|"]  # fmt: skip
        for f in sorted({k.split(" ")[1] for k in lofo}):
            rows = [v for k, v in lofo.items() if k.split(" ")[1] == f]
            lines.append(f"| {f} | {np.mean([r['held_out_n'] for r in rows]):.0f} | "
                         f"{np.mean([r['held_out_unknown'] for r in rows]):.2f} | {np.mean([r['known_named_right'] for r in rows]):.2f} |")  # fmt: skip
        lines.append(f"| **mean** | | **{np.mean([v['held_out_unknown'] for v in lofo.values()]):.2f}** | "
                     f"**{np.mean([v['known_named_right'] for v in lofo.values()]):.2f}** |")  # fmt: skip
    sc = published(work, out, "attribution-social.json")
    if sc:
        lines += ["", "## Re-encoded as a social platform would (shipped detector, its own validation fakes)", "",
                  "The shipped detector on the fakes of the validation split its training run held out (split seed 0),",
                  "as stored and through the social-media pipeline (longer side 1080 px, JPEG q80), whatever the",
                  "verdict: the share whose top family is right, and named right with the `unknown` rule.", "",
                  "| family | fakes | top right, stored | top right, social | named right, stored | named right, social |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        known = set(next(v for k, v in res.items() if k.startswith("closed"))["families"])
        for f in sorted(sc["stored"]):
            a, b = sc["stored"][f], sc["social"].get(f, {})
            if f not in known:  # a family the head does not name: the right answer is unknown
                lines.append(f"| {f} (not named: should be `unknown`) | {a['n']} | | | unknown {a['unknown']:.2f} | "
                             f"unknown {b.get('unknown', float('nan')):.2f} |")  # fmt: skip
                continue
            lines.append(f"| {f} | {a['n']} | {a['top_right']:.2f} | {b.get('top_right', float('nan')):.2f} | "
                         f"{a['named_right']:.2f} | {b.get('named_right', float('nan')):.2f} |")  # fmt: skip
        tot = {}
        for c in ("stored", "social"):
            rows = [d for f, d in sc[c].items() if f in known]
            n = sum(d["n"] for d in rows)
            tot[c] = (
                sum(d["top_right"] * d["n"] for d in rows) / n,
                sum(d["named_right"] * d["n"] for d in rows) / n,
                n,
            )
        lines.append(f"| **named families** | {tot['stored'][2]} | **{tot['stored'][0]:.2f}** | **{tot['social'][0]:.2f}** | "
                     f"**{tot['stored'][1]:.2f}** | **{tot['social'][1]:.2f}** |")  # fmt: skip
    cc = published(work, out, "attribution-cost.json")
    if cc:
        lines += ["", "## Cost on 2 cores (shipped detector)", "",
                  f"- `detect`, whole, per image: {cc['detect_s_per_image']:.3f} s",
                  f"- attribution head, per image: {1e6 * cc['attribution_s_per_image']:.0f} µs "
                  f"({100 * cc['attribution_s_per_image'] / cc['detect_s_per_image']:.3f} % of it)",
                  f"- evidence map (asked for with `--explain` / `?heatmap=true`), per image: "
                  f"{cc['evidence_map_s_per_image']:.3f} s (one more backbone pass with the blocks' tokens)"]  # fmt: skip
        lines += ["", "## Evidence maps on images it never trained on", "",
                  "From the bundled demo sample (`aigi/demo/`; the sources and licences of its files are in",
                  "`aigi/demo/SOURCES.csv`; astronaut and grace_hopper ship with scikit-image and matplotlib).",
                  "The default's logit split over the 14 x 14 patches of the 224 px view it reads (red: toward",
                  "AI-generated, blue: toward real; colour strength relative to the image's largest patch) plus a",
                  "global term that is not spatial; `tests/test_detectors.py` checks that they add up to the logit.", ""]  # fmt: skip
        for m in cc.get("maps", []):
            lines.append(f"- {m['label']} {m['group']}: p_fake {m['p_fake']:.3f} (logit {m['logit']:+.2f}, of which "
                         f"global {m['global']:+.2f}) ![{m['group']}]({m['file']})")  # fmt: skip
    (out / "attribution.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out / 'attribution.md'}")


def main():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    ap = argparse.ArgumentParser()
    ap.add_argument("part", nargs="?", default="run", choices=["run", "cost", "social"])
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "sh")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "univfd.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--lofo-seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--recon-sources", nargs="+", default=None)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    {"run": run, "cost": cost, "social": social}[args.part](args)


if __name__ == "__main__":
    main()
