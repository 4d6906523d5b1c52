"""Which files a command analyses: everything under the given folders, DICOM without an extension too."""

from __future__ import annotations

from pathlib import Path

from hemo.datasets import is_annotation


def find_files(paths: list[str]) -> list[Path]:
    """Every file under the given folders (sorted), and the given files; hidden files and bleed masks skipped."""
    files = []
    for path in map(Path, paths):
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [f for f in found if not f.name.startswith(".") and not is_annotation(f)]
    return files
