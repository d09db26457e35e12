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
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)
