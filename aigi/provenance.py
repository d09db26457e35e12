"""Provenance evidence: what a file declares about where it came from, read from its original bytes.

Each finding is a small dict ``{kind, says, generator, detail, verified}``:

- ``kind``: ``c2pa`` (a Content Credentials manifest, read and validated by the official ``c2pa-python``
  bindings, offline), ``xmp`` (IPTC ``DigitalSourceType``, ``xmp:CreatorTool``), ``exif`` (``Software``),
  ``png-text`` (the chunks generation front-ends write, with their structure), ``watermark`` (the DWT-DCT
  watermark of the Stable Diffusion reference scripts), or ``mention``: a generator named inside free text (EXIF
  ``ImageDescription``/``UserComment``/``MakerNote``, XMP description, title or headline, the IPTC caption,
  headline or keywords, PNG ``Description``/``Comment``/``Title``, or a front-end's key without its structure);
- ``says``: ``ai`` (a generator made it), ``edited`` (AI took part), ``camera`` or ``unknown`` (always, for a
  mention);
- ``verified``: the declaration's integrity was checked cryptographically (an intact, signed C2PA
  manifest). No trust list is fetched: a C2PA finding says so in ``detail``.

Only structured declarations decide a verdict (:func:`decisive`): a valid C2PA manifest's actions, an IPTC/XMP
``DigitalSourceType``, a tool field (EXIF ``Software``, XMP ``CreatorTool``, PNG ``Software``) whose whole value
is a generator's name (with at most a version after it), a front-end's chunk with its structure (A1111
``parameters`` with ``Steps:`` and ``Sampler:``, ComfyUI ``prompt``/``workflow`` JSON with nodes, InvokeAI
JSON), and the watermark. A caption such as "Flux capacitor prop at the museum" or "Midjourney CEO speaks at a
conference" is a ``mention``: shown, never deciding.

What this can and cannot prove: a declaration of AI generation is strong evidence when present; its absence,
or a camera EXIF, proves nothing (metadata is stripped by most re-encodes and trivially forged), so it never
makes an image ``real``. A manifest that fails validation is reported and never trusted. Nothing here reaches
a learned detector: the detectors see decoded pixels only.
"""

from __future__ import annotations

import io
import json
import re

# Generator names: (pattern, generator). Case-insensitive; first match wins. Found anywhere in free text they
# only make a mention (match_generator); a tool field decides only when its whole value is one of them
# (tool_signature).
SIGNATURES: list[tuple[str, str]] = [
    (r"OpenAI--ImageGeneration|Made with OpenAI|DALL[·.\- ]?E(?: ?[23])?|ChatGPT|gpt-image(?:-1)?|GPT-4o", "OpenAI"),
    (r"Midjourney", "Midjourney"),
    (r"Adobe Firefly", "Adobe Firefly"),
    (r"Google Imagen|Imagen|Gemini|Nano Banana(?: Pro)?|Made with Google AI|Google AI", "Google"),
    (r"Microsoft Designer|Bing Image Creator|Image Creator from Microsoft(?: Designer)?", "Microsoft Designer"),
    (r"NovelAI", "NovelAI"),
    (
        r"Stable Diffusion(?: XL)?|AUTOMATIC1111|stable-diffusion-webui|ComfyUI|InvokeAI|Fooocus|DreamStudio|SDXL",
        "Stable Diffusion",
    ),
    (r"\bFLUX(?:\.\d)?(?:[ -](?:dev|pro|schnell|kontext))?\b|Black Forest Labs", "FLUX"),
    (r"Leonardo\.Ai", "Leonardo.Ai"),
    (r"Ideogram", "Ideogram"),
]
# what may follow a generator's name in a tool field: a version ("2.1", "v6", "1.0.3 (build 12)")
_VERSION = r"(?:[\s_/-]*v?\d[\w.\-]*(?:\s*\([^)]*\))?)?"
# IPTC digital source types (the vocabulary C2PA actions and XMP share)
AI_SOURCE_TYPES = {"trainedAlgorithmicMedia": "ai", "compositeWithTrainedAlgorithmicMedia": "edited",
                   "algorithmicMedia": "ai", "compositeSynthetic": "edited"}  # fmt: skip
CAMERA_SOURCE_TYPES = {"digitalCapture", "negativeFilm", "positiveFilm", "print"}
# The Stable Diffusion reference scripts' watermark payload (invisible-watermark, dwtDct, 136 bits), and
# SDXL's 48-bit message (its reference sampling code, dwtDct, "bits" mode)
SD_WATERMARK = b"StableDiffusionV1"
SDXL_WATERMARK_BITS = [int(b) for b in "101100111110110010010000011110111011000110011110"]
WATERMARK_MAX_PIXELS = 16_000_000  # past this the decode would cost more than the budget
HAAR = 0.7071067811865476  # the Haar filter tap, 1/sqrt(2), as PyWavelets stores it


