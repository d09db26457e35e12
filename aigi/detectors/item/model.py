"""ITEM: hierarchical image-text misalignment.

Zhang, Zhang, Bao, Ge, Süsstrunk. "Leveraging Hierarchical Image-Text Misalignment for Universal
Fake Image Detection", arXiv 2511.00427. A generated image agrees less with its own caption, in a
pretrained vision-language space, than a real photo does; the agreement is measured for the whole
image (global) and for each object the caption names (local), turned into a misalignment
representation D, and only an MLP head on D is trained (the vision-language model stays frozen).

Choices written down (the paper does not publish them; each is a config field):
- Space (``backbone``): any transformers CLIP/SigLIP checkpoint (the paper's setting), or ``lit``:
  offline, frozen DINOv2-S and MiniLM-L6 joined by linear heads trained contrastively on a reserved,
  seeded slice of captioned reals (``align_images``; ImageNet file names give the captions);
  ``image_backbone: clip-b16`` puts CLIP ViT-B/16's image tower in DINOv2-S's place; ``blocks``
  lets lit's image side read several blocks' tokens side by side instead of the last. The
  slice is chosen before any split and kept out of all of them (``reserved``); its sha256s are saved
  with the detector. Such a space only knows the concepts it was aligned on (see the model card).
- Captioner: ``retrieval`` (the top ``caption_objects`` vocabulary concepts nearest to the image in the
  space; no captioning weights needed) or a transformers image-to-text model (BLIP ...), identical for
  real and fake images; ``use_manifest_captions`` lets a manifest's captions win in training and
  evaluation. Vocabulary: ``aligned`` (default offline), ``imagenet``, ``coco``, a file, or ``a+b``.
- Objects: vocabulary terms found in the caption, else noun-chunk heads (``captions.objects``).
- Local level: per object, the patch embeddings weighted by their softmax similarity to the object's
  text (``region_temperature``), compared with that text; pooled as the mean D and the worst cosine.
- D (``representation``): ``[(1 - cos) (f_img - f_txt), cos]`` by default (``aigi.misalignment``);
  ``raw`` and ``cosine`` for the ablation; ``levels``: global, local or both.
- Head: standardised D -> MLP (one hidden layer, GELU, dropout), class-balanced AdamW, trained on the
  plain view and K cached shortcut-denial views per image (tokens cached; the caption of every view
  is the plain image's).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from aigi.backbones.vl import LIT, LiTSpace, load_space
from aigi.captions.captioners import RetrievalCaptioner, TransformersCaptioner, object_prompt
from aigi.captions.objects import parse_objects
from aigi.captions.vocabulary import load_vocabulary
from aigi.contract import ModelConfig
from aigi.detectors.base import Detector
from aigi.detectors.item.training import align_space, alignment_slice, view_features
from aigi.detectors.registry import register
from aigi.misalignment import feature_dim, item_features
from aigi.training.loop import train_balanced

if TYPE_CHECKING:
    from PIL import Image

    from aigi.config import TrainConfig
    from aigi.data.manifest import Manifest


@dataclass
class ITEMConfig(ModelConfig):
    backbone: str = LIT  # the vision-language space: "lit" or a CLIP/SigLIP hub id / directory
    embed_dim: int = 128  # joint width of the lit space (a CLIP checkpoint brings its own)
    image_backbone: str = "dinov2-s14"  # lit only: its frozen image encoder (dinov2-s14 or clip-b16)
    blocks: tuple[int, ...] = ()  # lit only: the image side reads these blocks' tokens (empty: the last)
    captioner: str = "retrieval"  # or a transformers image-to-text model id / directory
    vocabulary: str = "aligned"  # concepts for retrieval captions and object parsing
    caption_objects: int = 2  # concepts a retrieval caption names
    max_objects: int = 4
    use_manifest_captions: bool = False
    levels: str = "both"  # global | local | both
    representation: str = "scaled"  # scaled | raw | cosine
    region_temperature: float = 0.05
    hidden: int = 256
    dropout: float = 0.2
    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-2
    # alignment of the lit space (pretrain)
    align_images: int = 300
    align_seed: int = 0
    align_views: int = 4  # the plain image + 3 seeded shortcut-denial views
    align_steps: int = 600
    align_batch: int = 128
    align_lr: float = 2e-3
    align_heldout: float = 0.2


@register("item")
class ITEM(Detector):
    Config = ITEMConfig
    reserves_samples = True
    feature_kind = "item-features"
    feature_mean: torch.Tensor  # buffers
    feature_scale: torch.Tensor
    lit: LiTSpace | None

    def __init__(self, config: ITEMConfig):
        super().__init__(config)
        for part in config.vocabulary.split("+"):  # fail now, not after a long extraction
            if part == "aligned" and config.backbone != LIT:
                raise ValueError(
                    "item: vocabulary 'aligned' needs backbone: lit; with a CLIP/SigLIP space use "
                    "imagenet, coco, imagenet+coco or a file of terms"
                )
            if part not in ("aligned", "imagenet", "coco") and not Path(part).is_file():
                raise ValueError(
                    f"item: unknown vocabulary {part!r}: use aligned, imagenet, coco, or a text file of terms"
                )
        # learned state that is not a tensor (state.json): the aligned concepts and the reserved slice
        self.aligned_terms: tuple[str, ...] = ()
        self.reserved_sha256: tuple[str, ...] = ()
        # frozen parts that are not saved with the detector live outside the module tree
        self._frozen: dict = {"captioner": None, "lock": threading.Lock()}
        if config.backbone == LIT:
            self.lit = LiTSpace(config.embed_dim, blocks=tuple(config.blocks), image_backbone=config.image_backbone)
            dim = config.embed_dim
        else:
            self.lit = None
            self._frozen["clip"] = load_space(
                config.backbone, blocks=tuple(config.blocks), image_backbone=config.image_backbone
            )
            dim = self._frozen["clip"].dim
        f = feature_dim(config.levels, config.representation, dim)
        self.register_buffer("feature_mean", torch.zeros(f))
        self.register_buffer("feature_scale", torch.ones(f))
        self.head = torch.nn.Sequential(
            torch.nn.Linear(f, config.hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(config.dropout),
            torch.nn.Linear(config.hidden, 1),
        )

    def get_state(self) -> dict:
        return {"aligned_terms": list(self.aligned_terms), "reserved_sha256": list(self.reserved_sha256)}

    def forget_captioner(self) -> None:
        """The retrieval captioner is built from the aligned vocabulary: rebuild it when that changes."""
        self._frozen["captioner"] = None

    def set_state(self, state: dict) -> None:
        self.aligned_terms = tuple(state.get("aligned_terms", ()))
        self.reserved_sha256 = tuple(state.get("reserved_sha256", ()))
        self._frozen["captioner"] = None

    # --- the space, captioner and vocabulary -------------------------------------------
    @property
    def space(self):
        return self.lit if self.lit is not None else self._frozen["clip"]

    @property
    def backbone(self):  # what base.input_array and the throughput benchmark read
        return self.space

    def to_device(self, device: str) -> ITEM:
        self.device_name = device
        if self.lit is not None:
            self.lit.device_name = device
        self._frozen["captioner"] = None
        return self.to(device)

    def vocabulary(self) -> list[str]:
        return load_vocabulary(self.config.vocabulary, self.aligned_terms)

    @property
    def captioner(self):
        with self._frozen["lock"]:  # inputs() runs in decoding threads
            if self._frozen["captioner"] is None:
                c = self.config
                if c.captioner == "retrieval":
                    cap = RetrievalCaptioner(self.space, self.vocabulary(), c.caption_objects)
                else:
                    cap = TransformersCaptioner(c.captioner, self.device_name)
                self._frozen["captioner"] = cap
            return self._frozen["captioner"]

    def _object_terms(self) -> list[str]:
        try:
            return self.vocabulary()
        except ValueError:
            return []

    # --- the stages -------------------------------------------------------------------------
    def inputs(self, image: Image.Image) -> dict[str, np.ndarray]:
        """The space's preprocessed pixels; with an image-to-text captioner, its own pixels too."""
        out = {"pixels": self.space.preprocess(image)}
        if self.config.captioner != "retrieval":
            out["caption_pixels"] = self.captioner.pixels(image)
        return out

    def features(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """Tokens -> caption -> objects -> D (``features``, cached), with the caption, objects and cosines
        of every image for its record (not cached)."""
        captions = self.captioner.caption_pixels(inputs["caption_pixels"]) if "caption_pixels" in inputs else None
        b = self.features_from_tokens(torch.from_numpy(self.space.image_tokens(inputs["pixels"])), captions)
        return {
            "features": b["features"].cpu().numpy(),
            "captions": b["captions"],
            "objects": b["objects"],
            "global_cosine": b["global_cosine"].cpu().numpy(),
            "local_cosine": [c.cpu().numpy() for c in b["local_cosine"]],
        }

    def d_settings(self) -> list:
        """What D depends on besides the image: the space, the captioner and the D settings."""
        c = self.config
        return [self.space.key(), self.captioner.key(), c.levels, c.representation, c.region_temperature, c.max_objects]

    def feature_key(self) -> str:
        """The D settings (D from float32 tokens, as ``features`` computes it)."""
        return hashlib.sha256(json.dumps(["engine", *self.d_settings()]).encode()).hexdigest()[:16]

    @torch.no_grad()
    def features_from_tokens(
        self, tokens: torch.Tensor, captions: list[str] | None = None, plain_tokens: torch.Tensor | None = None
    ) -> dict:
        """Encoder tokens [B, T, D] -> ITEM's batch: D features and what they came from.

        ``captions``: one per image (None: the retrieval captioner on ``plain_tokens``, or ``tokens``)."""
        cfg = self.config
        g, p = self.space.joint(tokens)
        if captions is None:
            if not isinstance(self.captioner, RetrievalCaptioner):
                raise ValueError("captions are needed for this captioner")
            g0 = g if plain_tokens is None else self.space.joint(plain_tokens)[0]
            pairs = self.captioner.caption_embeddings(g0)
            captions = [c for c, _ in pairs]
            objects = [o[: cfg.max_objects] for _, o in pairs]
        else:
            terms = self._object_terms()
            objects = [parse_objects(c, terms, cfg.max_objects) or [c] for c in captions]
        texts = list(dict.fromkeys(list(captions) + [object_prompt(o) for obs in objects for o in obs]))
        emb = self.space.encode_texts(texts).to(g.device)
        at = {t: i for i, t in enumerate(texts)}
        cap = emb[[at[c] for c in captions]]
        k = max(1, max(len(o) for o in objects))
        obj = torch.zeros(len(captions), k, emb.shape[1], device=g.device)
        mask = torch.zeros(len(captions), k, dtype=torch.bool, device=g.device)
        for i, obs in enumerate(objects):
            for j, o in enumerate(obs):
                obj[i, j], mask[i, j] = emb[at[object_prompt(o)]], True
        feats, scores = item_features(g, cap, p, obj, mask, cfg.levels, cfg.representation, cfg.region_temperature)
        return {
            "features": feats.float(),
            "captions": captions,
            "objects": objects,
            "global_cosine": scores["global_cosine"],
            "local_cosine": scores["local_cosine"],
        }

    # --- the head ----------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        x = (batch["features"].to(self.feature_mean.device) - self.feature_mean) / self.feature_scale
        logit = self.head(x).squeeze(-1)
        out = {"logit": logit}
        for k in ("captions", "objects", "global_cosine", "local_cosine"):
            if k in batch:
                out[k] = batch[k]
        if "label" in batch:
            out["loss"] = F.binary_cross_entropy_with_logits(logit, batch["label"].float())
        return out

    def extra_fields(self, out: dict[str, Any], i: int) -> dict[str, Any]:
        if "captions" not in out:
            return {}
        objects = out["objects"][i]
        local = out["local_cosine"][i].tolist()
        return {
            "caption": out["captions"][i],
            "objects": list(objects),
            "misalignment": {
                "global": round(1.0 - float(out["global_cosine"][i]), 6),
                "local": {o: round(1.0 - float(c), 6) for o, c in zip(objects, local)},
            },
        }

    # --- the reserved alignment slice ---------------------------------------------------
    def reserved(self, manifest: Manifest) -> np.ndarray:
        if self.reserved_sha256:
            from aigi.training.cache import hash_files

            keep = set(self.reserved_sha256)
            missing = [i for i, s in enumerate(manifest.samples) if not s.sha256]
            computed = dict(zip(missing, hash_files([manifest.samples[i].path for i in missing])[0]))
            return np.array(
                [i for i, s in enumerate(manifest.samples) if (s.sha256 or computed.get(i)) in keep], dtype=int
            )
        if self.lit is not None and self.config.align_images > 0:
            return alignment_slice(manifest, self.config.align_images, self.config.align_seed)
        return np.array([], dtype=int)

    def pretrain(self, reserved: Manifest, train_config: TrainConfig) -> dict | None:
        """Align the lit space on the reserved captioned reals (cached on disk by data and settings)."""
        return align_space(self, reserved, train_config) if self.lit is not None else None

    # --- training ------------------------------------------------------------------------
    def fit(self, manifest: Manifest, train_config: TrainConfig, progress: Callable[[int], None] | None = None) -> dict:
        cfg = self.config
        if self.lit is not None and not self.reserved_sha256:
            raise ValueError(
                "item: the lit space is not aligned yet; train through `aigi train` (it reserves and "
                "aligns on a slice of captioned reals first) or call pretrain()"
            )
        torch.manual_seed(train_config.seed)
        views = train_config.train_views()
        feats, errors, _ = view_features(self, manifest, views, train_config, progress=progress)
        ok = np.array([e is None for e in errors])
        labels = np.asarray(manifest.labels)[ok]
        if len(set(labels.tolist())) < 2:
            raise ValueError(
                "item: training needs real and fake images that can be read"
                + (f" (first error: {next(e for e in errors if e)})" if not ok.all() else "")
            )
        X = feats[ok].reshape(-1, feats.shape[-1])
        y = np.repeat(labels, len(views)).astype(np.float32)
        mean, scale = X.mean(0), X.std(0)
        with torch.no_grad():
            self.feature_mean.copy_(torch.from_numpy(mean))
            self.feature_scale.copy_(torch.from_numpy(np.where(scale > 1e-8, scale, 1.0).astype(np.float32)))
        rng = np.random.default_rng(train_config.seed)
        dev = self.feature_mean.device
        Xt = torch.from_numpy(X).to(dev)
        yt = torch.from_numpy(y).to(dev)

        def batch_for(cls, by_class):
            idx = np.array([rng.choice(by_class[c]) for c in cls])
            return {"features": Xt[idx], "label": yt[idx]}

        for p in self.parameters():
            p.requires_grad_(False)
        for p in self.head.parameters():
            p.requires_grad_(True)
        losses = train_balanced(self, y, batch_for, cfg.steps, cfg.batch_size, cfg.lr, cfg.weight_decay, rng)
        k = max(1, len(losses) // 10)
        return {
            "n_images": int(ok.sum()),
            "n_views": len(views),
            "n_features": int(X.shape[1]),
            "loss_first": float(np.mean(losses[:k])),
            "loss_last": float(np.mean(losses[-k:])),
            "skipped": [e for e in errors if e][:20],
            "n_skipped": int((~ok).sum()),
        }

    def explain_manifest(self, manifest, batch_size: int = 16) -> list[dict | None]:
        """Caption, objects and cosines of every sample (None where it failed), for reports."""
        from aigi.config import TrainConfig

        return view_features(self, manifest, [0], TrainConfig(batch_size=batch_size), details=True)[2]


__all__ = ["ITEM", "ITEMConfig", "alignment_slice"]
