"""The service's parts, each without a server: request checks, errors, metrics, the batch scorer and the
answer of one request."""

import asyncio

import pytest

from aigi.serve.errors import APIError, http_error_code, validation_message
from aigi.serve.limits import Decoder, check_body_headers, check_key, check_query
from aigi.serve.metrics import Metrics
from aigi.serve.settings import ServeSettings, hash_api_key


def code_of(fn, *args):
    with pytest.raises(APIError) as e:
        fn(*args)
    return e.value.code, e.value.status


def test_body_headers_are_checked_before_a_byte_is_read():
    s = ServeSettings(max_request_bytes=1000)
    multipart = "multipart/form-data; boundary=x"
    assert code_of(check_body_headers, s, {"content-type": "image/png"}) == ("unsupported_media_type", 415)
    assert code_of(check_body_headers, s, {"content-type": multipart}) == ("length_required", 411)
    assert (
        code_of(check_body_headers, s, {"content-type": multipart, "content-length": "1001"})[0] == "payload_too_large"
    )
    assert code_of(check_body_headers, s, {"content-type": multipart, "content-length": "-5"})[0] == "payload_too_large"
    assert code_of(check_body_headers, s, {"content-type": multipart, "content-length": "0"}) == ("no_files", 400)
    check_body_headers(s, {"content-type": multipart, "content-length": "1000"})  # at the limit: accepted


def test_keys_queries_and_framework_errors():
    s = ServeSettings(api_key_hashes=(hash_api_key("secret"),))
    check_key(s, {"x-api-key": "secret"})
    assert code_of(check_key, s, {"x-api-key": "guess"}) == ("unauthorized", 401)
    assert code_of(check_key, s, {}) == ("unauthorized", 401)
    check_key(ServeSettings(), {})  # no keys configured: open
    check_query({"threshold": "0.9", "heatmap": "true"})
    with pytest.raises(APIError, match="unknown query option 'thresh'"):
        check_query({"thresh": "0.9"})
    assert [http_error_code(c) for c in (404, 405, 413, 418)] == [
        "not_found", "method_not_allowed", "payload_too_large", "bad_request"
    ]  # fmt: skip
    msg = validation_message([{"loc": ("query", "threshold"), "input": "2", "msg": "Input should be <= 1"}])
    assert msg == "invalid query: threshold=2: input should be <= 1"


def test_metrics_count_requests_by_route_and_batches():
    m = Metrics()
    m.on_request("/v1/detect", 200, 0.25)
    m.on_request("/secret/path", 404, 0.01)  # an unknown path is "other", never a new label per path
    m.on_batch(4, 0.5)
    text = m.render(queue_depth=3).body.decode()
    assert 'aigi_requests_total{route="/v1/detect",status="200"} 1.0' in text
    assert 'aigi_requests_total{route="other",status="404"} 1.0' in text and "/secret/path" not in text
    assert "aigi_queue_depth 3.0" in text and "aigi_batch_size_count 1.0" in text


def test_a_request_gets_its_records_in_upload_order_with_failed_files_named(sample_dir):
    from aigi import load_detector
    from aigi.io import ImageDecodeError
    from aigi.serve.answers import batch_scorer, request_records

    det = load_detector()
    png = sorted((sample_dir / "real").glob("*.png"))[0].read_bytes()
    dec = Decoder(ServeSettings())
    decoded = [asyncio.run(dec.decode(png, "a.png")), asyncio.run(dec.decode(b"not an image", "b.png"))]
    dec.close()
    assert isinstance(decoded[1], ImageDecodeError)
    score = batch_scorer(det, max_batch=4, heatmap_max_side=64)
    # one image asked by two requests at two thresholds, one with a heatmap: each decided at its own
    low, high = score([(decoded[0], "a.png", True, 0.01), (decoded[0], "a.png", False, 0.999)])
    assert low["threshold"] == 0.01 and high["threshold"] == 0.999 and low["p_fake"] == pytest.approx(high["p_fake"])
    assert low["heatmap_png"].startswith("data:image/png;base64,") and "heatmap_png" not in high
    recs = request_records(det, decoded, ["a.png", "b.png"], ["sha-a", "sha-b"], [low], 0.01)
    assert [r["path"] for r in recs] == ["a.png", "b.png"] and recs[0] is low
    assert recs[1]["verdict"] == "error" and recs[1]["error_code"] == "invalid_image" and recs[1]["sha256"] == "sha-b"
