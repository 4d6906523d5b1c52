from hemo.trust import replicate_range, replicates_sentence, slice_trust, study_trust

SHIPPED = {"n": 1993, "patients": 66, "sensitivity": 0.817, "specificity": 0.864, "studies": 66,
           "study_method": "mean of the top k slices", "study_sensitivity": 0.931, "study_specificity": 0.757}


def test_other_runs_of_the_recipe_are_said_as_a_range():
    shipped = {"study_sensitivity": 0.931, "study_specificity": 0.757}
    assert replicate_range(shipped, "study_auc") is None and replicates_sentence(shipped) is None
    again = {**shipped, "replicates": [{"study_sensitivity": 0.931, "study_specificity": 0.459, "study_auc": 0.93},
                                       {"study_sensitivity": 0.9655, "study_specificity": 0.595, "study_auc": None}]}
    assert replicate_range(again, "study_auc") == (0.93, 0.93)
    assert replicate_range(again, "study_specificity") == (0.459, 0.595)
    assert replicates_sentence(again) == ("Trained again on the same patients, the same recipe (2 more CV runs) found "
                                          "93%–97% of the studies with haemorrhage and cleared 46%–60% of the normal "
                                          "ones.")
    one = {**shipped, "replicates": again["replicates"][:1]}
    assert "(1 more CV run) found 93% of" in replicates_sentence(one)


def test_a_verdict_is_said_with_the_numbers_of_the_rule_that_reached_it():
    said = study_trust(SHIPPED, "mean of the top k slices")
    assert said.startswith("How far to trust it: on 66 patients") and "found 93% " in said and "cleared 76% " in said
    assert study_trust(SHIPPED, "highest slice") is None  # another rule's numbers would mislead
    assert study_trust({**SHIPPED, "study_specificity": None}, "mean of the top k slices") is None
    again = {**SHIPPED, "replicates": [{"study_sensitivity": 0.9, "study_specificity": 0.46}]}
    assert study_trust(again, "mean of the top k slices").endswith(replicates_sentence(again))
    one = slice_trust(SHIPPED)
    assert "on 1,993 slices of 66 patients" in one and "found 82% " in one and "whole series" not in one
    assert "(12 slices or more)" in slice_trust(SHIPPED, several=True, series=12)
    assert "whole series" not in slice_trust(SHIPPED, several=True, series=None)  # a model without a study rule
    assert slice_trust(None) is None and slice_trust({"n": 3}) is None
