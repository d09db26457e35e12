"""Provenance on files the tests make: C2PA manifests signed here with a throwaway certificate, generator
text chunks, EXIF, the Stable Diffusion watermark, and a plain camera-style JPEG that declares nothing."""

import datetime
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigi.provenance import decisive, read_provenance

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def picture(fmt="PNG", size=(320, 256), **save) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, fmt, **save)
    return buf.getvalue()


def make_signer():
    """An ES256 key and a certificate chain made here (a test CA and a signer it issued): nothing fetched."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aigi tests")]
        )

    def usage(ca):
        return x509.KeyUsage(True, False, False, False, False, ca, ca, False, False)

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def cert(subject, issuer, public, signing_key, ca):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(usage(ca), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))  # fmt: skip
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        return b.sign(signing_key, hashes.SHA256())

    ca = cert(name("aigi test CA"), name("aigi test CA"), ca_key.public_key(), ca_key, True)
    ee = cert(name("aigi test signer"), ca.subject, key.public_key(), ca_key, False)
    chain = ee.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    import c2pa

    return c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, pem, None))


def signed(data: bytes, mime: str, source_type: str = AI) -> bytes:
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": "Test Image Generator", "version": "1.0"}],
        "title": "made in a test",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]},
            }
        ],
    }
    out = io.BytesIO()
    c2pa.Builder(json.dumps(manifest)).sign(make_signer(), mime, io.BytesIO(data), out)
    return out.getvalue()


@pytest.mark.parametrize("fmt,mime", [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_a_signed_c2pa_declaration_of_ai_decides_and_a_tampered_copy_does_not(fmt, mime):
    data = signed(picture(fmt), mime)
    found = read_provenance(data)
    c = [f for f in found if f["kind"] == "c2pa"]
    assert len(c) == 1 and c[0]["says"] == "ai" and c[0]["verified"] and c[0]["generator"] == "Test Image Generator"
    assert (
        "aigi test signer" in c[0]["detail"]
        and "not checked against a trust list" in c[0]["detail"]
        and "offline" in c[0]["detail"]
    )
    assert decisive(found) == c[0]
    # one byte of the image changed: the manifest no longer matches, is reported as such, and decides nothing
    tampered = bytearray(data)
    tampered[-300] ^= 0xFF
    found = read_provenance(bytes(tampered))
    c = [f for f in found if f["kind"] == "c2pa"]
    assert len(c) == 1 and not c[0]["verified"] and "fails validation" in c[0]["detail"]
    assert "assertion.dataHash.mismatch" in c[0]["detail"] and decisive(found) is None


def test_generation_front_end_chunks_and_exif_are_found():
    from PIL import PngImagePlugin

    a1111 = PngImagePlugin.PngInfo()
    a1111.add_text("parameters", "a cat in a hat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
                   "Seed: 1, Size: 512x512, Model hash: abc, Model: v1-5-pruned-emaonly")  # fmt: skip
    f = read_provenance(picture("PNG", pnginfo=a1111))
    assert [x["kind"] for x in f] == ["png-text"] and f[0]["says"] == "ai"
    assert f[0]["generator"] == "Stable Diffusion (v1-5-pruned-emaonly)" and "sampler Euler a" in f[0]["detail"]
    comfy = PngImagePlugin.PngInfo()
    comfy.add_text(
        "prompt",
        json.dumps({"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}}}),
    )
    comfy.add_text("workflow", json.dumps({"nodes": []}))
    f = read_provenance(picture("PNG", pnginfo=comfy))
    assert {x["generator"] for x in f} == {"ComfyUI (sdxl.safetensors)", "ComfyUI"} and decisive(f) is not None
    exif = Image.Exif()
    exif[305] = "Adobe Firefly"
    f = read_provenance(picture("JPEG", exif=exif.tobytes()))
    assert [(x["kind"], x["generator"]) for x in f] == [("exif", "Adobe Firefly")]
    exif = Image.Exif()
    exif[305] = "Midjourney v6"  # a tool field whose whole value is a generator's name, with a version
    f = read_provenance(picture("JPEG", exif=exif.tobytes()))
    assert [(x["kind"], x["generator"]) for x in f] == [("exif", "Midjourney")] and decisive(f) == f[0]
    exif = Image.Exif()
    exif[270] = "OpenAI--ImageGeneration--abc123"  # a description field is free text: shown, never deciding
    f = read_provenance(picture("JPEG", exif=exif.tobytes()))
    assert [(x["kind"], x["generator"]) for x in f] == [("mention", "OpenAI")] and decisive(f) is None


def test_the_stable_diffusion_watermark_is_decoded():
    from imwatermark import WatermarkEncoder

    rgb = np.asarray(Image.open(io.BytesIO(picture("PNG", size=(512, 512)))).convert("RGB"))
    enc = WatermarkEncoder()
    enc.set_watermark("bytes", b"StableDiffusionV1")
    marked = enc.encode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")[:, :, ::-1]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(marked)).save(buf, "PNG")
    f = read_provenance(buf.getvalue())
    assert [(x["kind"], x["generator"]) for x in f] == [("watermark", "Stable Diffusion")] and decisive(f)
    assert read_provenance(picture("PNG", size=(512, 512))) == []  # the same size, unmarked


def test_a_camera_jpeg_declares_nothing_and_a_camera_claim_never_decides():
    assert read_provenance(picture("JPEG", size=(400, 300), quality=90)) == []
    exif = Image.Exif()
    exif[271], exif[272], exif[305] = "Canon", "Canon EOS R5", "Firmware 1.8.1"
    f = read_provenance(picture("JPEG", exif=exif.tobytes()))
    assert f == [] and decisive(f) is None
    data = signed(picture("JPEG"), "image/jpeg", "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture")
    f = read_provenance(data)
    assert [x["says"] for x in f] == ["camera"] and decisive(f) is None


def test_a_malformed_manifest_is_a_finding_not_a_failure():
    data = picture("JPEG")
    junk = data[:2] + b"\xff\xeb\x00\x20JP\x00\x01\x00\x00\x00\x01\x00\x00\x00\x18jumbc2pa broken jumbf.." + data[2:]
    f = read_provenance(junk)
    assert all(x["says"] != "ai" for x in f) and decisive(f) is None


@pytest.mark.slow
def test_declarations_decide_records_through_the_cli_and_the_pixels_stay_available(tmp_path):
    import shutil

    from conftest import run_cli
    from PIL import PngImagePlugin

    d = tmp_path / "in"
    d.mkdir()
    (d / "signed.jpg").write_bytes(signed(picture("JPEG"), "image/jpeg"))
    (d / "signed.png").write_bytes(signed(picture("PNG"), "image/png"))
    tampered = bytearray((d / "signed.jpg").read_bytes())
    tampered[-300] ^= 0xFF
    (d / "tampered.jpg").write_bytes(bytes(tampered))
    a1111 = PngImagePlugin.PngInfo()
    a1111.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, Model: v1-5")
    (d / "a1111.png").write_bytes(picture("PNG", pnginfo=a1111))
    (d / "camera.jpg").write_bytes(picture("JPEG", quality=90))
    (d / "bare.png").write_bytes(picture("PNG"))  # the same pixels as signed.png and a1111.png, declaring nothing
    (d / "bare.jpg").write_bytes(picture("JPEG"))  # the same bytes as signed.jpg before its manifest went in
    r = run_cli("detect", d, "--format", "json")
    assert r.returncode == 0, r.stderr
    recs = {Path(x["path"]).name: x for x in json.loads(r.stdout)}
    for name in ("signed.jpg", "signed.png"):
        assert (
            recs[name]["verdict"] == "fake"
            and recs[name]["reason"] == "provenance: Test Image Generator (c2pa, verified)"
        )
        assert recs[name]["detector_verdict"] in ("real", "fake", "unsure") and recs[name]["p_fake"] is not None
    assert recs["a1111.png"]["verdict"] == "fake" and recs["a1111.png"]["reason"].startswith(
        "provenance: Stable Diffusion"
    )
    t = recs["tampered.jpg"]
    assert "fails validation" in t["provenance"][0]["detail"] and t["verdict"] == t["detector_verdict"]
    assert (
        recs["camera.jpg"]["provenance"] == []
        and recs["camera.jpg"]["verdict"] == recs["camera.jpg"]["detector_verdict"]
    )
    # metadata never reaches the detector: the same pixels score the same, declared or not (up to the float
    # noise of their places in the batch)
    same = pytest.approx(recs["bare.png"]["p_fake"], abs=1e-6)
    assert recs["signed.png"]["p_fake"] == same and recs["a1111.png"]["p_fake"] == same
    assert recs["signed.jpg"]["p_fake"] == pytest.approx(recs["bare.jpg"]["p_fake"], abs=1e-6)
    r = run_cli("detect", d, "--format", "json", "--no-provenance")
    plain = {Path(x["path"]).name: x for x in json.loads(r.stdout)}
    assert all("provenance" not in x and "detector_verdict" not in x for x in plain.values())
    assert plain["signed.jpg"]["verdict"] == recs["signed.jpg"]["detector_verdict"]
    r = run_cli("detect", d)  # the table shows the evidence
    assert "c2pa: Test Image Generator (verified)" in r.stdout.replace("\n", " ") or "c2pa:" in r.stdout
    shutil.rmtree(d)


def test_the_vectorised_watermark_decoder_matches_invisible_watermarks_own():
    from imwatermark import WatermarkDecoder, WatermarkEncoder

    from aigi.provenance import decode_dwt_dct

    rng = np.random.default_rng(1)
    for shape, n_bits in (((512, 512, 3), 136), ((384, 640, 3), 48), ((301, 257, 3), 32)):
        img = rng.integers(0, 255, shape, dtype=np.uint8)
        enc = WatermarkEncoder()
        enc.set_watermark("bits", rng.integers(0, 2, n_bits).tolist())
        for candidate in (img, enc.encode(img, "dwtDct")):
            theirs = WatermarkDecoder("bits", n_bits).decode(candidate, "dwtDct")
            assert decode_dwt_dct(candidate, n_bits).tolist() == list(theirs)


def test_the_audit_counts_declarations_per_label(tmp_path):
    from PIL import PngImagePlugin

    from aigi.data import load_data
    from aigi.evaluation.audit import audit

    for label in ("real", "fake"):
        (tmp_path / label).mkdir()
    for i in range(12):
        (tmp_path / "real" / f"{i}.png").write_bytes(picture("PNG", size=(96 + i, 80)))
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", f"prompt {i}\nSteps: 20, Sampler: Euler, Model: sd15")
        (tmp_path / "fake" / f"{i}.png").write_bytes(picture("PNG", size=(96 + i, 80), pnginfo=info))
    res = audit(load_data(tmp_path))
    assert res["declarations"]["fake"] == {"ai": 12, "camera": 0, "files": 12}
    assert res["declarations"]["real"]["ai"] == 0
    assert any("only the fakes declare ai origin (12 files)" in w for w in res["warnings"])


# Real photos whose captions name a generator (or a word that is one): each must be a mention, never a verdict.
CAPTIONS = {
    "Flux capacitor prop at the museum": "FLUX",
    "Gemini constellation over the desert": "Google",
    "Imagen Photography studio portrait": "Google",
    "Midjourney CEO David Holz speaks at a conference": "Midjourney",
    "Stable Diffusion lecture, room 4": "Stable Diffusion",
    "Poster reading DALL-E exhibition": "OpenAI",
}


def xmp_packet(body: str) -> bytes:
    return (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        b'xmlns:xmp="http://ns.adobe.com/xap/1.0/">' + body.encode() + b"</rdf:Description></rdf:RDF></x:xmpmeta>"
        b'<?xpacket end="w"?>'
    )


def iptc_caption(jpeg: bytes, caption: str) -> bytes:
    """``jpeg`` with an IPTC-IIM caption (2:120) in a Photoshop APP13 segment, as newsroom tools write it."""
    text = caption.encode()
    iim = b"\x1c\x02\x78" + len(text).to_bytes(2, "big") + text
    block = b"8BIM\x04\x04\x00\x00" + len(iim).to_bytes(4, "big") + iim + (b"\x00" if len(iim) % 2 else b"")
    seg = b"Photoshop 3.0\x00" + block
    return jpeg[:2] + b"\xff\xed" + (len(seg) + 2).to_bytes(2, "big") + seg + jpeg[2:]


def captioned(caption: str, where: str) -> bytes:
    """A plain photo-like file whose caption, in one free-text field, is ``caption``."""
    from PIL import PngImagePlugin

    if where == "exif-description":
        exif = Image.Exif()
        exif[270] = caption
        return picture("JPEG", exif=exif.tobytes())
    if where == "exif-usercomment":
        exif = Image.Exif()
        exif.get_ifd(0x8769)[37510] = b"ASCII\x00\x00\x00" + caption.encode()
        return picture("JPEG", exif=exif.tobytes())
    if where == "xmp-description":
        body = f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{caption}</rdf:li></rdf:Alt></dc:description>'
        return picture("JPEG", xmp=xmp_packet(body))
    if where == "iptc-caption":
        return iptc_caption(picture("JPEG"), caption)
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", caption)
    return picture("PNG", pnginfo=info)


PLACES = ("exif-description", "exif-usercomment", "xmp-description", "iptc-caption", "png-description")


@pytest.mark.parametrize("where", PLACES)
@pytest.mark.parametrize("caption", list(CAPTIONS))
def test_a_caption_that_names_a_generator_is_a_mention_and_never_decides(caption, where):
    f = read_provenance(captioned(caption, where))
    assert [(x["kind"], x["says"], x["generator"]) for x in f] == [("mention", "unknown", CAPTIONS[caption])]
    assert "free text" in f[0]["detail"] and decisive(f) is None


def test_only_structured_declarations_decide():
    from PIL import PngImagePlugin

    from aigi.provenance import tool_signature

    # a tool field decides only when its whole value is a generator (and a version)
    assert [tool_signature(v) for v in ("Adobe Firefly 2.1 (build 33)", "DALL-E 3", "FLUX.1-dev", "gpt-image-1")] == [
        "Adobe Firefly", "OpenAI", "FLUX", "OpenAI"]  # fmt: skip
    assert [tool_signature(v) for v in ("Flux capacitor prop", "Imagen AI", "Adobe Photoshop 25.0", "")] == [None] * 4
    exif = Image.Exif()
    exif[305] = "Stable Diffusion lecture, room 4"
    f = read_provenance(picture("JPEG", exif=exif.tobytes()))
    assert [x["kind"] for x in f] == ["mention"] and decisive(f) is None
    # XMP DigitalSourceType decides even with no generator named; CreatorTool names it
    f = read_provenance(
        picture("JPEG", xmp=xmp_packet(f"<Iptc4xmpExt:DigitalSourceType>{AI}</Iptc4xmpExt:DigitalSourceType>"))
    )
    assert decisive(f) is not None and decisive(f)["detail"] == "DigitalSourceType trainedAlgorithmicMedia"
    f = read_provenance(picture("JPEG", xmp=xmp_packet("<xmp:CreatorTool>Adobe Firefly</xmp:CreatorTool>")))
    assert decisive(f)["generator"] == "Adobe Firefly"
    f = read_provenance(picture("JPEG", xmp=xmp_packet("<xmp:CreatorTool>Stable Diffusion fan club</xmp:CreatorTool>")))
    assert decisive(f) is None
    # a front-end's key without its structure is a mention; with it, a declaration
    for key, text in (("parameters", "holiday at the lake"), ("prompt", "not json"), ("workflow", '{"a": 1}')):
        info = PngImagePlugin.PngInfo()
        info.add_text(key, text)
        f = read_provenance(picture("PNG", pnginfo=info))
        assert [x["kind"] for x in f] == ["mention"] and decisive(f) is None, key
    info = PngImagePlugin.PngInfo()
    info.add_text("invokeai_metadata", json.dumps({"model": "sdxl", "steps": 30}))
    assert decisive(read_provenance(picture("PNG", pnginfo=info)))["generator"] == "InvokeAI"


@pytest.fixture(scope="module")
def caption_dir(tmp_path_factory):
    """One file per caption (EXIF ImageDescription) and the same pixels bare."""
    d = tmp_path_factory.mktemp("captions")
    for i, caption in enumerate(CAPTIONS):
        (d / f"caption-{i}.jpg").write_bytes(captioned(caption, "exif-description"))
    (d / "bare.jpg").write_bytes(picture("JPEG"))
    return d


def assert_pixels_decide(records):
    recs = {Path(r["path"]).name: r for r in records}
    bare = recs.pop("bare.jpg")
    assert len(recs) == len(CAPTIONS)
    for name, r in recs.items():
        assert r["verdict"] == r["detector_verdict"] == bare["verdict"], (name, r.get("reason"))
        assert not (r.get("reason") or "").startswith("provenance")
        assert [f["kind"] for f in r["provenance"]] == ["mention"]
        assert r["p_fake"] == pytest.approx(bare["p_fake"], abs=1e-6)


def test_captions_never_decide_through_detect(caption_dir):
    from conftest import run_cli

    r = run_cli("detect", caption_dir, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert_pixels_decide(json.loads(r.stdout))


def test_captions_never_decide_through_the_python_api(caption_dir):
    from aigi import load_detector

    det = load_detector()
    assert_pixels_decide(det.predict(sorted(str(p) for p in caption_dir.iterdir())))
