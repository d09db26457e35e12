"""`aigi serve` as users meet it: the real server on a loopback port, HTTP from outside, the page in a
headless Chromium, and bad inputs that must each get a 4xx JSON error while good requests go on."""

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args, env_extra=None):
        import tempfile

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("aigi")
        env = dict(os.environ, **(env_extra or {}))
        self._logdir = tempfile.TemporaryDirectory(prefix="aigi-serve-log-")  # removed by stop()
        self.log = Path(self._logdir.name) / "server.log"  # read by tests, never blocks
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), *map(str, args)],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                log = self.log.read_text()
                self.stop()
                raise RuntimeError(f"server exited: {log}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        log = self.log.read_text()
        self.stop()
        raise RuntimeError(f"server did not come up: {log}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._logdir.cleanup()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("server-tmp")


@pytest.fixture(scope="module")
def server(server_tmp):
    s = Server(
        "--max-request-mb",
        4,
        "--max-files",
        16,
        "--max-pixels",
        4_000_000,
        env_extra={"TMPDIR": str(server_tmp), "TEMP": str(server_tmp), "TMP": str(server_tmp)},
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def images(sample_dir):
    return {
        p.name: p.read_bytes()
        for p in [
            sample_dir / "real" / "coffee.png",
            sample_dir / "real" / "chelsea.png",
            sample_dir / "fake" / "dcgan-face-00.png",
        ]
    }


def good_request_works(server, images):
    r = httpx.post(
        server.url + "/v1/detect", files=[("files", ("coffee.png", images["coffee.png"], "image/png"))], timeout=60
    )
    assert r.status_code == 200 and r.json()["results"][0]["verdict"] in ("real", "fake", "unsure")


def test_endpoints_answer(server):
    h = httpx.get(server.url + "/healthz").json()
    assert h["status"] == "ok" and h["detector"] == "univfd"
    d = httpx.get(server.url + "/v1/detectors").json()
    assert d["serving"]["name"] == "univfd" and "item" in d["registered"] and d["limits"]["max_files"] == 16
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/v1/detect" in spec["paths"] and "post" in spec["paths"]["/v1/detect"]
    page = httpx.get(server.url + "/")
    assert (
        page.status_code == 200
        and "/static/app.js" in page.text
        and "http" not in page.text.split("<body>")[1].split("/static")[0]
    )
    assert httpx.get(server.url + "/static/app.js").headers["content-type"].startswith("text/javascript")
    r = httpx.get(server.url + "/static/..%2Fapp.py")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # the multipart body is described, so /docs can upload; /docs loads nothing from outside
    body = spec["paths"]["/v1/detect"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["files"]["items"]["format"] == "binary"
    params = {p["name"] for p in spec["paths"]["/v1/detect"]["post"]["parameters"]}
    assert {"threshold", "fpr", "heatmap"} <= params
    import re

    for page_url in ("/docs", "/redoc"):
        html = httpx.get(server.url + page_url).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
        for u in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert httpx.get(server.url + u).status_code == 200, u
    assert httpx.get(server.url + "/favicon.ico").headers["content-type"].startswith("image/svg")
    assert 'rel="icon"' in page.text


def test_detect_many_images_in_order(server, images):
    files = [("files", (n, b, "image/png")) for n, b in images.items()]
    r = httpx.post(server.url + "/v1/detect", files=files, timeout=60)
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["path"] for x in res] == list(images)
    assert all(x["verdict"] in ("real", "fake", "unsure") and 0 <= x["p_fake"] <= 1 for x in res)
    assert res[0]["sha256"] == hashlib.sha256(images["coffee.png"]).hexdigest()


def bomb_png() -> bytes:
    """A small PNG whose header claims 50,000 x 50,000 pixels (CRC fixed up): a decompression bomb."""
    data = bytearray(png_bytes(Image.new("L", (8, 8))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = (50_000).to_bytes(4, "big") * 2
    data[ihdr + 17 : ihdr + 21] = zlib.crc32(bytes(data[ihdr : ihdr + 17])).to_bytes(4, "big")
    return bytes(data)


@pytest.mark.parametrize(
    "case",
    [
        "empty body",
        "truncated image",
        "decompression bomb",
        "wrong type",
        "not multipart",
        "oversized upload",
        "1000 files",
        "no files field",
    ],
)
def test_bad_inputs_get_4xx_json_and_the_server_goes_on(server, images, case):
    url = server.url + "/v1/detect"
    png = images["coffee.png"]
    if case == "empty body":
        r = httpx.post(url, content=b"", headers={"content-type": "multipart/form-data; boundary=x"})
        expect = (400, "no_files")
    elif case == "truncated image":
        r = httpx.post(url, files=[("files", ("cut.png", png[: len(png) // 3], "image/png"))])
        expect = (422, "invalid_image")
    elif case == "decompression bomb":
        r = httpx.post(url, files=[("files", ("bomb.png", bomb_png(), "image/png"))])
        expect = (422, "invalid_image")
    elif case == "wrong type":
        r = httpx.post(url, files=[("files", ("notes.jpg", b"hello, I am text" * 10, "image/jpeg"))])
        expect = (422, "invalid_image")
    elif case == "not multipart":
        r = httpx.post(url, content=png, headers={"content-type": "image/png"})
        expect = (415, "unsupported_media_type")
    elif case == "oversized upload":
        r = httpx.post(url, files=[("files", ("big.png", os.urandom(5 * 1024 * 1024), "image/png"))])
        expect = (413, "payload_too_large")
    elif case == "1000 files":
        r = httpx.post(url, files=[("files", (f"f{i}.png", b"x", "image/png")) for i in range(1000)])
        expect = (413, "too_many_files")
    else:
        r = httpx.post(url, files=[("other", ("a.png", png, "image/png"))])
        expect = (400, "no_files")
    assert (r.status_code, r.json()["error"]["code"]) == expect, r.text
    assert r.json()["error"]["message"]
    if case in ("truncated image", "decompression bomb", "wrong type"):
        name = {"truncated image": "cut.png", "decompression bomb": "bomb.png", "wrong type": "notes.jpg"}[case]
        assert r.json()["error"]["message"].startswith(name)
        assert {
            "truncated image": "truncated",
            "decompression bomb": "decompression bomb",
            "wrong type": "not an image",
        }[case] in r.json()["error"]["message"]
    good_request_works(server, images)


def test_one_bad_file_does_not_lose_the_others(server, images):
    files = [
        ("files", ("a.png", images["coffee.png"], "image/png")),
        ("files", ("bad.png", b"\x89PNG\r\n", "image/png")),
        ("files", ("c.png", images["chelsea.png"], "image/png")),
    ]
    r = httpx.post(server.url + "/v1/detect", files=files, timeout=60)
    assert r.status_code == 200
    v = [x["verdict"] for x in r.json()["results"]]
    assert v[1] == "error" and v[0] != "error" and v[2] != "error"
    bad = r.json()["results"][1]
    assert bad["error_code"] == "invalid_image"
    # the same record as everywhere: its sha256, the threshold and the detector that answered
    from aigi.records import RECORD_FIELDS

    assert (
        tuple(bad)[: len(RECORD_FIELDS)] == RECORD_FIELDS
        and bad["sha256"] == hashlib.sha256(b"\x89PNG\r\n").hexdigest()
    )
    assert bad["threshold"] == r.json()["results"][0]["threshold"] and bad["detector_version"].startswith("univfd@")


def test_uploads_are_never_written_to_disk(server, server_tmp, images):
    """A 3 MB upload is larger than the multipart parser's default 1 MB spool; nothing lands in TMPDIR."""
    big = Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000))
    body = png_bytes(big)
    assert len(body) > 1024 * 1024
    before = set(os.listdir(server_tmp))
    stop = threading.Event()
    seen: set[str] = set()

    def watch():
        while not stop.is_set():
            seen.update(os.listdir(server_tmp))
            time.sleep(0.005)

    t = threading.Thread(target=watch)
    t.start()
    try:
        r = httpx.post(server.url + "/v1/detect", files=[("files", ("big.png", body, "image/png"))], timeout=60)
    finally:
        stop.set()
        t.join()
    assert r.status_code == 200 and r.json()["results"][0]["verdict"] != "error"
    assert seen <= before and set(os.listdir(server_tmp)) == before


def test_metrics_count_requests_and_batches(server, images):
    text = httpx.get(server.url + "/metrics").text
    assert 'aigi_requests_total{route="/v1/detect",status="200"}' in text
    assert "aigi_batch_size_bucket" in text and "aigi_queue_depth" in text


def test_cors_is_off_by_default(server):
    r = httpx.get(server.url + "/v1/detectors", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.slow
def test_api_keys_hashed_busy_queue_and_micro_batching(images):
    key = "s3cret-key"
    s = Server(
        "--body-timeout",
        2,
        "--threshold",
        0.8,
        "--api-key-hash",
        hashlib.sha256(key.encode()).hexdigest(),
        "--max-queue",
        4,
        "--batch-window-ms",
        300,
        "--max-batch",
        8,
    )
    try:
        one = [("files", ("coffee.png", images["coffee.png"], "image/png"))]
        r = httpx.post(s.url + "/v1/detect", files=one)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = httpx.post(s.url + "/v1/detect", files=one, headers={"X-API-Key": "wrong"})
        assert r.status_code == 401
        ok = {"X-API-Key": key}
        # a client that stops sending its body is answered 408 after --body-timeout, and the server goes on
        with socket.create_connection(("127.0.0.1", s.port)) as c:
            c.sendall(
                f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n".encode()
                + b"Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 5000\r\n\r\n--zz\r\n"
            )
            c.settimeout(30)
            t0 = time.time()
            head = c.recv(200).decode()
            assert head.startswith("HTTP/1.1 408") and 1.5 < time.time() - t0 < 20, head
        r = httpx.post(s.url + "/v1/detect", files=one, headers=ok, timeout=60)
        assert r.status_code == 200 and r.json()["results"][0]["threshold"] == 0.8  # the server's operating point
        # more images than the queue holds: refused at once with Retry-After
        five = [("files", (f"{i}.png", images["coffee.png"], "image/png")) for i in range(5)]
        r = httpx.post(s.url + "/v1/detect", files=five, headers=ok)
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy" and r.headers["retry-after"] == "1"
        # concurrent single-image requests share model batches
        codes = []

        def call():
            codes.append(httpx.post(s.url + "/v1/detect", files=one, headers=ok, timeout=120).status_code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert codes == [200] * 4
        metrics = httpx.get(s.url + "/metrics").text
        count = float(
            next(line.split()[-1] for line in metrics.splitlines() if line.startswith("aigi_batch_size_count"))
        )
        total = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("aigi_batch_size_sum")))
        assert total == 5 and count < 5  # 1 earlier + 4 concurrent images, in fewer batches
    finally:
        s.stop()


def test_the_page_in_headless_chromium(server, sample_dir, tmp_path):
    """Upload an image through the page's file input and read the verdict the page shows."""
    chromium, driver = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver")
    if not (Path(chromium).exists() and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/install.sh test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1100,900",
    ):
        opts.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        browser.get(server.url + "/")
        WebDriverWait(browser, 30).until(lambda b: "detector univfd" in b.find_element(By.ID, "serving").text)
        browser.find_element(By.ID, "files").send_keys(str(sample_dir / "real" / "chelsea.png"))
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".card .verdict"))
        assert "based on" in browser.find_element(By.CSS_SELECTOR, ".card").text  # the threshold, the band
        verdict = browser.find_element(By.CSS_SELECTOR, ".card .verdict").get_attribute("data-verdict")
        assert verdict in ("real", "fake", "unsure")
        api = httpx.post(
            server.url + "/v1/detect",
            timeout=60,
            files=[("files", ("chelsea.png", (sample_dir / "real" / "chelsea.png").read_bytes(), "image/png"))],
        )
        assert verdict == api.json()["results"][0]["verdict"]
        assert "chelsea.png" in browser.find_element(By.CSS_SELECTOR, ".card").text
        # several at once: shown in upload order; an error card keeps its labels whole; a format the
        # browser cannot show gets a placeholder, not a broken image
        upload = tmp_path / "upload"
        upload.mkdir()
        (upload / "b-broken.png").write_bytes(b"\x89PNG\r\n not really, and a long explanation follows" * 3)
        Image.open(sample_dir / "real" / "coffee.png").save(upload / "c-coffee.tif")
        names = [str(sample_dir / "real" / "astronaut.png"), str(upload / "b-broken.png"), str(upload / "c-coffee.tif")]
        browser.find_element(By.ID, "files").send_keys("\n".join(names))
        WebDriverWait(browser, 60).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".card")) == 4)
        cards = browser.find_elements(By.CSS_SELECTOR, ".card")
        assert [c.get_attribute("data-file") for c in cards] == [
            "astronaut.png",
            "b-broken.png",
            "c-coffee.tif",
            "chelsea.png",
        ]
        labels = cards[1].find_elements(By.CSS_SELECTOR, "th")
        lines = (
            "const r = document.createRange(); r.selectNodeContents(arguments[0]); return r.getClientRects().length;"
        )
        assert [x.text for x in labels][:2] == ["file", "error"]
        assert all(browser.execute_script(lines, x) == 1 for x in labels)  # each label on one line
        # the default draws its evidence map, so even a TIFF is shown (as its overlay); a file the browser
        # cannot show and the server did not draw (the broken one) gets the placeholder
        assert cards[2].find_element(By.CSS_SELECTOR, "img").get_attribute("alt") == "heatmap overlay of c-coffee.tif"
        WebDriverWait(browser, 10).until(lambda b: cards[1].find_elements(By.CSS_SELECTOR, ".placeholder"))
        assert "no preview" in cards[1].find_element(By.CSS_SELECTOR, ".placeholder").text
        # a file with content credentials: the card says what they declare, and who signed them
        from test_provenance import picture, signed

        (upload / "d-signed.jpg").write_bytes(signed(picture("JPEG"), "image/jpeg"))
        browser.find_element(By.ID, "files").send_keys(str(upload / "d-signed.jpg"))
        WebDriverWait(browser, 60).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".card")) == 5)
        text = browser.find_elements(By.CSS_SELECTOR, ".card")[0].text
        assert "content credentials / metadata say" in text and "aigi test signer" in text
        assert "decided by" in text and "provenance: Test Image Generator" in text
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "serve-page.png"))
        assert (ARTIFACTS / "serve-page.png").stat().st_size > 1000
    finally:
        browser.quit()


