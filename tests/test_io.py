import io

import numpy as np
import pytest
from PIL import Image

from aigi.io import DecodeLimits, ImageDecodeError, decode_bytes, load_image, to_rgb


def encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w=40, h=30):
    x = np.zeros((h, w, 3), np.uint8)
    x[..., 0] = np.arange(w)[None, :] * 6
    x[..., 1] = np.arange(h)[:, None] * 8
    x[..., 2] = 128
    return Image.fromarray(x, "RGB")


@pytest.mark.parametrize(
    "fmt,kw",
    [
        ("JPEG", {"quality": 95}),
        ("PNG", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("TIFF", {}),
        ("GIF", {}),
        ("HEIF", {"quality": 95}),
        ("AVIF", {"quality": 95}),
    ],
)
def test_every_format_decodes_to_rgb(fmt, kw):
    d = decode_bytes(encode(gradient(), fmt, **kw), f"x.{fmt.lower()}")
    assert d.image.mode == "RGB" and d.image.size == (40, 30)
    assert d.format in (fmt, "MPO")
    if fmt in ("PNG", "WEBP", "BMP", "TIFF"):  # lossless: pixels come back exactly
        assert np.array_equal(np.asarray(d.image), np.asarray(gradient()))


def test_animated_gif_and_apng_give_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    for fmt in ("GIF", "PNG"):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
        px = decode_bytes(data, "anim").image.getpixel((4, 4))
        assert px[0] > 200 and px[1] < 50 and px[2] < 50


def test_content_is_sniffed_not_the_name(tmp_path):
    p = tmp_path / "really_a_png.jpg"
    p.write_bytes(encode(gradient(), "PNG"))
    assert load_image(p).format == "PNG"


def test_exif_orientation_is_applied():
    img = gradient(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    d = decode_bytes(encode(img, "JPEG", exif=exif.tobytes()), "rot.jpg")
    assert d.image.size == (20, 40)


def test_mode_conversions_are_deliberate():
    # 16-bit: 65535 must map to 255, not be clipped from a huge value to 255 everywhere
    arr16 = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    img16 = Image.fromarray(arr16)
    assert img16.mode.startswith("I;16")
    assert np.asarray(to_rgb(img16))[0, :, 0].tolist() == [0, 100, 255]
    # float in [0, 1] scales by 255
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert np.asarray(to_rgb(f))[0, :, 0].tolist() == [0, 128, 255]
    # transparency composites on white
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    la = Image.new("LA", (1, 1), (0, 128))
    assert to_rgb(la).getpixel((0, 0)) == (127, 127, 127)
    # palette with a transparent index
    p = Image.new("P", (1, 1), 0)
    p.putpalette([10, 20, 30] * 256)
    p.info["transparency"] = 0
    assert to_rgb(p).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("CMYK", (1, 1), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("L", (1, 1), 77)).getpixel((0, 0)) == (77, 77, 77)


def test_empty_truncated_and_non_image_files_raise_named_errors(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(encode(gradient(200, 200), "JPEG")[:600])
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    for p, words in [
        (empty, "empty"),
        (trunc, "truncated"),
        (text, "not an image"),
        (tmp_path / "missing.png", "no such file"),
    ]:
        with pytest.raises(ImageDecodeError) as e:
            load_image(p)
        assert str(p) in str(e.value) and words in str(e.value)


def test_limits_refuse_before_decoding(tmp_path):
    p = tmp_path / "big.png"
    Image.new("1", (5000, 4000)).save(p)  # 20 MP, a few kB on disk
    with pytest.raises(ImageDecodeError, match="over the limit of 1,000,000 pixels"):
        load_image(p, DecodeLimits(max_pixels=1_000_000))
    with pytest.raises(ImageDecodeError, match="over the limit of 100 bytes"):
        load_image(p, DecodeLimits(max_bytes=100))
    assert load_image(p).size == (5000, 4000)


def test_svg_and_other_formats_are_refused():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    with pytest.raises(ImageDecodeError, match="not an image in a supported format"):
        decode_bytes(svg, "x.svg")


def test_a_picture_past_pillows_own_limit_is_refused_with_ours():
    """A header claiming 50,000 x 50,000 pixels: Pillow refuses it while opening (its limit is 178,956,970);
    the message names our limit, the same in the CLI and the service (each passes its own)."""
    import zlib

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = (50_000).to_bytes(4, "big") * 2
    data[ihdr + 17 : ihdr + 21] = zlib.crc32(bytes(data[ihdr : ihdr + 17])).to_bytes(4, "big")
    for limit in (64_000_000, 40_000_000):
        with pytest.raises(ImageDecodeError) as e:
            decode_bytes(bytes(data), "bomb.png", DecodeLimits(max_pixels=limit))
        msg = str(e.value)
        assert f"2,500,000,000 pixels, over the limit of {limit:,} pixels" in msg and "178956970" not in msg


def test_a_large_jpeg_is_decoded_at_reduced_scale_only_when_asked_and_keeps_its_stored_size():
    import io as io_

    from aigi.io import DRAFT_OVER_PIXELS

    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    big = small.resize((5200, 3900))  # 20.3 MP, over DRAFT_OVER_PIXELS
    assert 5200 * 3900 > DRAFT_OVER_PIXELS
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: stored 5200x3900, shown 3900x5200
    buf = io_.BytesIO()
    big.save(buf, "JPEG", quality=85, exif=exif.tobytes())
    full = decode_bytes(buf.getvalue(), "big.jpg")
    assert full.image.size == full.size == (3900, 5200)
    fast = decode_bytes(buf.getvalue(), "big.jpg", min_short_side=448)
    # DCT scaling by 1/8 gives 650x488 stored, 488x650 shown: the smallest scale whose shorter side is >= 448
    assert fast.size == (3900, 5200) and fast.image.size == (488, 650)
    a = np.asarray(fast.image.resize((120, 160)), float)
    b = np.asarray(full.image.resize((120, 160)), float)
    assert np.abs(a - b).mean() < 3  # the same picture, at a smaller scale
    # a PNG, or a JPEG under the size, is always decoded whole
    png = io_.BytesIO()
    small.save(png, "PNG")
    assert decode_bytes(png.getvalue(), "s.png", min_short_side=448).image.size == (80, 60)
