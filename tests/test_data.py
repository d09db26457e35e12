from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigi.data import ManifestError, load_data
from aigi.data.splits import leave_generator_out, stratified_split, train_on_generators


def touch_images(root, rels):
    for r in rels:
        p = root / r
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(p)


def test_real_fake_layout(tmp_path):
    touch_images(
        tmp_path, ["real/imagenet/a.jpg", "real/b.png", "fake/sdxl/c.png", "fake/sdxl/d.webp", "fake/gan/e.jpg"]
    )
    m = load_data(tmp_path)
    assert m.layout == "real-fake" and len(m) == 5
    assert m.generators(label=1) == ["gan", "sdxl"]
    assert sorted(m.generators(label=0)) == ["imagenet", "real"]


def test_univfd_layout(tmp_path):
    touch_images(
        tmp_path, ["progan/car/0_real/a.png", "progan/car/1_fake/b.png", "biggan/0_real/c.png", "biggan/1_fake/d.png"]
    )
    m = load_data(tmp_path)
    assert m.layout == "univfd" and len(m) == 4
    assert set(m.generators(label=1)) == {"progan/car", "biggan"}


def test_genimage_layout(tmp_path):
    touch_images(
        tmp_path,
        [
            "midjourney/train/ai/a.png",
            "midjourney/train/nature/b.JPEG",
            "midjourney/val/ai/c.png",
            "adm/val/nature/d.JPEG",
        ],
    )
    m = load_data(tmp_path)
    assert m.layout == "genimage" and len(m) == 4
    assert {s.split for s in m} == {"train", "val"}
    assert m.generators(label=1) == ["midjourney"]


def test_manifest_csv_relative_paths_and_errors(tmp_path):
    touch_images(tmp_path, ["imgs/a.png"])
    (tmp_path / "m.csv").write_text("path,label,generator,caption\nimgs/a.png,fake,sd,a cat\nimgs/a.png,0,,\n")
    m = load_data(tmp_path / "m.csv")
    assert m.samples[0].path == str(tmp_path / "imgs/a.png") and m.samples[0].caption == "a cat"
    assert m.samples[1].label == 0 and m.samples[1].generator == "real"
    (tmp_path / "bad.csv").write_text("path,label\nx.png,maybe\n")
    with pytest.raises(ManifestError, match="bad.csv:2: label 'maybe'"):
        load_data(tmp_path / "bad.csv")
    with pytest.raises(ManifestError, match="unknown layout"):
        load_data(tmp_path / "imgs")


def test_stratified_split_holds_the_fraction_of_every_stratum():
    strata = ["a"] * 10 + ["b"] * 5 + ["c"] * 1
    rest, held = stratified_split(strata, 0.2, seed=0)
    held_strata = [strata[i] for i in held]
    assert held_strata.count("a") == 2 and held_strata.count("b") == 1 and held_strata.count("c") == 0
    assert sorted(np.concatenate([rest, held]).tolist()) == list(range(16))
    assert np.array_equal(held, stratified_split(strata, 0.2, seed=0)[1])


def test_leave_generator_out_folds(tmp_path):
    touch_images(
        tmp_path, [f"real/src{i % 2}/{i}.png" for i in range(10)] + [f"fake/g{i % 3}/{i}.png" for i in range(9)]
    )
    m = load_data(tmp_path)
    folds = leave_generator_out(m, seed=0)
    assert [f.name for f in folds] == ["g0", "g1", "g2"]
    gens = np.array([s.generator for s in m])
    labels = np.array(m.labels)
    real_test = set(folds[0].test[labels[folds[0].test] == 0].tolist())
    for f in folds:
        assert not set(f.train) & set(f.test)
        assert set(gens[f.test][labels[f.test] == 1]) == {f.name}  # only the held-out generator's fakes
        assert f.name not in set(gens[f.train])
        assert set(f.test[labels[f.test] == 0].tolist()) == real_test  # same 20% reals in every fold
    assert len(real_test) == 2  # 20% of 5 per real source
    t = train_on_generators(m, ["g0"], seed=0)
    assert set(gens[t.test][labels[t.test] == 1]) == {"g1", "g2"}


