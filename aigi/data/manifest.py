"""A manifest is a list of labelled images: ``path, label, generator`` (+ ``split``, ``caption``).

``load_data`` accepts what users have and returns a :class:`Manifest`:
- a manifest CSV (paths relative to the CSV's folder, or absolute);
- a ``real/`` + ``fake/`` folder (sub-folders of ``fake/`` name the generator, sub-folders
  of ``real/`` the real source);
- the CNNDetection / UnivFD layout: ``<category>/0_real`` and ``<category>/1_fake`` at any depth;
- the GenImage layout: ``<generator>/{train,val}/{nature,ai}``.
For real images, ``generator`` names the real source (e.g. ``imagenet-photo``): per-generator
reports then give specificity per real source.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jfif"}


def find_images(folder: str | Path) -> tuple[list[str], dict[str, int]]:
    """Every image file under ``folder`` (recursively; an image suffix or none), sorted, and what was
    skipped, counted by reason: hidden files and folders, files that are not images, broken or looping
    links, links to folders (never followed, so a link cannot loop a walk or leave the folder)."""
    import os
    from collections import Counter

    found: list[str] = []
    skipped: Counter = Counter()
    for root, dirs, files in os.walk(folder, followlinks=False):
        for d in list(dirs):
            full = os.path.join(root, d)
            if d.startswith("."):
                skipped["hidden"] += 1
                dirs.remove(d)
            elif os.path.islink(full):
                skipped["link to a folder (not followed)" if os.path.isdir(full) else "broken or looping link"] += 1
                dirs.remove(d)
        for f in files:
            full = os.path.join(root, f)
            suffix = os.path.splitext(f)[1].lower()
            if f.startswith("."):
                skipped["hidden"] += 1
            elif not os.path.exists(full):  # a dangling link, or one that loops
                skipped["broken or looping link"] += 1
            elif not os.path.isfile(full):
                skipped["not a regular file"] += 1
            elif suffix in IMAGE_SUFFIXES or suffix == "":
                found.append(full)
            else:
                skipped["not an image file"] += 1
    return sorted(found), dict(skipped)


LABELS = {"real": 0, "fake": 1, "0": 0, "1": 1, "authentic": 0, "nature": 0, "ai": 1, "generated": 1, "synthetic": 1}


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Sample:
    path: str  # absolute
    label: int  # 0 real, 1 fake
    generator: str  # fake generator, or the real source
    split: str = ""
    caption: str = ""
    sha256: str = ""  # from the manifest when given; computed on demand otherwise


@dataclass
class Manifest:
    samples: list[Sample]
    source: str = ""
    layout: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def generators(self, label: int | None = None) -> list[str]:
        """Sorted distinct generators (fake, real or both)."""
        return sorted({s.generator for s in self.samples if label is None or s.label == label})

    def subset(self, keep) -> Manifest:
        """A manifest of the samples for which ``keep(sample)`` is true (or the given indices)."""
        if callable(keep):
            chosen = [s for s in self.samples if keep(s)]
        else:
            chosen = [self.samples[i] for i in keep]
        return Manifest(chosen, self.source, self.layout)

    def summary(self) -> str:
        c = Counter((("fake" if s.label else "real"), s.generator) for s in self.samples)
        parts = [f"{lab}/{gen}: {n}" for (lab, gen), n in sorted(c.items())]
        return f"{len(self)} images ({', '.join(parts)})"

    def write_csv(self, path: str | os.PathLike) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "generator", "split", "caption", "sha256"])
            for s in self.samples:
                w.writerow([s.path, "fake" if s.label else "real", s.generator, s.split, s.caption, s.sha256])


def parse_label(value: str, where: str) -> int:
    key = str(value).strip().lower()
    if key not in LABELS:
        raise ManifestError(f"{where}: label {value!r} is neither real nor fake (accepted: real/fake, 0/1)")
    return LABELS[key]


def read_manifest_csv(path: str | os.PathLike) -> Manifest:
    """Read a manifest CSV. Required columns: path, label; optional: generator, split, caption, sha256."""
    path = Path(path)
    base = path.resolve().parent  # sample paths are absolute, whatever the working directory
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = set(reader.fieldnames or [])
            if not {"path", "label"} <= cols:
                raise ManifestError(f"{path}: a manifest needs the columns 'path' and 'label'; found {sorted(cols)}")
            samples = []
            for i, row in enumerate(reader, start=2):
                where = f"{path}:{i}"
                if not row.get("path"):
                    raise ManifestError(f"{where}: empty path")
                p = Path(row["path"])
                label = parse_label(row["label"], where)
                samples.append(
                    Sample(
                        path=str(p if p.is_absolute() else base / p),
                        label=label,
                        generator=(row.get("generator") or ("fake" if label else "real")).strip(),
                        split=(row.get("split") or "").strip(),
                        caption=(row.get("caption") or "").strip(),
                        sha256=(row.get("sha256") or "").strip().lower(),
                    )
                )
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not a UTF-8 CSV file ({e})") from None
    if not samples:
        raise ManifestError(f"{path}: the manifest lists no images")
    return Manifest(samples, str(path), "csv")


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _first_part(path: Path, root: Path, default: str) -> str:
    rel = path.relative_to(root).parts
    return rel[0] if len(rel) > 1 else default


def read_folder(root: str | os.PathLike) -> Manifest:
    """Recognise a folder layout (see module docstring) and list its images."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: not a folder")
    root = root.resolve()
    samples: list[Sample] = []
    real, fake = root / "real", root / "fake"
    if real.is_dir() or fake.is_dir():
        for label, folder in ((0, real), (1, fake)):
            if folder.is_dir():
                for p in _images_under(folder):
                    samples.append(Sample(str(p), label, _first_part(p, folder, folder.name)))
        return _nonempty(Manifest(samples, str(root), "real-fake"))
    univfd = sorted(d for d in root.rglob("*") if d.is_dir() and d.name in ("0_real", "1_fake"))
    if univfd:
        for d in univfd:
            label = 1 if d.name == "1_fake" else 0
            category = d.parent.relative_to(root).as_posix() if d.parent != root else root.name
            for p in _images_under(d):
                samples.append(Sample(str(p), label, category if label else f"{category}-real"))
        return _nonempty(Manifest(samples, str(root), "univfd"))
    genimage = sorted(
        d for d in root.glob("*/*/*") if d.is_dir() and d.name in ("nature", "ai") and d.parent.name in ("train", "val")
    )
    if genimage:
        for d in genimage:
            generator, split = d.parent.parent.name, d.parent.name
            label = 1 if d.name == "ai" else 0
            for p in _images_under(d):
                samples.append(Sample(str(p), label, generator if label else f"{generator}-nature", split))
        return _nonempty(Manifest(samples, str(root), "genimage"))
    raise ManifestError(
        f"{root}: unknown layout. Expected real/ + fake/, <category>/0_real + 1_fake (UnivFD), "
        "<generator>/{train,val}/{nature,ai} (GenImage), or pass a manifest CSV"
    )


def _nonempty(m: Manifest) -> Manifest:
    if not m.samples:
        raise ManifestError(f"{m.source}: the {m.layout} layout was recognised but holds no images")
    return m


def load_data(source: str | os.PathLike) -> Manifest:
    """A manifest CSV or a folder in a known layout -> :class:`Manifest`; several, joined by commas
    (``dev/manifest.csv,wild/manifest.csv``), are read in turn and joined into one."""
    p = Path(source)
    if not p.exists() and "," in str(source):
        parts = [load_data(part) for part in str(source).split(",") if part]
        return Manifest([s for m in parts for s in m], str(source), "+".join(m.layout for m in parts))
    if p.is_dir():
        return read_folder(p)
    if p.is_file():
        return read_manifest_csv(p)
    raise ManifestError(f"{source}: no such file or folder")
