"""hemo as a user installs it: a wheel with the library, the ``hemo`` command, the app and the shipped model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from unittest import mock

import cv2
import numpy as np
import pytest

from conftest import ROOT, head_phantom
from hemo.cli import main
from hemo.options import version


@pytest.mark.skipif(not (ROOT / "models" / "hemo-hybrid.keras").exists(), reason="no shipped model")
def test_the_installed_hemo_command_reads_a_slice_with_the_shipped_model_and_its_numbers(tmp_path):
    pytest.importorskip("setuptools")  # the build backend, used in place (no download) ...
    pytest.importorskip("wheel")  # ... and what setuptools before 70.1 builds wheels with
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    for folder in ("hemo", "models"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / part, source / part)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(source)],
                   check=True, capture_output=True)
    [wheel] = (tmp_path / "wheel").glob("hemo-*.whl")
    target = tmp_path / "installed"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True,
                   capture_output=True)
    for part in ("models/hemo-hybrid.keras", "models/evaluation.json", "app/main.py", "app/analyse.py"):
        assert (target / "hemo" / part).is_file()

    elsewhere = tmp_path / "elsewhere"  # nowhere near a checkout: only the installed copy can be imported
    elsewhere.mkdir()
    cv2.imwrite(str(elsewhere / "slice.png"), np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("HEMO_MODEL", None)
    done = subprocess.run([sys.executable, str(target / "bin" / "hemo"), "predict", "slice.png"], cwd=elsewhere,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("study,series,slice,file,")  # the table
    assert "study 1: 1 slice, highest slice: " in done.stderr
    assert "How far to trust a slice's verdict: on 1,993 slices" in done.stderr  # the evaluation shipped beside it
    said = subprocess.run([sys.executable, str(target / "bin" / "hemo"), "--version"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300).stdout
    release = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert said == f"hemo {release}; model {version(ROOT / 'models' / 'hemo-hybrid.keras')}\n"  # for a bug report


def test_hemo_app_starts_streamlit_on_the_packaged_entry_point_with_the_model_asked_for(tmp_path):
    with mock.patch("subprocess.call", return_value=0) as call:
        assert main(["app", "--model", str(tmp_path / "m.keras"), "--", "--server.port", "8502"]) == 0
    command, env = call.call_args.args[0], call.call_args.kwargs["env"]
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(ROOT / "hemo" / "app" / "main.py")
    assert command[5:] == ["--server.port", "8502"] and env["HEMO_MODEL"] == str(tmp_path / "m.keras")
