"""How well a detector's attribution head names the families of the fakes it flags (``aigi eval``)."""

from __future__ import annotations

import numpy as np


def family_answers(det, out, ok: np.ndarray) -> list[dict | None]:
    """Each sample's attribution answer ({"family", "p", "top3"}; None where the file failed), whatever its
    verdict, from a forward output over the readable samples (``scoring.forward_manifest``); [] when the
    detector has no attribution head."""
    if out is None or "family_logits" not in out:
        return []
    answers: list[dict | None] = [None] * len(ok)
    for row, i in enumerate(np.flatnonzero(ok)):
        answers[i] = det.extra_fields(out, row)["attribution"]
    return answers


def attribution_metrics(generators, labels, flagged, answers, known: list[str]) -> dict:
    """Over the fakes that are flagged (``fake`` or ``unsure``) and have an answer: per true family (from
    ``attribution.family_of``), how many, the share named right, and the share answered ``unknown``. A family
    the head knows (``known``) should be named; one it does not should come out ``unknown``. Totals:
    ``known_named_right``, ``new_answered_unknown``, and ``p_ece``: the expected calibration error of ``p`` (the
    top family's probability) as the chance that the top family is the true one, over known-family fakes."""
    from aigi.attribution import family_of
    from aigi.evaluation.metrics import expected_calibration_error

    per: dict[str, dict] = {}
    top_right, top_p = [], []
    for g, y, f, a in zip(generators, labels, flagged, answers):
        if y != 1 or not f or a is None:
            continue
        fam = family_of(g)
        if fam in known:
            top_right.append(a["top3"][0][0] == fam)
            top_p.append(a["p"])
        d = per.setdefault(fam, {"known": fam in known, "n": 0, "named_right": 0, "unknown": 0})
        d["n"] += 1
        d["named_right"] += a["family"] == fam
        d["unknown"] += a["family"] == "unknown"
    for d in per.values():
        d["named_right"], d["unknown"] = d["named_right"] / d["n"], d["unknown"] / d["n"]

    def share(key, want):
        rows = [d for d in per.values() if d["known"] == want]
        n = sum(d["n"] for d in rows)
        return None if n == 0 else sum(d[key] * d["n"] for d in rows) / n

    return {
        "per_family": per,
        "known_named_right": share("named_right", True),
        "new_answered_unknown": share("unknown", False),
        "p_ece": expected_calibration_error(top_right, top_p) if top_p else None,
    }
