import numpy as np
import pytest

from hemo.evaluate import bootstrap_auc, bootstrap_auc_difference, choose_threshold, format_report, rank_auc, report


def test_metrics_match_hand_computed_values():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 0])
    scores = np.array([0.1, 0.2, 0.6, 0.3, 0.8, 0.4, 0.9, 0.05])
    m = report(labels, scores, threshold=0.5)
    # predicted positive: 0.6 (FP), 0.8 (TP), 0.9 (TP); 0.4 is a FN
    assert m["confusion_matrix"] == [[4, 1], [1, 2]]
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["per_class"]["haemorrhage"]["precision"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # AUC: of 15 positive-negative pairs, the positive 0.4 ranks below 0.6 only -> 14/15
    assert m["auc"] == pytest.approx(14 / 15)
    low, high = m["auc_ci"]
    assert low <= m["auc"] <= high
    assert set(m) >= {"n", "positives", "accuracy", "auc", "auc_ci", "sensitivity", "specificity", "threshold",
                      "f1", "confusion_matrix", "per_class", "patient_auc"}
    assert "ROC AUC 0.933" in format_report(m)


def test_patient_auc_uses_highest_slice():
    labels = np.array([0, 1, 0, 0, 0, 0])
    scores = np.array([0.1, 0.9, 0.95, 0.2, 0.3, 0.1])
    patients = np.array(["a", "a", "b", "b", "c", "c"])
    m = report(labels, scores, 0.5, patients)
    # patient maxima: a=0.9 (positive), b=0.95, c=0.3 (negatives) -> AUC 1/2
    assert m["patient_auc"] == pytest.approx(0.5)
    assert m["patients"] == 3


def test_threshold_is_youden_optimum():
    labels = np.array([0, 0, 1, 1])
    assert choose_threshold(labels, np.array([0.1, 0.3, 0.35, 0.8])) == pytest.approx(0.35)


def test_the_fast_auc_is_sklearns_auc_ties_included():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for n, rounding in ((12, 1), (300, 2), (300, 6)):  # few distinct scores: many ties, counted half
        labels = (rng.random(n) < 0.3).astype(int)
        scores = np.round(rng.random(n) + 0.3 * labels, rounding)
        assert rank_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        rank_auc(np.zeros(5, int), np.arange(5.0))


def test_bootstrap_interval_narrows_with_more_data():
    rng = np.random.default_rng(0)
    def width(n):
        labels = rng.integers(0, 2, n)
        low, high = bootstrap_auc(labels, labels + rng.normal(0, 1, n), n=300)
        return high - low
    assert width(2000) < width(60)


def test_a_paired_interval_sees_a_small_gain_that_two_separate_intervals_hide():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(60), 10)
    labels = np.repeat(rng.integers(0, 2, 60), 10)
    hard = np.repeat(rng.normal(0, 1.5, 60), 10)  # what both variants get wrong about a patient
    first = labels + hard + rng.normal(0, 1, 600)
    second = first + 0.4 * labels  # the same scores, a little better separated
    low, high = bootstrap_auc_difference(labels, first, second, patients, n=300)
    assert 0 < low < high
    first_ci, second_ci = bootstrap_auc(labels, first, patients, n=300), bootstrap_auc(labels, second, patients, n=300)
    assert second_ci[0] < first_ci[1]  # separately, the two intervals overlap
    assert bootstrap_auc_difference(labels, first, first, patients, n=50) == (0.0, 0.0)
