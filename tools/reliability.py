"""Reliability numbers for BENCHMARKS.md: the hostile corpus, memory, concurrent users, first upload.

    python tools/reliability.py [--model models/hemo-hybrid.keras]

Builds the tests' hostile corpus (tests/corpus.py), reads and checks every file with tracemalloc
(NumPy's allocations are traced), analyses the largest file hemo accepts in a fresh process for
its peak resident memory, runs N threads on a freshly loaded Analyzer, and times the first
analysis after a warmed start against the next ones.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def corpus_table(analyzer) -> dict:
    import corpus
    from hemo import sanity
    from hemo.errors import HemoInputError
    from hemo.imaging import read_slices

    counts = {"tried": 0, "refused": 0, "warned": 0, "scored": 0, "tracebacks": 0}
    worst = ("", 0)
    for name, data, _ in corpus.hostile() + [(n, d, "ok") for n, d in corpus.good()]:
        counts["tried"] += 1
        tracemalloc.start()
        try:
            slices = read_slices(data, name, model_window=analyzer.model_window)
            notes = [w for s in slices for w in (*s.warnings, *sanity.check(s))]
            counts["warned" if notes else "scored"] += 1
        except HemoInputError:
            counts["refused"] += 1
        except Exception:  # noqa: BLE001 - counted: this is what the table is for
            counts["tracebacks"] += 1
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if peak > worst[1]:
            worst = (name, peak)
    results = analyzer.analyse_files([(n, d) for n, d, _ in corpus.hostile()])  # the whole path, model included
    counts["library_exceptions"] = 0 if all(r.error or r.analysed for r in results) else 1
    counts["worst_read"] = f"{worst[0]}: {worst[1] / 2**20:.0f} MiB"
    return counts


LARGEST = """
import resource, sys
sys.path[:0] = [{root!r}, {tests!r}]
import numpy as np
from conftest import dicom_bytes, head_phantom
from hemo.analysis import Analyzer
from hemo.dicom import MAX_FILE_PIXELS
frames = MAX_FILE_PIXELS // (512 * 512)
data = dicom_bytes(np.repeat((head_phantom(512) + 1024).astype(np.int16)[None], frames, 0))
analyzer = Analyzer.load({model!r}, warm=True)
analyzer.analyse(dicom_bytes((head_phantom(512) + 1024).astype(np.int16)), "one.dcm")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = analyzer.analyse(data, "largest.dcm")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert all(r.analysed for r in results), results[0].error
print(frames, len(data) // 2**20, before // 1024, after // 1024)
"""


def largest_file(model: str) -> str:
    code = LARGEST.format(root=str(ROOT), tests=str(ROOT / "tests"), model=model)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    frames, size, before, after = map(int, out[-4:])
    return (f"{frames} frames of 512x512 ({size} MiB): peak RSS {after} MiB, "
            f"+{after - before} MiB over the warmed model ({before} MiB)")


def concurrent(model: str, users: int) -> str:
    import corpus
    from conftest import dicom_bytes
    from hemo.analysis import Analyzer

    analyzer = Analyzer.load(model)  # fresh, not warmed: the case that used to break
    files = [dicom_bytes(corpus.stored_head(128, (40 + 5 * i, 70))) for i in range(users)]
    failures: list[str] = []

    def work(data: bytes) -> None:
        try:
            [result] = analyzer.analyse(data, "x.dcm")
            if not result.analysed:
                failures.append(result.error or "not analysed")
        except Exception as error:  # noqa: BLE001
            failures.append(repr(error))

    threads = [threading.Thread(target=work, args=(d,)) for d in files]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.time() - started
    return f"{users} threads on a fresh Analyzer: {users - len(failures)} of {users} analysed in {seconds:.1f} s"


def first_upload(model: str) -> str:
    from conftest import dicom_bytes, head_phantom
    from hemo.analysis import Analyzer

    started = time.time()
    analyzer = Analyzer.load(model, warm=True)
    loaded = time.time() - started
    data = dicom_bytes((head_phantom(512) + 1024).astype(sys.modules["numpy"].int16))
    times = []
    for _ in range(4):
        started = time.time()
        analyzer.analyse(data, "a.dcm")
        times.append(time.time() - started)
    return (f"load + warm-up {loaded:.1f} s (at app start); first analysis {times[0]:.2f} s, "
            f"next ones {min(times[1:]):.2f}-{max(times[1:]):.2f} s")


def main() -> None:
    import numpy  # noqa: F401 - used through sys.modules above

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models" / "hemo-hybrid.keras"))
    parser.add_argument("--users", type=int, default=8)
    args = parser.parse_args()
    from hemo.analysis import Analyzer

    print(corpus_table(Analyzer.load(args.model)))
    print(largest_file(args.model))
    print(concurrent(args.model, args.users))
    print(first_upload(args.model))
    print(f"this process's peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()
