"""ITEM: misalignment math by hand, object parsing, alignment, and train -> save -> load -> detect through
tiny random CLIP and BLIP models built in-process (the same code that loads real checkpoints)."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import run_cli, write_manifest
from PIL import Image

from aigi.captions.objects import parse_objects
from aigi.captions.vocabulary import class_name_from_path, load_vocabulary
from aigi.data.manifest import Manifest, Sample
from aigi.detectors.item import alignment_slice
from aigi.misalignment import feature_dim, item_features, misalignment, region_embeddings
from aigi.training.alignment import contrastive_loss, recall_at_k


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_misalignment_by_hand():
    f_i, f_t = t([1.0, 0.0]), t([0.6, 0.8])  # cosine 0.6
    assert torch.allclose(misalignment(f_i, f_t, "scaled"), t([0.4 * 0.4, 0.4 * -0.8, 0.6]))
    assert torch.allclose(misalignment(f_i, f_t, "raw"), t([0.4, -0.8, math.sqrt(0.8)]))
    assert torch.allclose(misalignment(f_i, f_t, "cosine"), t([0.6]))
    ortho = misalignment(t([1.0, 0.0]), t([0.0, 1.0]), "scaled")
    assert torch.allclose(ortho, t([1.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match="representation"):
        misalignment(f_i, f_t, "euclid")


def test_scaled_d_is_small_when_aligned_and_grows_fast_when_not():
    cosines = [0.99, 0.9, 0.7, 0.4, 0.0]
    norms, raw = [], []
    for c in cosines:
        f_t = t([c, math.sqrt(1 - c * c)])
        norms.append(float(misalignment(t([1.0, 0.0]), f_t, "scaled")[0, :2].norm()))
        raw.append(float(misalignment(t([1.0, 0.0]), f_t, "raw")[0, -1]))
    for c, n in zip(cosines, norms):
        assert n == pytest.approx(math.sqrt(2) * (1 - c) ** 1.5, rel=1e-5)
    gaps, raw_gaps = np.diff(norms) / -np.diff(cosines), np.diff(raw) / -np.diff(cosines)
    assert all(np.diff(gaps) > 0)  # D's slope grows as the cosine falls ...
    assert all(np.diff(raw_gaps) < 0)  # ... the raw distance's shrinks


def test_region_embedding_by_hand():
    patches = t([[1.0, 0.0], [0.0, 1.0]])
    obj = t([[1.0, 0.0]])
    w = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()  # temperature 1
    expected = w / np.linalg.norm(w)
    assert np.allclose(region_embeddings(patches, obj, 1.0)[0, 0].numpy(), expected, atol=1e-6)
    assert np.allclose(region_embeddings(patches, obj, 1e-3)[0, 0].numpy(), [1, 0], atol=1e-6)
    assert np.allclose(region_embeddings(patches, obj, 1e3)[0, 0].numpy(), [2**-0.5] * 2, atol=1e-3)


def test_item_features_levels_and_masked_objects():
    g, cap = t([1.0, 0.0]), t([0.6, 0.8])
    patches = t([[1.0, 0.0], [0.0, 1.0]])
    objs = t([[0.0, 1.0], [1.0, 0.0]])
    mask = torch.tensor([[True, False]])
    feats, scores = item_features(g, cap, patches, objs, mask, "both", "scaled", 1e-3)
    assert feats.shape == (1, feature_dim("both", "scaled", 2)) == (1, 7)
    assert torch.allclose(feats[0, :3], t([0.16, -0.32, 0.6])[0])
    assert torch.allclose(feats[0, 3:6], torch.zeros(3) + t([0.0, 0.0, 1.0])[0], atol=1e-5)  # region = object
    assert feats[0, 6] == pytest.approx(1.0, abs=1e-5)  # the worst (only) object cosine
    assert math.isnan(float(scores["local_cosine"][0, 1]))
    assert item_features(g, cap, patches, objs, mask, "global", "cosine")[0].shape == (1, 1)
    assert item_features(g, cap, patches, objs, mask, "local", "raw")[0].shape == (1, 4)


def test_parse_objects():
    vocab = ["tench", "shark", "great white shark", "dog", "cat"]
    assert parse_objects("a photo of a tench and a great white shark.", vocab) == ["tench", "great white shark"]
    assert parse_objects("Two dogs chasing a cat", vocab) == ["dog", "cat"]
    assert parse_objects("two dogs playing with a red ball on the grass") == ["dogs", "ball", "grass"]
    assert parse_objects("a b c d e f g h i j k", max_objects=2) == []
    assert len(parse_objects("apples pears plums figs dates limes", [], max_objects=2)) <= 2


def test_vocabularies_and_class_names():
    assert class_name_from_path("/x/n01484850_great_white_shark.JPEG") == "great white shark"
    assert class_name_from_path("/x/photo.jpg") is None
    imagenet = load_vocabulary("imagenet")  # read from the open_clip wheel's metadata, never imported
    assert len(imagenet) == 1000 - 2 and imagenet[0] == "tench"  # two ImageNet names are duplicated
    both = load_vocabulary("imagenet+coco")
    assert "person" in both and len(both) < 1000 + 80
    assert load_vocabulary("aligned", ("b", "a")) == ["b", "a"]
    with pytest.raises(ValueError, match="aligned"):
        load_vocabulary("aligned")


def test_recall_at_k_and_contrastive_loss_by_hand():
    sim = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1]])
    assert recall_at_k(sim, np.array([2, 0]), 1) == 0.0
    assert recall_at_k(sim, np.array([2, 0]), 2) == 1.0
    assert recall_at_k(sim, np.array([0, 1]), 1) == 1.0
    a = t([1.0, 0.0], [0.0, 1.0])
    expected = -math.log(math.e / (math.e + 1))  # scale 1: logits [[1, 0], [0, 1]]
    assert float(contrastive_loss(a, a, torch.tensor(1.0))) == pytest.approx(expected, rel=1e-6)


def test_alignment_slice_takes_only_captioned_reals_seeded():
    samples = [Sample(f"/d/n{i:08d}_thing_{i}.JPEG", 0, "imagenet") for i in range(10)]
    samples += [
        Sample("/d/face.jpg", 0, "faces"),
        Sample("/d/n00000099_fake.JPEG", 1, "gen"),
        Sample("/d/plain.jpg", 0, "x", caption="a red bus"),
    ]
    m = Manifest(samples)
    a = alignment_slice(m, 5, seed=0)
    assert len(a) == 5 and a.tolist() == alignment_slice(m, 5, seed=0).tolist()
    assert a.tolist() != alignment_slice(m, 5, seed=1).tolist()
    assert all(m.samples[i].label == 0 and m.samples[i].path != "/d/face.jpg" for i in a)
    assert len(alignment_slice(m, 100)) == 11


def test_bad_settings_fail_when_the_detector_is_built():
    from aigi.detectors.item import ITEM, ITEMConfig

    with pytest.raises(ValueError, match="unknown vocabulary 'imagenett'"):
        ITEM(ITEMConfig(vocabulary="imagenett"))
    with pytest.raises(ValueError, match="levels|global, local or both"):
        ITEM(ITEMConfig(levels="regional"))
    with pytest.raises(ValueError, match="representation"):
        ITEM(ITEMConfig(representation="euclid"))
    with pytest.raises(ValueError, match="blocks need the lit space"):
        ITEM(ITEMConfig(backbone="any/clip", vocabulary="imagenet", blocks=(3,)))
    with pytest.raises(ValueError, match="image_backbone 'resnet50' is not an offline encoder.*dinov2-s14, clip-b16"):
        ITEM(ITEMConfig(image_backbone="resnet50"))
    with pytest.raises(ValueError, match="image_backbone needs the lit space: any/clip brings its own"):
        ITEM(ITEMConfig(backbone="any/clip", vocabulary="imagenet", image_backbone="clip-b16"))


def test_lit_space_on_clip_b16_reads_clip_tokens_through_clip_preprocessing():
    """``image_backbone: clip-b16``: the lit heads read CLIP ViT-B/16's 768-wide tokens (196 patches at 224 px),
    preprocessed with CLIP's mean/std, cached under CLIP's key; blocks stack 768 wide each."""
    from aigi.backbones import load_backbone
    from aigi.backbones.clip_b16 import CLIP_PREPROCESS
    from aigi.detectors.item import ITEM, ITEMConfig

    space = ITEM(ITEMConfig(image_backbone="clip-b16", embed_dim=16)).lit
    assert space.image_head.in_features == space.patch_head.in_features == 768
    assert space.preprocess is CLIP_PREPROCESS and space.token_cache_key().startswith("clip-b16-")
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (80, 90, 3), dtype=np.uint8))
    x = space.preprocess(img)[None]
    tok = space.image_tokens(x)
    assert tok.shape == (1, 197, 768) and tok.dtype == np.float16
    want = load_backbone("clip-b16").encode_images(x, tokens=True).tokens
    np.testing.assert_allclose(tok.astype(np.float32), want, rtol=1e-2, atol=2e-2)
    g, p = space.joint(torch.from_numpy(tok))
    assert g.shape == (1, 16) and p.shape == (1, 196, 16)
    torch.testing.assert_close(g.norm(dim=-1), torch.ones(1))
    two = ITEM(ITEMConfig(image_backbone="clip-b16", blocks=(3, 7), embed_dim=16)).lit
    assert two.image_head.in_features == 1536 and two.token_cache_key().endswith("-blocks3_7")


def test_lit_space_with_blocks_reads_those_blocks_each_normed_on_its_own():
    """``blocks: [5, 11]``: the image tokens are blocks 5 and 11 of DINOv2-S side by side, and the image
    head reads each part layer-normed on its own (by hand below)."""
    from aigi.backbones import load_backbone
    from aigi.detectors.item import ITEM, ITEMConfig

    space = ITEM(ITEMConfig(blocks=(5, 11), embed_dim=16)).lit
    assert space.image_head.in_features == space.patch_head.in_features == 768
    assert space.token_cache_key().endswith("-blocks5_11")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 90, 3), dtype=np.uint8))
    x = space.preprocess(img)[None]
    tok = space.image_tokens(x)
    pooled = load_backbone("dinov2-s14").encode_images(x, blocks=True).blocks  # [1, 12, 2 x 384]
    assert tok.shape == (1, 257, 768)
    np.testing.assert_allclose(tok[:, 0, :384], pooled[:, 5, :384], rtol=1e-2, atol=5e-2)  # float16 tokens
    np.testing.assert_allclose(tok[:, 0, 384:], pooled[:, 11, :384], rtol=1e-2, atol=5e-2)
    t32 = torch.from_numpy(tok.astype(np.float32))
    g, p = space.project_image(t32)

    def norm(v):
        return (v - v.mean(-1, keepdim=True)) / torch.sqrt(v.var(-1, unbiased=False, keepdim=True) + 1e-5)

    by_hand = torch.cat([norm(t32[:, 0, :384]), norm(t32[:, 0, 384:])], -1)
    torch.testing.assert_close(g, by_hand @ space.image_head.weight.T + space.image_head.bias, atol=1e-4, rtol=1e-4)
    assert p.shape == (1, 256, 16)


def test_tiny_clip_has_the_real_clip_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from aigi.backbones.tiny import build_tiny_clip

    tok = AutoTokenizer.from_pretrained(build_tiny_clip(tmp_path / "clip"))
    assert len(tok) == 49408
    assert tok.tokenize("a photo of a great white shark.") == [
        "a</w>",
        "photo</w>",
        "of</w>",
        "a</w>",
        "great</w>",
        "white</w>",
        "shark</w>",
        ".</w>",
    ]


CLIP_CONFIG = """
detector: item
views: 1
val_fraction: 0.25
batch_size: 8
options: {{backbone: {clip}, vocabulary: coco, captioner: {captioner}, steps: 60, batch_size: 16, hidden: 32}}
"""


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from aigi.backbones.tiny import build_tiny_blip, build_tiny_clip

    d = tmp_path_factory.mktemp("tiny")
    return build_tiny_clip(d / "clip", image_size=32), build_tiny_blip(d / "blip", image_size=32)


@pytest.mark.slow
@pytest.mark.parametrize("captioner", ["retrieval", "blip"])
def test_train_save_load_detect_through_a_tiny_clip(sample_dir, tmp_path, tiny_models, captioner):
    clip, blip = tiny_models
    cfg = tmp_path / "item.yaml"
    cfg.write_text(CLIP_CONFIG.format(clip=clip, captioner="retrieval" if captioner == "retrieval" else blip))
    out = tmp_path / "item-tiny"
    r = run_cli("train", "--config", cfg, "--data", sample_dir / "manifest.csv", "--out", out)
    assert r.returncode == 0, r.stderr
    img = sample_dir / "real" / "astronaut.png"
    r = run_cli("detect", "--detector", out, img, "--format", "json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)[0]
    assert rec["verdict"] in ("real", "fake", "unsure") and rec["detector"] == "item"
    assert rec["caption"] and rec["objects"]
    assert set(rec["misalignment"]) == {"global", "local"}
    assert set(rec["misalignment"]["local"]) == set(rec["objects"])
    assert all(0.0 <= v <= 2.0 for v in [rec["misalignment"]["global"], *rec["misalignment"]["local"].values()])

    from aigi import load_detector
    from aigi.captions.captioners import TransformersCaptioner
    from aigi.data.manifest import load_data

    det = load_detector(str(out))
    assert det.predict([img])[0]["p_fake"] == pytest.approx(rec["p_fake"], abs=1e-6)
    from aigi.scoring import calibrated_scores

    p, _ = calibrated_scores(det, load_data(str(sample_dir / "manifest.csv")).subset(lambda s: s.path == str(img)))
    assert float(p[0]) == pytest.approx(rec["p_fake"], abs=1e-6)  # cached path = predict
    if captioner == "blip":
        assert rec["caption"] == TransformersCaptioner(str(blip)).caption_images([Image.open(img).convert("RGB")])[0]
    else:
        assert rec["caption"].startswith("a photo of") and all(o in load_vocabulary("coco") for o in rec["objects"])


@pytest.mark.slow
def test_offline_lit_space_reserves_aligns_and_trains(sample_dir, tmp_path):
    """DINOv2-S + MiniLM-L6 aligned on a reserved slice of named reals, which no split then holds."""
    import yaml

    from aigi import load_detector
    from aigi.data.manifest import load_data
    from aigi.samples import real_photos
    from aigi.training.cache import hash_files

    named = tmp_path / "named"
    named.mkdir()
    rows = []
    for i, (name, img) in enumerate(real_photos()):
        img.save(named / f"n{i:08d}_{name}.png")  # ImageNet-style: the class is in the file name
        img.transpose(Image.FLIP_LEFT_RIGHT).resize((160, 120)).save(named / f"extra-{name}.png")
    rows = [{"path": str(p), "label": "real", "generator": "photo"} for p in sorted(named.iterdir())]
    rows += [{"path": str(p), "label": "fake", "generator": "dcgan"} for p in sorted((sample_dir / "fake").iterdir())]
    manifest = load_data(str(write_manifest(tmp_path / "m.csv", rows)))
    cfg = tmp_path / "item.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "detector": "item",
                "views": 1,
                "val_fraction": 0.25,
                "batch_size": 8,
                "options": {
                    "align_images": 6,
                    "align_views": 2,
                    "align_steps": 20,
                    "align_batch": 4,
                    "steps": 40,
                    "hidden": 16,
                },
            }
        )
    )
    r = run_cli("train", "--config", cfg, "--data", tmp_path / "m.csv", "--out", tmp_path / "item-lit")
    assert r.returncode == 0, r.stderr
    # the banner counts what the run trains on: the data minus the reserved slice
    assert (
        f"training item on {len(manifest) - 6} images" in r.stderr
        and f"(from {len(manifest)}: 6 reserved for pre-training)" in r.stderr
    )
    det = load_detector(str(tmp_path / "item-lit"))
    info = det.training_info
    reserved = set(det.reserved_sha256)
    assert len(reserved) == 6 and len(det.aligned_terms) == 6
    assert info["pretrain"]["n_pairs"] == 6 and 0 <= info["pretrain"]["heldout_classes"]["recall"] <= 1
    # the reserved images are in neither the training nor the validation split
    n_train, n_val = int(info["train"].split()[0]), int(info["validation"]["data"].split()[0])
    assert n_train + n_val == len(manifest) - 6
    shas = hash_files([s.path for s in manifest])[0]
    assert det.reserved(manifest).tolist() == [i for i, sha in enumerate(shas) if sha in reserved]
    assert all(class_name_from_path(manifest.samples[i].path) for i in det.reserved(manifest))
    # saved and loaded, it keeps its aligned vocabulary and reserved list, and names aligned concepts
    again = load_detector(str(tmp_path / "item-lit"))
    assert set(again.reserved_sha256) == reserved
    meta = json.loads((tmp_path / "item-lit" / "config.json").read_text())
    assert "reserved_sha256" not in meta["config"] and (tmp_path / "item-lit" / "state.json").is_file()  # state
    rec = again.predict([rows[-1]["path"]])[0]
    assert rec["objects"] and all(o in det.aligned_terms for o in rec["objects"])
    assert rec["p_fake"] == pytest.approx(det.predict([rows[-1]["path"]])[0]["p_fake"], abs=1e-6)
    # evaluating it on the same data leaves the alignment images out, and says so
    r = run_cli(
        "eval", "--detector", tmp_path / "item-lit", "--data", tmp_path / "m.csv", "--json", tmp_path / "e.json"
    )
    assert r.returncode == 0, r.stderr
    assert "left out 6 images item reserved" in r.stderr
    assert json.loads((tmp_path / "e.json").read_text())["overall"]["n"] == len(manifest) - 6


@pytest.mark.slow
def test_detect_with_the_shipped_item_prints_caption_objects_and_scores(sample_dir):
    """The Must-show command: `aigi detect --detector item IMG --format json` on the shipped weights."""
    from aigi import load_detector

    img = sample_dir / "real" / "coffee.png"
    r = run_cli("detect", "--detector", "item", img, "--format", "json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)[0]
    terms = load_detector("item").aligned_terms
    assert rec["detector"] == "item" and rec["verdict"] in ("real", "fake", "unsure")
    assert rec["caption"].startswith("a photo of") and 1 <= len(rec["objects"]) <= 2
    assert all(o in terms and o in rec["caption"] for o in rec["objects"])
    assert set(rec["misalignment"]["local"]) == set(rec["objects"])
