"""Which files a command analyses: everything under the given folders, DICOM without an extension too, and
the files inside a zipped study."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from hemo.archive import Entry, expand
from hemo.datasets import ignored, is_annotation
from hemo.errors import HemoInputError

if TYPE_CHECKING:
    from hemo.analysis import Analyzer, SliceResult

#: What a CT-ICH bleed mask given as a slice is told.
MASK_NOT_SLICE = ("a bleed annotation (CT-ICH's <n>_HGE_Seg.jpg, the radiologists' outline of a bleed), not a CT "
                  "slice: give the slice beside it, <n>.jpg.")

#: How many files (or a zip's members) ``results_of`` analyses together.
AT_ONCE = 16


def find_files(paths: list[str]) -> list[Path]:
    """Every file under the given folders (sorted), and the given files. In folders, hidden files, bleed masks,
    DICOMDIR, macOS forks and documents are skipped; a file named on its own is always kept, so that what it is
    is said (:func:`entries`) rather than it leaving the results unseen. A path that is not there is a mistyped
    argument, not a bad file: FileNotFoundError, before anything is read."""
    files = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not ignored(p.relative_to(path))
                            and not is_annotation(p))
        else:
            files.append(path)
    return files


def entries(path: Path) -> list[Entry]:
    """(name, folder, bytes) of the file, or of each file in it when it is a zipped study (bleed masks skipped,
    as :func:`find_files` skips them). Raises :class:`HemoInputError` for a file or zip that cannot be read, and
    for a bleed mask named on its own."""
    if is_annotation(path):
        raise HemoInputError(f"{path.name}: {MASK_NOT_SLICE}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise HemoInputError(f"{path.name}: cannot be opened ({error.strerror}).") from None
    return [e for e in expand(path.name, data, str(path.parent)) if not is_annotation(PurePosixPath(e[0]))]


def results_of(paths: Iterable[Path], analyzer: Analyzer, window_name: str | None = None, method: str = "gradcam",
               at_once: int = AT_ONCE) -> Iterator[tuple[int, Path, int | None, SliceResult]]:
    """(file number, path, member number, result) of each slice of each file in order: the file's 1-based place
    in ``paths`` (a path given twice is two files), the member's number in a zipped study or None for the file
    itself. A file or zip that cannot be read is one error result, so one bad file never stops a folder or an
    archive; ``predict`` and ``hemo batch`` both read their files through this.

    ``at_once`` files (or a zip's members) are analysed together, their slices explained in common batches
    (``Analyzer.analyse_each``): about half the time a slice of file by file, and never more than ``at_once``
    files' results held before they are handed on.
    """
    from hemo.analysis import SliceResult

    pending: list[tuple[int, Path, int | None, SliceResult | tuple[str, bytes, str]]] = []

    def analysed() -> Iterator[tuple[int, Path, int | None, SliceResult]]:
        each = iter(analyzer.analyse_each([item for *_, item in pending if isinstance(item, tuple)],
                                          window_name, method))
        for number, path, member, item in pending:
            for result in next(each) if isinstance(item, tuple) else [item]:
                yield number, path, member, result
        pending.clear()

    for number, path in enumerate(paths, 1):
        try:
            found = entries(path)
        except HemoInputError as error:
            pending.append((number, path, None, SliceResult(path.name, error=str(error))))
            found = []
        for member, (name, folder, data) in enumerate(found, 1):
            pending.append((number, path, None if name == path.name else member, (name, data, folder)))
            if len(pending) >= at_once:
                yield from analysed()
    yield from analysed()
