import numpy as np
import pytest
from PIL import Image

from aigi.backbones.base import Backbone, ImageFeatures
from aigi.detectors.univfd import UnivFD, UnivFDConfig
from aigi.scoring import extract, feature_caches
from aigi.training.cache import FeatureCache, view_key
from aigi.transforms import DEFAULT_VIEW_RECIPE, Preprocess


class CountingBackbone(Backbone):
    """A deterministic stand-in encoder that counts forward passes: the mean colour per channel.
    (The cache's logic is under test here, not the encoder; the real one is tested elsewhere.)"""

    name = "counting"
    dim = 3
    preprocess = Preprocess(resize=32, crop=32)

    def __init__(self):
        self.images_seen = 0

    def encode_images(self, pixels, tokens=False, blocks=False):
        self.images_seen += len(pixels)
        m = pixels.mean(axis=(2, 3))
        return ImageFeatures(cls=m, patch_mean=-m)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test its own cache directory, so counts of forward passes are this test's."""
    monkeypatch.setenv("AIGI_CACHE_DIR", str(tmp_path / "cache"))


def counting_detector():
    """A univfd whose backbone is the counting stand-in: the engine's stages and cache under test."""
    det = UnivFD(UnivFDConfig(feature_dim=6))
    det._backbone = CountingBackbone()
    return det, det._backbone


def pooled(det, paths, views):
    feats, err = extract(det, paths, views, batch_size=4)
    return feats["features"], err


def make_images(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (40, 30), (i * 20, 100, 200 - i * 10)).save(p)
        paths.append(str(p))
    return paths


def test_features_are_cached_and_reused(tmp_path):
    paths = make_images(tmp_path, 5)
    det, bb = counting_detector()
    f1, err = pooled(det, paths, [0, 1, 2])
    assert bb.images_seen == 15 and err == [None] * 5
    assert f1.shape == (5, 3, 1, 6)  # images, views, planned crops, features
    f2, _ = pooled(det, paths, [0, 1, 2])
    assert bb.images_seen == 15  # nothing recomputed
    np.testing.assert_array_equal(f1, f2)
    assert not np.allclose(f1[:, 0], f1[:, 1])  # augmented views differ from the plain one


def test_a_killed_run_leaves_no_corrupt_entry_and_a_rerun_resumes(tmp_path):
    paths = make_images(tmp_path, 4)
    det, bb = counting_detector()
    cache = feature_caches(det)["features"]
    pooled(det, paths[:2], [0])  # "the run got this far"
    # a write that was killed halfway leaves only a temporary file, never the entry itself
    from aigi.io import sha256_file

    sha = sha256_file(paths[2])
    d = cache.root / view_key(0, DEFAULT_VIEW_RECIPE, 0) / sha[:2]
    d.mkdir(parents=True, exist_ok=True)
    (d / ".tmp-killed.npy").write_bytes(b"\x93NUMPY partial")
    # and a corrupt entry (e.g. a disk error) is dropped and recomputed
    sha3 = sha256_file(paths[3])
    d3 = cache.root / view_key(0, DEFAULT_VIEW_RECIPE, 0) / sha3[:2]
    d3.mkdir(parents=True, exist_ok=True)
    (d3 / f"{sha3}.npy").write_bytes(b"garbage")
    bb.images_seen = 0
    feats, err = pooled(det, paths, [0])
    assert bb.images_seen == 2 and err == [None] * 4 and not np.isnan(feats).any()


def test_bad_files_are_reported_not_fatal(tmp_path):
    paths = make_images(tmp_path, 2)
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    det, _ = counting_detector()
    feats, err = pooled(det, paths + [str(bad)], [0])
    assert err[:2] == [None, None] and "bad.jpg" in err[2] and np.isnan(feats[2]).all()


def test_compute_cached_resumes_after_a_failure_without_redoing_work(tmp_path):
    """A run that dies midway (here: jobs that fail) leaves finished entries; the rerun makes only the rest."""
    from aigi.training.cache import compute_cached

    cache, aux = FeatureCache("k", root=tmp_path / "f"), FeatureCache("k", root=tmp_path / "a")
    keys = [(f"{i:02d}" + "ab" * 31, "v") for i in range(10)]
    made = []

    def make(i, fail=()):
        if i in fail:
            raise OSError(f"job {i} died")
        made.append(i)
        return np.full((3, 2, 2), i, np.float32), np.array([i], np.int16)

    def encode(px):
        return px.reshape(len(px), -1).sum(axis=1, keepdims=True)  # 12 * i per job

    feats, extra, errors = compute_cached(cache, keys, lambda i: make(i, fail={3, 7}), encode, aux, batch_size=4)
    assert [e is not None for e in errors] == [i in (3, 7) for i in range(10)] and "job 3 died" in errors[3]
    assert feats[3] is None and feats[5][0] == 60 and extra[5][0] == 5
    made.clear()
    feats, extra, errors = compute_cached(cache, keys, make, encode, aux, batch_size=4)
    assert sorted(made) == [3, 7] and all(e is None for e in errors)
    assert [float(f[0]) for f in feats] == [12.0 * i for i in range(10)] and [int(x[0]) for x in extra] == list(
        range(10)
    )