def test_manifest_paths_survive_a_rewrite_from_another_folder(tmp_path, monkeypatch):
    touch_images(tmp_path / "data", ["imgs/a.png", "real/b.png", "fake/g/c.png"])
    (tmp_path / "data" / "m.csv").write_text("path,label\nimgs/a.png,real\n")
    monkeypatch.chdir(tmp_path)
    for m in (load_data("data/m.csv"), load_data("data")):  # relative CSV path, relative folder
        (tmp_path / "out").mkdir(exist_ok=True)
        m.write_csv(tmp_path / "out" / "m2.csv")
        monkeypatch.chdir(tmp_path / "out")
        again = load_data("m2.csv")
        assert all(Path(s.path).is_file() for s in again) and len(again) == len(m)
        monkeypatch.chdir(tmp_path)


def test_leave_family_out_holds_out_whole_families(tmp_path):
    from aigi.data.splits import leave_family_out

    rels = [f"real/cam/r{i}.png" for i in range(10)]
    rels += [f"fake/{g}/{g}{i}.png" for g in ("ldm", "glid3", "stylegan2", "sd-1.5") for i in range(3)]
    touch_images(tmp_path, rels)
    m = load_data(tmp_path)
    folds = {f.name: f for f in leave_family_out(m, seed=0)}
    assert sorted(folds) == ["early-diffusion", "gan-faces", "stable-diffusion"]  # families with fakes here
    gens = np.array([s.generator for s in m])
    f = folds["early-diffusion"]
    assert set(gens[f.test]) == {"cam", "ldm", "glid3"} and not ({"ldm", "glid3"} & set(gens[f.train]))
    assert len(set(f.train) & set(f.test)) == 0 and sum(gens[f.test] == "cam") == 2  # 20 % of the reals


def test_leave_source_out_holds_out_each_real_source_whole(tmp_path):
    import pytest

    from aigi.data.splits import FAMILIES, leave_source_out

    rels = [f"real/{src}/{src}{i}.png" for src, n in (("faces", 3), ("paintings", 2)) for i in range(n)]
    rels += [f"fake/sdxl/s{i}.png" for i in range(2)]
    touch_images(tmp_path, rels)
    m = load_data(tmp_path)
    gens = np.array([s.generator for s in m])
    folds = {f.name: f for f in leave_source_out(m)}
    assert sorted(folds) == ["faces", "paintings"]
    assert sorted(gens[folds["faces"].test]) == ["faces"] * 3  # all of it, and only it
    assert sorted(gens[folds["faces"].train]) == ["paintings", "paintings", "sdxl", "sdxl"]
    with pytest.raises(ValueError, match="no images"):
        leave_source_out(m, ["camera"])
    # every family of the four shared sets is named once
    names = [g for gs in FAMILIES.values() for g in gs]
    assert len(names) == len(set(names)) and {"sdxl", "flux-1-dev", "midjourney-v6"} <= set(names)


def test_several_sources_joined_by_commas(tmp_path):
    touch_images(tmp_path / "a", ["real/x.png", "fake/g/y.png"])
    touch_images(tmp_path / "b", ["real/z.png"])
    m = load_data(f"{tmp_path / 'a'},{tmp_path / 'b'}")
    assert len(m) == 3 and sorted(Path(s.path).name for s in m) == ["x.png", "y.png", "z.png"]
    with pytest.raises(ManifestError, match="no such file"):
        load_data(f"{tmp_path / 'a'},{tmp_path / 'missing'}")


def test_renders_are_seeded_real_images_with_a_manifest(tmp_path):
    from aigi.data.renders import KINDS, render_set

    man = render_set(tmp_path / "r", 8, seed=3)
    m = load_data(man)
    assert len(m) == 8 and set(m.labels) == {0}
    assert sorted({s.generator for s in m}) == sorted(f"render-{k}" for k in KINDS)
    for s in m:
        img = Image.open(s.path)
        assert min(img.size) >= 64 and img.format in ("PNG", "JPEG")
    again = load_data(render_set(tmp_path / "again", 8, seed=3))
    assert [s.sha256 for s in again] == [s.sha256 for s in m]  # the same seed draws the same images
    other = load_data(render_set(tmp_path / "other", 8, seed=4))
    assert not {s.sha256 for s in other} & {s.sha256 for s in m}


def test_every_render_font_draws_text():
    """A font without the glyphs draws nothing: a "text" render would come out blank."""
    from PIL import ImageDraw, ImageFont

    from aigi.data.renders.drawing import font_files

    assert len(font_files()) >= 6
    for path in font_files():
        img = Image.new("L", (200, 40), 255)
        ImageDraw.Draw(img).text((4, 4), "Revenue 42", font=ImageFont.truetype(path, 24), fill=0)
        assert (np.asarray(img) < 128).sum() > 50, path
