import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test run gets its own feature cache, so tests never read a user's cache."""
    d = tmp_path_factory.mktemp("aigi-cache")
    old = os.environ.get("AIGI_CACHE_DIR")
    os.environ["AIGI_CACHE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("AIGI_CACHE_DIR", None)
    else:
        os.environ["AIGI_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    """Real photos from scikit-image/scikit-learn + DCGAN faces, as PNG, with manifest.csv."""
    from aigi.samples import build_sample

    d = tmp_path_factory.mktemp("sample")
    build_sample(d, n_fake=8, seed=0)
    return d


def run_cli(*args, cwd=None, env_extra=None, timeout=600):
    """Run the installed ``aigi`` command as a user would; returns CompletedProcess."""
    env = dict(os.environ)
    env.update(env_extra or {})
    exe = Path(sys.executable).with_name("aigi")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "aigi.cli"]
    return subprocess.run(
        cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def write_manifest(path, rows):
    """Write manifest rows (dicts with the same keys) as CSV."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def two_generator_manifest(sample_dir, path):
    """The sample with its DCGAN faces split into two 'generators', so generator protocols have one to hold out."""
    import csv

    rows = list(csv.DictReader(open(sample_dir / "manifest.csv")))
    for i, row in enumerate(r for r in rows if r["label"] == "fake"):
        row["generator"] = "dcgan-a" if i % 2 else "dcgan-b"
    return write_manifest(path, rows)
