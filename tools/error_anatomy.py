"""Where a CV run's errors are: missed bleeds by size and kind, false alarms on fractured skulls, and the studies.

    python tools/error_anatomy.py RUN CACHE.npz [--diagnosis hemorrhage_diagnosis.csv] [--slice-score auto]
        [--context auto]

Reads the out-of-fold scores of ``hemo cv --out RUN`` the way ``hemo calibrate`` does (the same slice score,
neighbour width and study rule, top-k mean), and the radiologists' masks from the cache the CV was run on
(``hemo cache``). Every operating point is chosen on the other folds, so each call is one a new patient would
get: for slices the Youden point of their raw scores (calibrate chooses it on calibrated ones, so its
nested rates can differ by a few slices), for studies sensitivity at least 0.95, calibrate's stored rule.
With the CT-ICH diagnosis table it also splits the bleed slices by kind and the normal slices by skull
fracture. It says what limits the goals, not how to reach them; patients are named by their CT-ICH numbers,
never by a file.
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

from hemo.calibrate import (at_sensitivity, choose_context, fold_widths, nested_predicted, nested_top_k,  # noqa: E402
                            read_oof, slice_score, studies_of, youden)
from hemo.context import in_series  # noqa: E402
from folds import rows  # noqa: E402

KINDS = ("Intraventricular", "Intraparenchymal", "Subarachnoid", "Epidural", "Subdural")


def bleed_area(cache: Path, oof: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each out-of-fold slice's bleed as a share of its 256 x 256 head crop (the cache's masks, cropped alike),
    and the areas that cut all the cache's bleed slices into thirds: the same thirds for every run and fold."""
    with np.load(cache) as data:
        every = (data["masks"] > 127).mean(axis=(1, 2))
        thirds = np.array_split(np.sort(every[data["labels"] == 1]), 3)
        return every[rows(data, oof)], np.array([thirds[0][-1], thirds[1][-1]])


def diagnosis(path: Path, oof: dict) -> dict[str, np.ndarray]:
    """The CT-ICH table's columns (kinds, ``Fracture_Yes_No``) per out-of-fold slice, by patient and slice number."""
    with open(path, newline="") as table:
        rows = {(int(r["PatientNumber"]), int(r["SliceNumber"])): r for r in csv.DictReader(table)}
    keys = [(int(p), int(re.findall(r"\d+", Path(str(n)).stem)[-1])) for p, n in zip(oof["patients"], oof["names"])]
    return {column: np.array([rows.get(key, {}).get(column) == "1" for key in keys])
            for column in (*KINDS, "Fracture_Yes_No")}


def slice_readings(oof: dict, wanted: str, context: str = "auto") -> tuple[str, int, dict[str, np.ndarray], list]:
    """(slice score, neighbour width, {"alone", "with neighbours"}, each fold's width chosen on the other folds)
    as ``hemo calibrate`` chooses them."""
    name, scores, _ = slice_score(oof, wanted)
    series = [s["index"] for s in studies_of(oof)]
    width, report = choose_context(oof["labels"].astype(int), scores, oof["fold"], series, context)
    widths = fold_widths(context, width, report, oof["fold"])
    return name, width, {"alone": scores, "with neighbours": in_series(scores, series, width)}, widths


def study_calls(oof: dict, alone: np.ndarray, widths: list[int]) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(studies, nested top-k score, nested call at sensitivity >= 0.95): calibrate's top-k rule, out of fold."""
    studies = studies_of(oof)
    labels, folds = np.array([s["label"] for s in studies]), np.array([s["fold"] for s in studies])
    scores = nested_top_k(oof["labels"].astype(int), alone, oof["fold"], studies, widths)[0]
    return studies, scores, nested_predicted(labels, scores, folds, at_sensitivity)


def _rate(called: np.ndarray | None, where: np.ndarray, positive: bool) -> str:
    if called is None or not where.any():
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
    parser.add_argument("--context", default="auto", help="neighbour width, auto or 0-4, as for hemo calibrate "
                        "(fix it to compare runs fold by fold)")
    args = parser.parse_args(argv)
    oof = read_oof(args.run)
    labels, folds = oof["labels"].astype(int), oof["fold"]
    bleed, normal = labels == 1, labels == 0
    name, width, readings, widths = slice_readings(oof, args.slice_score, args.context)
    nested = len(np.unique(folds)) > 1  # one fold has no other folds to choose its operating points on: AUCs only
    called = {how: nested_predicted(labels, s, folds, youden) if nested else None for how, s in readings.items()}
    print(f"{args.run}: {name}, {len(labels)} slices ({bleed.sum()} with a bleed) of {len(set(oof['patients']))} "
          f"patients; alone / read with {width} neighbours, " + ("each fold at the Youden point of the other folds"
                                                                 if nested else "one fold: AUCs, no operating point"))
    aucs = " / ".join(f"{roc_auc_score(labels, s):.3f}" for s in readings.values())
    print(f"all slices: AUC {aucs}, sensitivity " + " / ".join(_rate(c, bleed, True) for c in called.values())
          + ", specificity " + " / ".join(_rate(c, normal, False) for c in called.values()))

    area, edges = bleed_area(args.cache, oof)
    print("bleed slices by the bleed's share of the head crop (thirds of all the cache's masks, smallest first):")
    for low, high in zip((-1.0, *edges), (*edges, 1.0)):
        where = bleed & (area > low) & (area <= high)
        against = np.r_[np.ones(where.sum()), np.zeros(normal.sum())]
        aucs = " / ".join(f"{roc_auc_score(against, np.r_[s[where], s[normal]]):.3f}" if where.any() else "-"
                          for s in readings.values())
        size = (f"up to {100 * high:.2f}" if low < 0 else f"over {100 * low:.2f}" if high >= 1.0
                else f"over {100 * low:.2f}, up to {100 * high:.2f}")
        print(f"  {size} %: {where.sum()} slices, sensitivity "
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

    if not nested:
        return 0
    studies, scores, flagged = study_calls(oof, readings["alone"], widths)
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