def finding(kind: str, says: str, detail: str, generator: str | None = None, verified: bool = False) -> dict:
    return {"kind": kind, "says": says, "generator": generator, "detail": detail, "verified": verified}


def match_generator(text: str) -> str | None:
    """The generator a text names anywhere in it (for a mention, never a decision)."""
    for pattern, generator in SIGNATURES:
        if re.search(pattern, text, re.IGNORECASE):
            return generator
    return None


def tool_signature(value: str) -> str | None:
    """The generator a tool field (EXIF ``Software``, XMP ``CreatorTool``) declares: only when the whole value is
    a generator's name, optionally with a version ("Adobe Firefly", "Midjourney v6", "DALL-E 3"); prose that
    contains a name ("Flux capacitor prop") declares nothing."""
    for pattern, generator in SIGNATURES:
        if re.fullmatch(rf"\s*(?:{pattern}){_VERSION}\s*", value, re.IGNORECASE):
            return generator
    return None


def mention(where: str, text: str) -> list[dict]:
    """A generator named in free text: a finding that is shown and never decides."""
    gen = match_generator(text)
    if gen is None:
        return []
    return [finding("mention", "unknown", f"{where} names {gen} in free text: {text.strip()[:120]!r}", gen)]


def read_provenance(data: bytes, watermark: bool = True, rgb=None) -> list[dict]:
    """Every declaration found in ``data`` (a file's original bytes). Never raises: a malformed manifest or
    chunk is a finding that carries its error. ``rgb``: the image already decoded from ``data`` (its first
    frame, RGB), so the watermark check does not decode it again."""
    out: list[dict] = []
    for reader in (_c2pa, _xmp, _exif_and_text, *((_watermark,) if watermark else ())):
        try:
            out.extend(reader(data, rgb) if reader is _watermark else reader(data))
        except Exception as e:  # noqa: BLE001 - evidence is best effort; a broken part is itself a finding
            out.append(
                finding(reader.__name__.strip("_").replace("_and_text", ""), "unknown", f"could not be read: {e}")
            )
    return out


def decisive(findings: list[dict]) -> dict | None:
    """The finding that decides a verdict, if any: a verified C2PA declaration of AI first, else a structured one
    (XMP ``DigitalSourceType``, a tool field that is a generator's name, a front-end's structured chunk, the SD
    watermark). Mentions in free text, failed manifests and camera claims never decide."""
    ai = [
        f
        for f in findings
        if f["says"] in ("ai", "edited") and f["kind"] != "mention" and not f["detail"].startswith("could not")
    ]
    for f in ai:
        if f["verified"]:
            return f
    for f in ai:
        if f["kind"] != "c2pa":  # a manifest that fails validation never decides
            return f
    return None


# --- C2PA ------------------------------------------------------------------------------------------------
_CONTEXT: list = []


def _offline_context():
    """A c2pa Context that never uses the network: no remote manifests, no OCSP (made once)."""
    if not _CONTEXT:
        import c2pa

        _CONTEXT.append(c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}))
    return _CONTEXT[0]


def _c2pa(data: bytes) -> list[dict]:
    if b"c2pa" not in data and b"jumb" not in data:  # no JUMBF box: skip the parser (cheap files stay cheap)
        return []
    import c2pa

    try:
        with c2pa.Reader(io.BytesIO(data), context=_offline_context()) as r:
            store = json.loads(r.json())
    except Exception as e:  # noqa: BLE001
        if "ManifestNotFound" in type(e).__name__ or "ManifestNotFound" in str(e):
            return []
        return [finding("c2pa", "unknown", f"could not be read: {e}")]
    manifest = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    codes = [s.get("code", "") for s in store.get("validation_status", []) or []]
    failures = [c for c in codes if c != "signingCredential.untrusted"]
    info = manifest.get("claim_generator_info") or []
    generator = (info[0].get("name") if info else None) or manifest.get("claim_generator")
    sig = manifest.get("signature_info") or {}
    signer = sig.get("common_name") or sig.get("issuer") or "unknown signer"
    says = "unknown"
    for a in manifest.get("assertions", []):
        if a.get("label", "").startswith("c2pa.actions"):
            for act in a.get("data", {}).get("actions", []):
                kind = str(act.get("digitalSourceType", "")).rsplit("/", 1)[-1]
                if kind in AI_SOURCE_TYPES and says != "ai":
                    says = AI_SOURCE_TYPES[kind]
                elif kind in CAMERA_SOURCE_TYPES and says == "unknown":
                    says = "camera"
    trust = "offline: signer chain not checked against a trust list, no OCSP, no remote manifest"
    if failures:
        detail = f"manifest fails validation ({', '.join(failures)}): not trusted; signed by {signer}"
    else:
        detail = f"manifest intact, signed by {signer} ({sig.get('issuer', '?')}); {trust}"
    return [finding("c2pa", says, detail, generator, verified=not failures)]


