"""Objects named in a caption (ITEM's local level).

No parser model exists offline, so the rule is lexical and written down:
1. every vocabulary term found in the caption (whole words, case-insensitive, a trailing ``s``/``es``
   plural allowed), longest terms first, a shorter term inside a longer match not counted again;
2. if none is found, the head word of each noun chunk: the caption is cut at function words
   (articles, prepositions, conjunctions, auxiliaries) and at ``-ing`` words (captions' verbs:
   sitting, holding; so a noun such as "building" is lost here) and the last word of each chunk is kept.
At most ``max_objects``, in order of appearance, without repeats.
"""

from __future__ import annotations

import re

FUNCTION_WORDS = frozenset(
    """
a an the this that these those some any of with without and or but in on at by for from to into onto over under
near next beside behind above below between while is are was were be being been has have had it its their his her
there here very one two three four five several many few photo picture image close up closeup view shot of
""".split()
)


def parse_objects(caption: str, vocabulary: list[str] | tuple[str, ...] = (), max_objects: int = 4) -> list[str]:
    text = caption.lower()
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for term in sorted(set(vocabulary), key=len, reverse=True):
        for m in re.finditer(r"\b" + re.escape(term) + r"(?:e?s)?\b", text):
            if not any(a < m.end() and m.start() < b for a, b in taken):
                taken.append((m.start(), m.end()))
                found.append((m.start(), term))
    if not found:
        words = re.findall(r"[a-z][a-z'-]*", text)
        chunk: list[tuple[int, str]] = []
        pos = 0
        for w in words + [""]:
            if w in FUNCTION_WORDS or w.endswith("ing") or w == "":
                if chunk:
                    found.append(chunk[-1])
                chunk = []
            elif len(w) > 2:
                chunk.append((pos, w))
            pos += 1
    out: list[str] = []
    for _, term in sorted(found):
        if term not in out:
            out.append(term)
    return out[:max_objects]


__all__ = ["parse_objects"]