def test_heatmap_overlay_for_a_detector_with_a_mask_head(sample_dir):
    """GAMMA's per-patch mask comes back as a PNG overlay of the uploaded image (untrained head: the path,
    not the accuracy, is under test)."""
    import base64

    from fastapi.testclient import TestClient

    from aigi.detectors.gamma import Gamma, GammaConfig
    from aigi.serve.app import create_app

    det = Gamma(GammaConfig(hidden=16, queries=1, heads=1)).eval()
    data = (sample_dir / "real" / "astronaut.png").read_bytes()
    with TestClient(create_app(det)) as client:
        plain = client.post("/v1/detect", files=[("files", ("a.png", data, "image/png"))]).json()["results"][0]
        r = client.post("/v1/detect?heatmap=true", files=[("files", ("a.png", data, "image/png"))]).json()["results"][0]
    assert "heatmap_png" not in plain and len(plain["mask"]) == 16
    png = base64.b64decode(r["heatmap_png"].split(",", 1)[1])
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and max(img.size) == 512 and img.size[0] == img.size[1]  # astronaut is square


def test_the_default_sends_its_evidence_map_and_a_detector_without_one_refuses(server, images, tmp_path):
    import base64

    from fastapi.testclient import TestClient

    from aigi.backbones.tiny import build_tiny_clip
    from aigi.detectors.univfd import UnivFD, UnivFDConfig
    from aigi.serve.app import create_app

    name, data = next(iter(images.items()))
    files = [("files", (name, data, "image/png"))]
    info = httpx.get(server.url + "/v1/detectors", timeout=60).json()["serving"]
    assert info["has_map"] is True and info["has_mask"] is False
    plain = httpx.post(server.url + "/v1/detect", files=files, timeout=60).json()["results"][0]
    r = httpx.post(server.url + "/v1/detect?heatmap=true", files=files, timeout=60).json()["results"][0]
    assert "heatmap_png" not in plain and r["p_fake"] == pytest.approx(plain["p_fake"])
    png = Image.open(io.BytesIO(base64.b64decode(r["heatmap_png"].split(",", 1)[1])))
    src = Image.open(io.BytesIO(data))
    assert png.format == "PNG" and png.height / png.width > src.height / src.width  # the legend strip under it
    # native-scale crops average several views: no exact map, so no heatmap
    clip = build_tiny_clip(tmp_path / "clip", image_size=32)
    det = UnivFD(UnivFDConfig(backbone=str(clip), feature_dim=64, crops=1)).eval()
    with TestClient(create_app(det)) as client:
        bad = client.post("/v1/detect?heatmap=true", files=files)
    assert bad.status_code == 400 and "has neither" in bad.json()["error"]["message"]


