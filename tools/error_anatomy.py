"""Where a CV run's errors are: missed bleeds by size and kind, false alarms on fractured skulls, and the studies.

    python tools/error_anatomy.py RUN CACHE.npz [--diagnosis hemorrhage_diagnosis.csv] [--slice-score auto]

Reads the out-of-fold scores of ``hemo cv --out RUN`` the way ``hemo calibrate`` does (the same slice score,
neighbour width and study rule, top-k mean), and the radiologists' masks from the cache the CV was run on
(``hemo cache``). Every operating point is chosen on the other folds (slices: Youden; studies: sensitivity
at least 0.95, the stored rule), so each call is one a new patient would get. With the CT-ICH diagnosis table
it also splits the bleed slices by kind and the normal slices by skull fracture. It says what limits the
goals, not how to reach them; patients are named by their CT-ICH numbers, never by a file.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sklearn.metrics import roc_auc_score  # noqa: E402

from hemo.calibrate import (at_sensitivity, choose_context, fit_platt, nested_predicted, nested_top_k,  # noqa: E402
                            read_oof, slice_score, studies_of, youden)
from hemo.context import in_series  # noqa: E402
from hemo.model import platt  # noqa: E402

KINDS = ("Intraventricular", "Intraparenchymal", "Subarachnoid", "Epidural", "Subdural")


def bleed_area(cache: Path, oof: dict) -> np.ndarray:
    """Each out-of-fold slice's bleed as a share of its 256 x 256 head crop (the cache's masks, cropped alike)."""
    with np.load(cache) as data:
        where = {key: i for i, key in enumerate(zip(data["patients"].tolist(), data["names"].tolist()))}
        index = np.array([where[key] for key in zip(oof["patients"].tolist(), oof["names"].tolist())])
        return (data["masks"][index] > 127).mean(axis=(1, 2))


def diagnosis(path: Path, oof: dict) -> dict[str, np.ndarray]:
    """The CT-ICH table's columns (kinds, ``Fracture_Yes_No``) per out-of-fold slice, by patient and slice number."""
    with open(path, newline="") as table:
        rows = {(int(r["PatientNumber"]), int(r["SliceNumber"])): r for r in csv.DictReader(table)}
    keys = [(int(p), int(re.findall(r"\d+", Path(str(n)).stem)[-1])) for p, n in zip(oof["patients"], oof["names"])]
    return {column: np.array([rows.get(key, {}).get(column) == "1" for key in keys])
            for column in (*KINDS, "Fracture_Yes_No")}


def slice_readings(oof: dict, wanted: str) -> tuple[str, int, dict[str, np.ndarray]]:
    """(slice score, neighbour width, {"alone", "with neighbours"}) as ``hemo calibrate`` chooses them."""
    name, scores, _ = slice_score(oof, wanted)
    series = [s["index"] for s in studies_of(oof)]
    width, _ = choose_context(oof["labels"].astype(int), scores, oof["fold"], series)
    return name, width, {"alone": scores, "with neighbours": in_series(scores, series, width)}


def study_calls(oof: dict, read: np.ndarray) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(studies, nested top-k score, nested call at sensitivity >= 0.95): calibrate's top-k rule, out of fold."""
    studies = studies_of(oof)
    labels, folds = np.array([s["label"] for s in studies]), np.array([s["fold"] for s in studies])
    scores = nested_top_k(platt(read, fit_platt(read, oof["labels"].astype(int))), studies)[0]
    return studies, scores, nested_predicted(labels, scores, folds, at_sensitivity)


def _rate(called: np.ndarray, where: np.ndarray, positive: bool) -> str:
    if not where.any():
        return "-"
    return f"{called[where].mean() if positive else (~called[where]).mean():.3f}"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the folder of 'hemo cv --out'")
    parser.add_argument("cache", type=Path, help="the .npz of 'hemo cache' the CV was run on (with its masks)")
    parser.add_argument("--diagnosis", type=Path, help="CT-ICH's hemorrhage_diagnosis.csv (kinds and fractures)")
    parser.add_argument("--slice-score", default="auto", help="auto, head or head+bleed, as for hemo calibrate")
    args = parser.parse_args(argv)
    oof = read_oof(args.run)
    labels, folds = oof["labels"].astype(int), oof["fold"]
    bleed, normal = labels == 1, labels == 0
    name, width, readings = slice_readings(oof, args.slice_score)
    called = {how: nested_predicted(labels, s, folds, youden) for how, s in readings.items()}
    print(f"{args.run}: {name}, {len(labels)} slices ({bleed.sum()} with a bleed) of {len(set(oof['patients']))} "
          f"patients; alone / read with {width} neighbours, each fold at the Youden point of the other folds")
    print("all slices: sensitivity " + " / ".join(_rate(c, bleed, True) for c in called.values())
          + ", specificity " + " / ".join(_rate(c, normal, False) for c in called.values()))

    area = bleed_area(args.cache, oof)
    print("bleed slices by the bleed's share of the head crop (thirds of the masks, smallest first):")
    for third in np.array_split(np.flatnonzero(bleed)[np.argsort(area[bleed], kind="stable")], 3):
        where = np.isin(np.arange(len(labels)), third)
        against = np.r_[np.ones(len(third)), np.zeros(normal.sum())]
        aucs = " / ".join(f"{roc_auc_score(against, np.r_[s[third], s[normal]]):.3f}" for s in readings.values())
        print(f"  {100 * area[third].min():.2f}-{100 * area[third].max():.2f} %: {len(third)} slices, sensitivity "
              + " / ".join(_rate(c, where, True) for c in called.values()) + f", AUC against every normal slice {aucs}")

    if args.diagnosis:
        table = diagnosis(args.diagnosis, oof)
        print("bleed slices by kind (a slice may have several): " + "; ".join(
            f"{kind} {(bleed & table[kind]).sum()}: " + " / ".join(_rate(c, bleed & table[kind], True)
                                                                    for c in called.values()) for kind in KINDS))
        fractured = table["Fracture_Yes_No"]
        for label, where in (("with", normal & fractured), ("without", normal & ~fractured)):
            print(f"normal slices {label} a skull fracture: {where.sum()}, specificity "
                  + " / ".join(_rate(c, where, False) for c in called.values()))

    studies, scores, flagged = study_calls(oof, readings["with neighbours"])
    study_labels = np.array([s["label"] for s in studies])
    print("studies (top-k mean, k and threshold chosen on the other folds): "
          f"AUC {roc_auc_score(study_labels, scores):.3f}, "
          f"{flagged[study_labels == 1].sum()} of {(study_labels == 1).sum()} with a bleed called, "
          f"{flagged[study_labels == 0].sum()} of {(study_labels == 0).sum()} without one flagged")
    rank = 0  # bleed studies by their summed bleed area, smallest first
    for study, score, call in sorted(zip(studies, scores, flagged), key=lambda row: area[row[0]["index"]].sum()):
        index = study["index"]
        rank += study["label"]
        if study["label"] == 1 and not call:
            print(f"  missed: patient {study['patient']}, {labels[index].sum()} bleed slices, bleed areas summing to "
                  f"{100 * area[index].sum():.2f} % of one crop (the {_ordinal(rank)} smallest), score {score:.3f}")
        elif study["label"] == 0 and call:
            print(f"  flagged: patient {study['patient']}, {len(index)} slices, score {score:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
