"""How far a verdict goes, in words: the out-of-fold numbers, shipped beside the model, of the rule that reached it.

The app, the PDF report and the CLI say these sentences alike, so a verdict is never shown beside another rule's
numbers (a study judged by its highest slice with the top-k rule's specificity). Plain numpy-free Python: tools
that read an evaluation need no Keras.
"""

from __future__ import annotations

#: What a model's evaluation keeps of each other CV run of its recipe (``tools/replicates.py``), and how the About
#: page names it: one run's numbers are one draw, and the study numbers of this recipe moved by more between runs
#: than any change tried moved them.
REPLICATED = {"auc": "ROC AUC (slice level)", "context_auc": "ROC AUC of slices read with neighbours",
              "study_auc": "Study AUC", "study_sensitivity": "Study sensitivity",
              "study_specificity": "Study specificity"}


def replicate_range(metrics: dict | None, key: str) -> tuple[float, float] | None:
    """(lowest, highest) of ``key`` over the other CV runs of the recipe in ``metrics["replicates"]``; None
    without them."""
    values = [run[key] for run in (metrics or {}).get("replicates") or [] if run.get(key) is not None]
    return (min(values), max(values)) if values else None


def replicates_sentence(metrics: dict | None) -> str | None:
    """How the study numbers moved when the same recipe was trained again, in words; None without replicates."""
    found, cleared = replicate_range(metrics, "study_sensitivity"), replicate_range(metrics, "study_specificity")
    if found is None or cleared is None:
        return None

    def share(low: float, high: float) -> str:
        return f"{low:.0%}" if round(low, 2) == round(high, 2) else f"{low:.0%}–{high:.0%}"

    runs = len(metrics["replicates"])
    return (f"Trained again on the same patients, the same recipe ({runs} more CV run{'s' if runs > 1 else ''}) "
            f"found {share(*found)} of the studies with haemorrhage and cleared {share(*cleared)} of the normal ones.")


def study_trust(metrics: dict | None, method: str) -> str | None:
    """The study rule's nested out-of-fold sensitivity and specificity, and their spread over other runs of the
    recipe; None unless the evaluation measured the rule (``method``) that reached this verdict."""
    metrics = metrics or {}
    if metrics.get("study_method") != method or metrics.get("study_specificity") is None:
        return None
    again = replicates_sentence(metrics)
    return (f"How far to trust it: on {metrics['studies']} patients kept out of the training that scored them, this "
            f"rule found {metrics['study_sensitivity']:.0%} of the studies with haemorrhage and cleared "
            f"{metrics['study_specificity']:.0%} of the normal ones (model card)." + (f" {again}" if again else ""))


def slice_trust(metrics: dict | None, several: bool = False, series: int | None = None) -> str | None:
    """The slice operating point's out-of-fold sensitivity and specificity, for verdicts reached slice by slice
    (single images, uploads shorter than the study rule's ``series`` slices). ``several``: an upload of more than
    one slice, judged by its highest, is flagged more often than one slice; said so. None without the numbers."""
    metrics = metrics or {}
    if metrics.get("sensitivity") is None or metrics.get("specificity") is None:
        return None
    patients = f" of {metrics['patients']} patients" if metrics.get("patients") else ""
    return (f"How far to trust a slice's verdict: on {metrics['n']:,} slices{patients} kept out of the training "
            f"that scored them, the slice operating point found {metrics['sensitivity']:.0%} of the slices with "
            f"haemorrhage and cleared {metrics['specificity']:.0%} of the normal ones (model card)."
            + (" Judged by its highest slice, an upload of several slices is flagged more often than any one of "
               f"them: the study rule needs a whole series ({series} slices or more)." if several and series else ""))