# --- XMP ---------------------------------------------------------------------------------------------------
XMP_FREE_TEXT = ("dc:description", "dc:title", "photoshop:Headline", "exif:UserComment")


def _xmp(data: bytes) -> list[dict]:
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        return []
    end = data.find(b"</x:xmpmeta>", start)
    xmp = data[start : end if end > 0 else start + 65536].decode("utf-8", "replace")
    out = []
    tool = re.search(r"CreatorTool(?:>|=\")\s*([^<\"]+)", xmp)
    declared = tool_signature(tool.group(1)) if tool else None
    m = re.search(r"DigitalSourceType(?:>|=\")\s*([^<\"]+)", xmp)
    if m:
        kind = m.group(1).strip().rsplit("/", 1)[-1]
        says = AI_SOURCE_TYPES.get(kind, "camera" if kind in CAMERA_SOURCE_TYPES else "unknown")
        out.append(finding("xmp", says, f"DigitalSourceType {kind}", declared if says != "camera" else None))
    if tool and declared:
        out.append(finding("xmp", "ai", f"CreatorTool {tool.group(1).strip()[:120]}", declared))
    for tag in XMP_FREE_TEXT:
        for body in re.findall(rf"<{tag}[^>]*>(.*?)</{tag}>", xmp, re.DOTALL):
            out.extend(mention(f"XMP {tag}", re.sub(r"<[^>]+>", " ", body)))
    return out


# --- EXIF, IPTC and text chunks ---------------------------------------------------------------------------
EXIF_TOOL_FIELDS = {305: "Software"}
EXIF_FREE_TEXT = {270: "ImageDescription", 37510: "UserComment", 37500: "MakerNote"}
IPTC_FREE_TEXT = {(2, 120): "caption", (2, 105): "headline", (2, 25): "keywords"}
FRONT_END_CHUNKS = {  # PNG/WebP text keys written by generation front-ends
    "parameters": "Stable Diffusion web UI (AUTOMATIC1111/Forge)",
    "prompt": "ComfyUI",
    "workflow": "ComfyUI",
    "invokeai_metadata": "InvokeAI",
    "sd-metadata": "InvokeAI",
    "fooocus_scheme": "Fooocus",
}
PNG_FREE_TEXT = ("Comment", "Description", "Title", "Source")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _exif_and_text(data: bytes) -> list[dict]:
    from PIL import Image, IptcImagePlugin

    with Image.open(io.BytesIO(data)) as img:
        info = dict(img.info)
        # a PNG's getexif() decodes the whole image to look for an eXIf chunk after the pixels; read only
        # the one before them (where writers put it), so a file without metadata costs no decode
        exif = img.getexif() if img.format != "PNG" or "exif" in info else Image.Exif()
        sub = exif.get_ifd(0x8769)  # the Exif IFD: UserComment, MakerNote
        fields = {**{t: exif.get(t) for t in exif}, **{t: sub.get(t) for t in sub}}
        iptc = (IptcImagePlugin.getiptcinfo(img) or {}) if img.format in ("JPEG", "TIFF") else {}
    out = []
    for tag, name in EXIF_TOOL_FIELDS.items():
        if fields.get(tag) is not None:
            text = _text(fields[tag])
            if gen := tool_signature(text):
                out.append(finding("exif", "ai", f"{name}: {text.strip()[:160]}", gen))
            else:
                out.extend(mention(f"EXIF {name}", text))
    for tag, name in EXIF_FREE_TEXT.items():
        if fields.get(tag) is not None:
            out.extend(mention(f"EXIF {name}", _text(fields[tag])))
    for key, name in IPTC_FREE_TEXT.items():
        values = iptc.get(key)
        for v in values if isinstance(values, list) else [values] if values else []:
            out.extend(mention(f"IPTC {name}", _text(v)))
    for key, front_end in FRONT_END_CHUNKS.items():
        if key in info and isinstance(info[key], str):
            if _structured(key, info[key]):
                gen = _model_of(key, info[key]) or front_end
                out.append(finding("png-text", "ai", f"{key}: {_summary(key, info[key])}", gen))
            else:
                out.append(
                    finding("mention", "unknown", f"a {key!r} text chunk without {front_end}'s structure", front_end)
                )
    if isinstance(info.get("Software"), str):
        if gen := tool_signature(info["Software"]):
            out.append(finding("png-text", "ai", f"Software: {info['Software'].strip()[:160]}", gen))
        else:
            out.extend(mention("PNG Software", info["Software"]))
    for key in PNG_FREE_TEXT:
        if isinstance(info.get(key), str):
            out.extend(mention(f"PNG {key}", info[key]))
    return out


