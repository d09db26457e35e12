"""Concept vocabularies for the retrieval captioner and the object parser.

- ``imagenet``: the 1,000 ImageNet-1k class names. They are read (``ast``, never imported) from the
  zero-shot metadata file inside the ``open_clip_torch`` wheel when it is installed (``--no-deps``);
  otherwise the names found in the data's ImageNet file names are used.
- ``coco``: the 80 COCO object categories.
- ``aligned``: the concepts the offline vision-language space was aligned on (ITEM stores them).
- a path to a text file: one concept per line.
Specs combine with ``+`` (``imagenet+coco``); duplicates are dropped, order kept.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

COCO_OBJECTS = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)

_SYNSET_NAME = re.compile(r"^n\d{8}_(.+)$")


def class_name_from_path(path: str | Path) -> str | None:
    """The class name an ImageNet-style file name carries (``n01440764_tench.JPEG`` -> ``tench``), or None."""
    m = _SYNSET_NAME.match(Path(path).stem)
    return m.group(1).replace("_", " ").strip().lower() if m else None


def imagenet_classnames() -> list[str] | None:
    """The 1,000 ImageNet-1k names from the open_clip wheel's metadata file (read, not imported), or None."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    f = Path(next(iter(spec.submodule_search_locations))) / "zero_shot_metadata.py"
    if not f.is_file():
        return None
    for node in ast.parse(f.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "IMAGENET_CLASSNAMES" for t in node.targets):
            return [str(x) for x in ast.literal_eval(node.value)]
    return None


def load_vocabulary(
    spec: str, aligned: list[str] | tuple[str, ...] = (), fallback_imagenet: list[str] = ()
) -> list[str]:
    """Concepts for a spec such as ``aligned``, ``imagenet+coco`` or ``path/to/terms.txt``."""
    terms: list[str] = []
    for part in spec.split("+"):
        part = part.strip()
        if part == "aligned":
            if not aligned:
                raise ValueError("vocabulary 'aligned' needs an aligned vision-language space (space: lit, trained)")
            terms += list(aligned)
        elif part == "coco":
            terms += list(COCO_OBJECTS)
        elif part == "imagenet":
            names = imagenet_classnames() or list(fallback_imagenet)
            if not names:
                raise ValueError(
                    "no ImageNet class names: install open_clip_torch with --no-deps, or use another vocabulary"
                )
            terms += names
        elif Path(part).is_file():
            terms += [t.strip() for t in Path(part).read_text(encoding="utf-8").splitlines() if t.strip()]
        else:
            raise ValueError(f"unknown vocabulary {part!r}: use aligned, imagenet, coco, or a text file of terms")
    return list(dict.fromkeys(t.lower() for t in terms))


__all__ = ["COCO_OBJECTS", "class_name_from_path", "imagenet_classnames", "load_vocabulary"]