def test_operating_point_per_request(server, images):
    from aigi import load_detector
    from aigi.records import decide

    det = load_detector()
    files = [("files", (n, b, "image/png")) for n, b in images.items()]
    default = httpx.post(server.url + "/v1/detect", files=files, timeout=60).json()["results"]
    assert {x["threshold"] for x in default} == {det.calibration.threshold}
    for query, thr in (("threshold=0.9", 0.9), ("fpr=0.05", det.calibration.threshold_for(fpr=0.05))):
        res = httpx.post(server.url + f"/v1/detect?{query}", files=files, timeout=60).json()["results"]
        for x, d in zip(res, default):
            assert x["threshold"] == pytest.approx(thr) and x["p_fake"] == pytest.approx(d["p_fake"])
            assert x["verdict"] == decide(x["p_fake"], thr, det.calibration.unsure_band)[0]
    r = httpx.post(server.url + "/v1/detect?threshold=0.5&fpr=0.1", files=files, timeout=60)
    assert r.status_code == 400 and "not both" in r.json()["error"]["message"]
    # options the service does not take, and values out of range: one 400 line naming the option
    for query, words in (
        ("unsure_band=0", "unknown query option 'unsure_band'; /v1/detect takes fpr, heatmap, threshold"),
        ("threshold=2", "invalid query: threshold=2: input should be less than or equal to 1"),
        ("threshold=abc", "invalid query: threshold=abc: input should be a valid number"),
    ):
        r = httpx.post(server.url + f"/v1/detect?{query}", files=files, timeout=60)
        body = r.json()
        assert r.status_code == 400 and body["error"]["code"] == "bad_request", body
        assert words in body["error"]["message"] and "\n" not in body["error"]["message"], body


