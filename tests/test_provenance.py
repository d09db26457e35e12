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
    exif[270] = "OpenAI--ImageGeneration--abc123"
    assert [x["generator"] for x in read_provenance(picture("JPEG", exif=exif.tobytes()))] == ["OpenAI"]


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
