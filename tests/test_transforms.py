import numpy as np
from PIL import Image

from aigi.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
    ViewRecipe,
    augmented_view,
    center_crop,
    resize_shorter,
    to_array,
    view_rng,
)


def test_resize_shorter_and_center_crop_sizes():
    img = Image.new("RGB", (500, 375))
    r = resize_shorter(img, 256)
    assert r.size == (341, 256)  # 500 * 256/375 = 341.33
    c = center_crop(r, 224)
    assert c.size == (224, 224)
    small = center_crop(Image.new("RGB", (100, 50), (255, 255, 255)), 64)  # padded, not stretched
    assert (
        small.size == (64, 64) and small.getpixel((0, 0)) == (0, 0, 0) and small.getpixel((32, 32)) == (255, 255, 255)
    )


def test_to_array_normalises_per_channel():
    img = Image.new("RGB", (2, 2), (255, 0, 128))
    a = to_array(img)
    assert a.shape == (3, 2, 2) and a.dtype == np.float32
    expect = [
        (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0],
        (0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
        (128 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2],
    ]
    np.testing.assert_allclose(a[:, 0, 0], expect, rtol=1e-6)


def test_preprocess_output_shape_and_key_stability():
    p = Preprocess()
    assert p(Image.new("RGB", (640, 480))).shape == (3, 224, 224)
    assert p.key() == Preprocess().key() != Preprocess(crop=196).key()


def test_views_are_seeded_and_differ_between_views():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    sha = "ab" * 32
    r = ViewRecipe()
    a1 = np.asarray(augmented_view(img, view_rng(sha, 1, 0), r))
    a2 = np.asarray(augmented_view(img, view_rng(sha, 1, 0), r))
    b = np.asarray(augmented_view(img, view_rng(sha, 2, 0), r))
    assert np.array_equal(a1, a2)
    assert a1.shape != b.shape or not np.array_equal(a1, b)
    short = min(a1.shape[:2])
    assert 0.6 * 224 - 1 <= short <= 448  # shorter side drawn in [224, 448] then cropped by 0.6..1


def test_cache_keys_survive_new_fields_with_defaults():
    from dataclasses import dataclass

    from aigi.transforms import stable_key

    @dataclass(frozen=True)
    class V1:
        size: int = 224

    @dataclass(frozen=True)
    class V2:  # a later version adds a field whose default keeps the old behaviour
        size: int = 224
        square: bool = False

    assert stable_key(V1()) == stable_key(V2()) and stable_key(V1(size=256)) == stable_key(V2(size=256))
    assert stable_key(V2(square=True)) != stable_key(V2())


def test_grid_boxes_hand_computed():
    from aigi.transforms import grid_boxes

    assert grid_boxes((384, 384), 224, 1) == [(80, 80, 304, 304)]  # (384 - 224) / 2 = 80
    # two crops on a landscape image: columns at 0 and 500 - 224 = 276, vertically centred at (375 - 224) // 2
    assert grid_boxes((500, 375), 224, 2) == [(0, 75, 224, 299), (276, 75, 500, 299)]
    # a portrait image stacks them
    assert grid_boxes((300, 1000), 224, 2) == [(38, 0, 262, 224), (38, 776, 262, 1000)]
    assert grid_boxes((384, 384), 224, 4) == [
        (0, 0, 224, 224),
        (160, 0, 384, 224),
        (0, 160, 224, 384),
        (160, 160, 384, 384),
    ]
    assert grid_boxes((200, 400), 224, 1) == []  # smaller than a crop
    assert grid_boxes((400, 400), 224, 0) == []


def test_crop_plan_adds_native_crops_only_to_large_enough_images():
    from aigi.transforms import crop_plan

    pre = Preprocess()
    big = Image.fromarray(np.arange(400 * 600 * 3, dtype=np.uint8).reshape(400, 600, 3))
    views = crop_plan(big, pre, 2)
    assert [v.size for v in views] == [(224, 224)] * 3
    assert np.array_equal(np.asarray(views[1]), np.asarray(big)[88:312, 0:224])  # native pixels, untouched
    assert np.array_equal(np.asarray(views[0]), np.asarray(pre.geometry(big)))
    assert len(crop_plan(big.resize((300, 256)), pre, 2)) == 1  # not shrunk by the resize: the resized view only
    assert len(crop_plan(big.resize((300, 257)), pre, 2)) == 3
