"""One self-contained HTML report (plots embedded as PNG) plus the JSON it was made from."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figure(w=6.0, h=4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def plot_roc_pr(scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[str, str]:
    """ROC and precision-recall curves, one line per detector; ``scores[name] = (labels, p)``."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    from aigi.evaluation.metrics import auroc, average_precision

    fig, ax = _figure()
    for (name, (y, p)), c in zip(scores.items(), COLOURS):
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, color=c, label=f"{name} (AUROC {auroc(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false-positive rate (reals flagged)", ylabel="true-positive rate (fakes caught)", title="ROC")
    ax.legend(fontsize=8)
    roc = _png(fig)
    fig, ax = _figure()
    for (name, (y, p)), c in zip(scores.items(), COLOURS):
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, color=c, label=f"{name} (AP {average_precision(y, p):.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax.legend(fontsize=8)
    return roc, _png(fig)


def plot_reliability(curves: dict[str, dict]) -> str:
    fig, ax = _figure(5, 5)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    for (name, c), col in zip(curves.items(), COLOURS):
        ax.plot(c["mean_predicted"], c["fraction_fake"], "o-", color=col, label=name)
    ax.set(
        xlabel="mean calibrated p_fake in bin",
        ylabel="fraction fake in bin",
        title="Reliability (validation split)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(fontsize=8)
    return _png(fig)


def plot_per_generator(auroc_by_det: dict[str, dict[str, float]], title: str) -> str:
    gens = sorted({g for d in auroc_by_det.values() for g in d})
    fig, ax = _figure(7, 4)
    width = 0.8 / max(1, len(auroc_by_det))
    x = np.arange(len(gens))
    for k, ((name, d), col) in enumerate(zip(auroc_by_det.items(), COLOURS)):
        ax.bar(x + k * width, [d.get(g, np.nan) for g in gens], width, color=col, label=name)
    ax.axhline(0.5, ls=":", color="grey")
    ax.set_xticks(x + width * (len(auroc_by_det) - 1) / 2, gens, rotation=20)
    ax.set(ylabel="AUROC", ylim=(0.4, 1.0), title=title)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_robustness(sweeps: dict[str, list[dict]]) -> str:
    """AUROC against severity, one panel per perturbation, one line per detector."""
    names = [n for n in dict.fromkeys(r["perturbation"] for rows in sweeps.values() for r in rows) if n != "none"]
    cols = 4
    rows_n = math.ceil(len(names) / cols)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.8 * rows_n), squeeze=False)
    for ax, pert in zip(axes.flat, names):
        for (det, rows), col in zip(sweeps.items(), COLOURS):
            clean = next(r for r in rows if r["perturbation"] == "none")
            pts = [r for r in rows if r["perturbation"] == pert]
            labels = ["clean"] + [str(r["severity"]) for r in pts]
            ax.plot(range(len(labels)), [clean["auroc"]] + [r["auroc"] for r in pts], "o-", color=col, label=det)
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_title(pert, fontsize=9)
        ax.set_ylim(0.4, 1.0)
        ax.axhline(0.5, ls=":", color="grey")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("AUROC under perturbation (severity: mild → strong)")
    fig.tight_layout()
    return _png(fig)


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}"
    return html.escape(str(v))


def table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]], data: dict) -> Path:
    """Write ``path`` (.html, self-contained) and the same stem .json."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"<section><h2>{html.escape(h)}</h2>{content}</section>" for h, content in sections)
    path.write_text(f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: .6em 0 1.2em; }}
th, td {{ border: 1px solid #ccc; padding: .25em .6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
thead {{ background: #f3f3f3; }}
img {{ max-width: 100%; margin: .3em 0; }}
.note {{ background: #fff8e1; border-left: 4px solid #f0b400; padding: .5em 1em; }}
.flag {{ color: #b00020; font-weight: 600; }}
</style></head><body><h1>{html.escape(title)}</h1>
{body}
</body></html>
""")
    path.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
    return path
