"""Does a score read the band just inside the skull? A CV run's held-out slices with that band flattened.

    python tools/band_check.py RUN CACHE.npz [--diagnosis hemorrhage_diagnosis.csv] [--depth 4]

``tools/source_probe.py`` found the decoder's alarm on the GE series in the few pixels just inside the skull.
This asks the same of the slices the run was judged on: each finished fold's held-out slices are scored as
they are and with the ``--depth`` pixels inside the skull set to the brain's median grey level
(``source_probe.flatten_inner_table``). Per score (the paper model's raw probability; the decoder's peak and
head+bleed and head+bleed-top4 where the fold kept a decoder), pooled over the folds: the slice AUC, how many
normal slices reach 0.5, and how many bleed slices do, by kind with the CT-ICH diagnosis table. A score that
loses its false alarms and its extradural bleeds together reads the band, not the blood behind it. Slices are
counted, never named.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sklearn.metrics import roc_auc_score  # noqa: E402

from hemo.bleed import load_decoder  # noqa: E402
from hemo.model import load  # noqa: E402
from error_anatomy import KINDS, diagnosis  # noqa: E402
from folds import finished, heldout, read_cache  # noqa: E402
from shift_check import require_reproduced, scores_of  # noqa: E402
from source_probe import flatten_inner_table  # noqa: E402


def flattened_scores(cache: dict, fold_dir: Path,
                     depth: int) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The fold's out-of-fold record, and its scores on the held-out slices as they are and flattened."""
    oof, images = heldout(cache, fold_dir)
    model, info = load(fold_dir / "hemo-hybrid.keras")
    decoder = load_decoder(fold_dir / info.bleed["file"]) if info.bleed else None
    flat = np.stack([flatten_inner_table(image.astype(np.float32), depth) for image in images])
    original = scores_of(model, decoder, images)
    require_reproduced(fold_dir, original["head"], oof["scores"])
    return oof, original, scores_of(model, decoder, flat)


def _reaching(before: np.ndarray, after: np.ndarray, where: np.ndarray) -> str:
    return f"{int((before[where] >= 0.5).sum())} -> {int((after[where] >= 0.5).sum())} of {int(where.sum())}"


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--diagnosis", type=Path, help="CT-ICH's hemorrhage_diagnosis.csv (bleeds by kind)")
    parser.add_argument("--depth", type=int, default=4, help="pixels of the 256 crop flattened inside the skull")
    args = parser.parse_args(argv)
    cache = read_cache(args.cache)
    parts = [flattened_scores(cache, fold_dir, args.depth) for fold_dir in finished(args.run)]
    labels = np.concatenate([oof["labels"] for oof, _, _ in parts])
    kinds = {}
    if args.diagnosis:
        tables = [diagnosis(args.diagnosis, oof) for oof, _, _ in parts]
        kinds = {kind: np.concatenate([table[kind] for table in tables]) & (labels == 1) for kind in KINDS}
    lines = [f"{len(parts)} folds, {len(labels)} held-out slices ({int(labels.sum())} with a bleed), "
             f"{args.depth} pixels inside the skull flattened; at or above 0.5 as read -> flattened"]
    for score in parts[0][1]:
        before = np.concatenate([part[1][score] for part in parts])
        after = np.concatenate([part[2][score] for part in parts])
        line = (f"{score}: AUC {roc_auc_score(labels, before):.3f} -> {roc_auc_score(labels, after):.3f}; "
                f"normal {_reaching(before, after, labels == 0)}; bleed {_reaching(before, after, labels == 1)}")
        lines.append(line + "".join(f"; {kind} {_reaching(before, after, where)}"
                                    for kind, where in kinds.items() if where.any()))
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
