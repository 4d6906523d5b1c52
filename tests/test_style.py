"""The code stays readable: pycodestyle errors and warnings, pyflakes, 120 columns (ruff.toml)."""

import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT


def test_the_code_passes_ruff():
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (it is in requirements-dev.txt)")
    checked = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=ROOT,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