def _structured(key: str, text: str) -> bool:
    """Whether a front-end's chunk has that front-end's own structure (not just its key name)."""
    if key == "parameters":  # A1111/Forge: the settings line
        return bool(re.search(r"\bSteps: \d+", text) and re.search(r"\bSampler: \S", text))
    if key == "fooocus_scheme":
        return text.strip() in ("fooocus", "a1111")
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    if key == "prompt":  # ComfyUI: node id -> {"class_type", "inputs"}
        return (
            isinstance(doc, dict) and bool(doc) and all(isinstance(v, dict) and "class_type" in v for v in doc.values())
        )
    if key == "workflow":
        return isinstance(doc, dict) and isinstance(doc.get("nodes"), list)
    return isinstance(doc, dict) and bool(doc)  # InvokeAI: a JSON object of settings


def _model_of(key: str, text: str) -> str | None:
    """The model a front-end's text names, where it does (A1111 ``Model: …``; ComfyUI checkpoint names)."""
    if key == "parameters":
        m = re.search(r"Model: ([^,\n]+)", text)
        return f"Stable Diffusion ({m.group(1).strip()})" if m else None
    if key in ("prompt", "workflow"):
        m = re.search(r"\"ckpt_name\"\s*:\s*\"([^\"]+)\"", text)
        return f"ComfyUI ({m.group(1)})" if m else None
    return None


def _summary(key: str, text: str) -> str:
    if key == "parameters":
        m = re.search(r"Steps: (\d+), Sampler: ([^,]+)", text)
        return "prompt and settings" + (f" (steps {m.group(1)}, sampler {m.group(2)})" if m else "")
    return f"{len(text):,} characters of generation settings"


# --- the Stable Diffusion reference watermark -------------------------------------------------------------
def decode_dwt_dct(bgr, n_bits: int, scale: float = 36.0, block: int = 4):
    """The bits of an invisible-watermark ``dwtDct`` mark in a BGR uint8 image, vectorised: the same result
    as ``imwatermark.WatermarkDecoder(...).decode(bgr, "dwtDct")`` (tested against it) in a few
    milliseconds instead of a Python loop over blocks. The mark lives in the U channel's Haar
    approximation band: in each 4x4 block, the largest non-DC coefficient's magnitude modulo ``scale`` sits
    above or below half of it; block k carries bit k mod n_bits, and each bit is the majority over its blocks."""
    import cv2
    import numpy as np

    rows, cols = bgr.shape[:2]
    u = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[: rows // 4 * 4, : cols // 4 * 4, 1].astype(np.float64)
    # the Haar approximation band, computed as PyWavelets' dwt2 does it (first down the rows, then across),
    # so it is the same to the last bit, at a tenth of the cost
    v = u[0::2] * HAAR + u[1::2] * HAAR
    band = v[:, 0::2] * HAAR + v[:, 1::2] * HAAR
    r, c = band.shape[0] // block, band.shape[1] // block
    blocks = band[: r * block, : c * block].reshape(r, block, c, block).transpose(0, 2, 1, 3).reshape(-1, block * block)
    pos = np.abs(blocks[:, 1:]).argmax(axis=1) + 1
    val = np.abs(blocks[np.arange(len(blocks)), pos])
    score = (val % scale) > 0.5 * scale
    which = np.arange(len(blocks)) % n_bits
    mean = np.bincount(which, score.astype(float), n_bits) / np.maximum(np.bincount(which, minlength=n_bits), 1)
    return mean * 255 > 127


def _watermark(data: bytes, rgb=None) -> list[dict]:
    import numpy as np
    from PIL import Image

    if rgb is None:
        with Image.open(io.BytesIO(data)) as img:
            rgb = img.convert("RGB")
    w, h = rgb.size
    if w * h < 256 * 256 or w * h > WATERMARK_MAX_PIXELS:
        return []
    bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
    if np.packbits(decode_dwt_dct(bgr, 8 * len(SD_WATERMARK))).tobytes() == SD_WATERMARK:
        return [finding("watermark", "ai", f"invisible watermark {SD_WATERMARK.decode()} (dwtDct), decoded exactly",
                        "Stable Diffusion")]  # fmt: skip
    if decode_dwt_dct(bgr, len(SDXL_WATERMARK_BITS)).astype(int).tolist() == SDXL_WATERMARK_BITS:
        return [finding("watermark", "ai", "invisible watermark of SDXL's reference code (dwtDct, 48 bits)", "SDXL")]
    return []


__all__ = [
    "read_provenance",
    "decisive",
    "finding",
    "match_generator",
    "tool_signature",
    "decode_dwt_dct",
    "SIGNATURES",
]
