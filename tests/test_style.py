"""The code stays readable: pycodestyle errors and warnings, pyflakes, 120 columns (ruff.toml)."""

import shutil
import subprocess

import pytest

from conftest import ROOT


def test_the_code_passes_ruff():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it is in requirements-dev.txt)")
    checked = subprocess.run([ruff, "check", "--output-format", "concise", "."], cwd=ROOT, capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout
