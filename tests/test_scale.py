"""`aigi score` on Ray Data (local): one row per input, bad files included with their error; a run
killed midway and rerun finishes without redoing the shards already written."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli


def corpus(sample_dir, tmp_path) -> Path:
    d = tmp_path / "corpus"
    shutil.copytree(sample_dir / "real", d / "real")
    shutil.copytree(sample_dir / "fake", d / "fake")
    (d / "real" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (d / "real" / "empty.png").write_bytes(b"")
    return d


@pytest.mark.slow
def test_scores_a_folder_one_row_per_input_with_errors(sample_dir, tmp_path):
    from aigi.scale import list_inputs, read_results

    d = corpus(sample_dir, tmp_path)
    out = tmp_path / "scores"
    r = run_cli("score", "--data", d, "--out", out, "--shard-size", 6, "--workers", 2)
    assert r.returncode == 0, r.stderr
    inputs = list_inputs(str(d))
    table = read_results(out)
    rows = table.to_pylist()
    assert [x["path"] for x in rows] == inputs and len(rows) == 18
    bad = {Path(x["path"]).name: x for x in rows if x["verdict"] == "error"}
    assert set(bad) == {"broken.jpg", "empty.png"} and all(x["error"] and x["p_fake"] is None for x in bad.values())
    good = [x for x in rows if x["verdict"] != "error"]
    assert all(0 <= x["p_fake"] <= 1 and len(x["sha256"]) == 64 for x in good)
    # the same record as `aigi detect`
    det = run_cli("detect", d / "real" / "coffee.png", "--format", "json")
    import json

    want = json.loads(det.stdout)[0]
    got = next(x for x in rows if x["path"].endswith("coffee.png"))
    assert abs(got["p_fake"] - want["p_fake"]) < 1e-5 and got["verdict"] == want["verdict"]  # batch rounding apart
    extra = json.loads(got["extra"])  # what the file declares travels with the row, as in detect's record
    assert extra["provenance"] == want["provenance"] == [] and extra["detector_verdict"] == want["detector_verdict"]
    assert (got["width"], got["height"], got["format"], got["frames"]) == (want["width"], want["height"], "PNG", 1)
    # a Parquet list of paths is a source too
    src = tmp_path / "list.parquet"
    pq.write_table(pa.table({"path": inputs[:5]}), src)
    r = run_cli("score", "--data", src, "--out", tmp_path / "from-parquet", "--shard-size", 5)
    assert r.returncode == 0, r.stderr
    assert read_results(tmp_path / "from-parquet").num_rows == 5


def start_until_a_shard_is_written(d: Path, out: Path) -> subprocess.Popen:
    """`aigi score` in shards of 2 with 1 worker, as its own session; returns once a shard is on disk."""
    exe = Path(sys.executable).with_name("aigi")
    cmd = [str(exe), "score", "--data", str(d), "--out", str(out), "--shard-size", "2", "--workers", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("shard-*.parquet")):
        time.sleep(0.05)
    return p


@pytest.mark.slow
def test_an_interrupted_run_resumes_without_redoing_finished_shards(sample_dir, tmp_path):
    from aigi.scale import read_results

    d = corpus(sample_dir, tmp_path)
    out = tmp_path / "scores"
    p = start_until_a_shard_is_written(d, out)
    os.killpg(p.pid, signal.SIGKILL)  # the driver's session; a Ray worker may finish the shard it holds
    p.wait()
    time.sleep(5)
    first = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in out.glob("shard-*.parquet")}
    assert 1 <= len(first) < 9, "the run should have been stopped midway"
    r = run_cli("score", "--data", d, "--out", out, "--shard-size", 2, "--workers", 1)
    assert r.returncode == 0, r.stderr
    assert f"{len(first)} already done" in r.stdout
    after = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in out.glob("shard-*.parquet")}
    assert len(after) == 9 and all(after[n] == v for n, v in first.items())
    assert read_results(out).num_rows == 18
    r = run_cli("score", "--data", d, "--out", out, "--shard-size", 3)
    assert r.returncode == 2 and "other inputs or settings" in r.stderr


@pytest.mark.slow
def test_sigterm_ends_a_run_with_one_line_and_keeps_finished_shards(sample_dir, tmp_path):
    d = corpus(sample_dir, tmp_path)
    out = tmp_path / "scores"
    p = start_until_a_shard_is_written(d, out)
    p.send_signal(signal.SIGTERM)  # what a scheduler or `kill` sends
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "finished shards are kept" in err and "resume" in err


@pytest.mark.slow
def test_a_changed_detector_is_not_resumed_into_the_same_shards(sample_dir, tmp_path):
    """The run's fingerprint holds the detector's version: recalibrated weights under the same name or
    folder (a new default, say) refuse to add shards to a run scored by the old ones."""
    import json

    from aigi import WEIGHTS_DIR

    d = corpus(sample_dir, tmp_path)
    det = tmp_path / "det"
    shutil.copytree(WEIGHTS_DIR / "univfd", det)
    out = tmp_path / "scores"
    out.mkdir()
    from aigi.scale import list_inputs

    n_shards = -(-len(list_inputs(str(d))) // 4)
    for i in range(n_shards):  # every shard already there: the first run needs no Ray
        (out / f"shard-{i:05d}.parquet").write_bytes(b"")
    r = run_cli("score", "--data", d, "--out", out, "--shard-size", 4, "--detector", det)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "_run.json").read_text())["detector"].startswith("det@")
    cal = json.loads((det / "calibration.json").read_text())
    cal["threshold"] = 0.7  # recalibrated: another version under the same folder name
    (det / "calibration.json").write_text(json.dumps(cal))
    (out / "shard-00000.parquet").unlink()
    r = run_cli("score", "--data", d, "--out", out, "--shard-size", 4, "--detector", det)
    assert r.returncode == 2 and "other inputs or settings" in r.stderr


def test_without_ray_score_says_which_extra_in_one_line(sample_dir, tmp_path):
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")  # as if not installed
    r = run_cli("score", "--data", sample_dir, "--out", tmp_path / "o", env_extra={"PYTHONPATH": str(fake.parent)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "needs Ray Data" in r.stderr and "scripts/install.sh scale" in r.stderr


@pytest.mark.slow
def test_score_runs_from_a_folder_that_holds_a_directory_named_aigi(sample_dir, tmp_path):
    """Ray puts the driver's working directory first on its workers' sys.path: run from the parent of a clone
    (a folder holding `aigi/`), the workers must still import the installed package."""
    from aigi.scale import read_results

    d = corpus(sample_dir, tmp_path)
    parent = tmp_path / "work"
    (parent / "aigi" / "docs").mkdir(parents=True)  # a clone's folder: no __init__.py at its top
    r = run_cli("score", "--data", d / "real", "--out", tmp_path / "scores", "--shard-size", 5, cwd=parent)
    assert r.returncode == 0, r.stderr
    rows = read_results(tmp_path / "scores").to_pylist()
    assert len(rows) == 10 and sum(x["verdict"] == "error" for x in rows) == 2  # broken.jpg, empty.png


@pytest.mark.slow
def test_a_run_stopped_before_any_shard_does_not_block_the_next(sample_dir, tmp_path):
    d = corpus(sample_dir, tmp_path)
    out = tmp_path / "scores"
    exe = Path(sys.executable).with_name("aigi")
    cmd = [str(exe), "score", "--data", str(d / "real"), "--out", str(out), "--shard-size", "2"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "_run.json").exists():
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)  # Ray is still starting: no shard can be on disk yet
    p.communicate(timeout=120)
    assert not list(out.glob("shard-*.parquet"))
    r = run_cli("score", "--data", d / "fake", "--out", out, "--shard-size", 4)  # other inputs, same --out
    assert r.returncode == 0, r.stderr