def test_a_client_that_disconnects_is_no_server_error_and_every_request_is_logged(server, images):
    with socket.create_connection(("127.0.0.1", server.port)) as c:
        c.sendall(
            b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
            b"Content-Length: 100000\r\n\r\n--zz\r\nContent-Disposition: form-data; name=files; filename=a.png\r\n\r\n"
        )
        time.sleep(0.5)  # then hang up halfway through the body
    time.sleep(1.0)
    good_request_works(server, images)
    metrics = httpx.get(server.url + "/metrics").text
    assert 'route="/v1/detect",status="500"' not in metrics and 'route="/v1/detect",status="499"' in metrics
    log = server.log.read_text()
    assert "serving univfd" in log and "POST /v1/detect 200 images=1" in log and "POST /v1/detect 499" in log


def test_serving_is_said_after_the_port_is_bound_and_open_hosts_without_keys_are_warned(server):
    from conftest import run_cli

    from aigi.cli.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.7")
    # the port is taken (by the test server): no "serving on" line, a failure, and the warning first
    r = run_cli("serve", "--host", "0.0.0.0", "--port", server.port, timeout=120)
    assert r.returncode != 0 and "serving univfd" not in r.stderr
    assert "warning: serving on 0.0.0.0" in r.stderr and "no API key" in r.stderr
    assert "address already in use" in r.stderr.lower()


def test_the_service_reports_content_credentials(server):
    from test_provenance import picture, signed

    data = signed(picture("JPEG"), "image/jpeg")
    r = httpx.post(server.url + "/v1/detect", files=[("files", ("signed.jpg", data, "image/jpeg"))], timeout=60)
    rec = r.json()["results"][0]
    assert rec["verdict"] == "fake" and rec["reason"].startswith("provenance: Test Image Generator")
    assert rec["provenance"][0]["kind"] == "c2pa" and rec["provenance"][0]["verified"]
    assert "signed by aigi test signer" in rec["provenance"][0]["detail"] and rec["detector_verdict"]


def test_the_service_never_decides_on_a_caption(server):
    from test_provenance import CAPTIONS, assert_pixels_decide, captioned, picture

    files = [
        ("files", (f"caption-{i}.jpg", captioned(c, "exif-description"), "image/jpeg")) for i, c in enumerate(CAPTIONS)
    ]
    files.append(("files", ("bare.jpg", picture("JPEG"), "image/jpeg")))
    r = httpx.post(server.url + "/v1/detect", files=files, timeout=120)
    assert r.status_code == 200
    assert_pixels_decide(r.json()["results"])
