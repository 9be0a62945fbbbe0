"""sound_tf.metrics against confusion matrices and scores worked out by hand."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from sound_tf.errors import SoundTFError
from sound_tf.metrics import (
    MetricsError,
    aggregate_folds,
    compute_metrics,
    confused_pairs,
    data_advice,
    metrics_from_confusion,
    near_chance,
    summary_lines,
    weakest_classes,
    write_confused_pairs_csv,
    write_errors_csv,
    write_metrics_json,
)

LABELS = ["cat", "dog", "bird"]
# Ten clips: four cats, three dogs, three birds. Argmax and the runner-up of every row are chosen so that
#   confusion matrix (rows = true)   precision          recall      F1
#   cat  [3, 1, 0]                    3/4               3/4         3/4
#   dog  [0, 2, 1]                    2/3               2/3         2/3
#   bird [1, 0, 2]                    2/3               2/3         2/3
# accuracy 7/10; macro F1 = balanced accuracy = (3/4 + 2/3 + 2/3) / 3 = 25/36; weighted F1 = 7/10.
# Top-2: clip 3 (cat -> dog, runner-up cat) and clip 7 (bird -> cat, runner-up bird) are hits, clip 6
# (dog -> bird, runner-up cat) is a miss: 9/10.
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
SCORES = np.array([
    [0.70, 0.20, 0.10],
    [0.60, 0.30, 0.10],
    [0.50, 0.10, 0.40],
    [0.30, 0.60, 0.10],  # cat predicted dog
    [0.20, 0.70, 0.10],
    [0.10, 0.80, 0.10],
    [0.30, 0.05, 0.65],  # dog predicted bird
    [0.50, 0.10, 0.40],  # bird predicted cat
    [0.10, 0.20, 0.70],
    [0.20, 0.10, 0.70],
])
PATHS = [f"clips/clip_{i:02d}.wav" for i in range(len(Y_TRUE))]


def test_compute_metrics_matches_hand_computed_values():
    m = compute_metrics(Y_TRUE, SCORES, LABELS, top_k=(1, 2, 3, 5))
    assert m["confusion_matrix"] == [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["micro_f1"] == pytest.approx(0.7)
    assert m["macro_f1"] == pytest.approx(25 / 36)
    assert m["balanced_accuracy"] == pytest.approx(25 / 36)
    assert m["weighted_f1"] == pytest.approx(0.7)
    # k >= classes is left out: top_3 of 3 classes is always 1.
    assert m["top_k_accuracy"] == pytest.approx({"top_1": 0.7, "top_2": 0.9})
    expected = {"cat": (3 / 4, 3 / 4, 3 / 4, 4), "dog": (2 / 3, 2 / 3, 2 / 3, 3), "bird": (2 / 3, 2 / 3, 2 / 3, 3)}
    for label, (precision, recall, f1, support) in expected.items():
        stats = m["per_class"][label]
        assert stats["precision"] == pytest.approx(precision)
        assert stats["recall"] == pytest.approx(recall)
        assert stats["f1"] == pytest.approx(f1)
        assert stats["support"] == support
    assert m["labels"] == LABELS and m["num_examples"] == 10
    json.dumps(m, allow_nan=False)  # JSON-ready: plain Python types only


def test_logits_give_the_same_metrics_as_probabilities():
    from_probs = compute_metrics(Y_TRUE, SCORES, LABELS, top_k=(2,))
    from_logits = compute_metrics(Y_TRUE, 3.0 * np.log(SCORES) - 1.0, LABELS, top_k=(2,))
    assert from_logits == from_probs


def test_top_k_ranks_tied_scores_in_class_order_as_the_prediction_and_errors_csv_do(tmp_path, rng):
    labels = ["a", "b", "c", "d", "e"]
    # Every score equal (a model that learned nothing, or probabilities quantised to 0): argmax predicts a.
    # In class order the top 3 are a, b, c, so three of these four clips are top-3 hits; scikit-learn's
    # top_k_accuracy_score ranks ties the other way (e, d, c) and counted one, a top-3 below the top-1.
    y_true = [0, 0, 1, 4]
    m = compute_metrics(y_true, np.zeros((4, 5)), labels)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["top_k_accuracy"] == pytest.approx({"top_1": 0.5, "top_3": 0.75})
    # A tie below the best score: b, c and d share second place behind e.
    scores = np.array([[0.1, 0.3, 0.3, 0.3, 0.4]] * 4)
    m = compute_metrics([4, 1, 2, 3], scores, labels)
    assert m["top_k_accuracy"] == pytest.approx({"top_1": 0.25, "top_3": 0.75})  # e, b, c: d is fourth
    write_errors_csv(tmp_path / "errors.csv", [f"{i}.wav" for i in range(4)], [4, 1, 2, 3], scores, labels)
    with (tmp_path / "errors.csv").open(newline="") as handle:
        listed = {row["path"]: row["top3"] for row in csv.DictReader(handle)}
    assert listed == {f"{i}.wav": "e:0.40;b:0.30;c:0.30" for i in (1, 2, 3)}  # the same three as top-3
    # Without ties the ranking is scikit-learn's.
    from sklearn.metrics import top_k_accuracy_score
    y_true = rng.integers(0, 5, size=200)
    scores = rng.random((200, 5))
    m = compute_metrics(y_true, scores, labels)
    assert m["top_k_accuracy"]["top_3"] == pytest.approx(top_k_accuracy_score(y_true, scores, k=3, labels=range(5)))


def test_absent_class_keeps_its_row_and_does_not_change_macro_scores():
    labels = LABELS + ["frog"]
    scores = np.concatenate([SCORES, np.zeros((len(Y_TRUE), 1))], axis=1)  # frog never predicted
    m = compute_metrics(Y_TRUE, scores, labels)
    assert np.array(m["confusion_matrix"]).shape == (4, 4)
    assert m["confusion_matrix"][3] == [0, 0, 0, 0] and [row[3] for row in m["confusion_matrix"]] == [0, 0, 0, 0]
    assert m["per_class"]["frog"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx(25 / 36)
    assert m["balanced_accuracy"] == pytest.approx(25 / 36)
    assert m["top_k_accuracy"]["top_3"] == pytest.approx(1.0)

    # Predicting the absent class is a mistake that costs: frog joins the macro average with F1 0.
    scores[0] = [0.0, 0.0, 0.0, 1.0]
    m = compute_metrics(Y_TRUE, scores, labels)
    cat_f1 = 2 / (3 / 2 + 4 / 2)  # harmonic mean of precision 2/3 (2 of 3 cat predictions) and recall 2/4
    assert m["per_class"]["frog"]["f1"] == 0.0 and m["confusion_matrix"][0] == [2, 1, 0, 1]
    assert m["macro_f1"] == pytest.approx((cat_f1 + 2 / 3 + 2 / 3 + 0.0) / 4)
    assert m["balanced_accuracy"] == pytest.approx((2 / 4 + 2 / 3 + 2 / 3) / 3)


def test_metrics_from_confusion_agrees_with_compute_metrics():
    direct = compute_metrics(Y_TRUE, SCORES, LABELS)
    rebuilt = metrics_from_confusion(direct["confusion_matrix"], LABELS)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "micro_f1", "weighted_f1"):
        assert rebuilt[key] == pytest.approx(direct[key]), key
    for key in ("per_class", "confusion_matrix", "labels", "num_examples"):
        assert rebuilt[key] == direct[key], key
    for bad in ([[4, -1, 0], [0, 3, 0], [1, 1, 2]], [[4, 0.5, 0], [0, 3, 0], [1, 1, 2]]):  # not counts
        with pytest.raises(MetricsError, match="non-negative integer counts"):
            metrics_from_confusion(bad, LABELS)


@pytest.mark.parametrize("y_true, scores, labels, message", [
    (Y_TRUE, SCORES[:, :2], LABELS, "2 columns but there are 3 labels"),
    (Y_TRUE[:-1], SCORES, LABELS, "y_true has 9 examples but scores has 10 rows"),
    (Y_TRUE[:, None], SCORES, LABELS, "y_true must be 1-D"),
    (Y_TRUE, SCORES[0], LABELS, "scores must be 2-D"),
    (np.where(Y_TRUE == 2, 7, Y_TRUE), SCORES, LABELS, "outside [0, 2]: [7]"),
    (np.where(Y_TRUE == 2, 3, Y_TRUE), SCORES, LABELS, "outside [0, 2]: [3]"),  # one past the last class
    (Y_TRUE, np.where(SCORES == 0.8, np.nan, SCORES), LABELS, "NaN or infinity in rows [5]"),
    (Y_TRUE[:0], SCORES[:0], LABELS, "no examples"),
    (Y_TRUE, SCORES, ["cat", "dog", "cat"], "duplicates ['cat']"),
    (Y_TRUE + 0.5, SCORES, LABELS, "integer class indices"),
])
def test_bad_inputs_raise_clear_errors(y_true, scores, labels, message):
    with pytest.raises(MetricsError) as info:
        compute_metrics(y_true, scores, labels)
    assert message in str(info.value)
    assert isinstance(info.value, SoundTFError) and isinstance(info.value, ValueError)


def test_labels_must_be_an_ordered_sequence_of_names():
    """A string was split into characters (3 columns, labels "abc": classes a, b, c) and a set or dict taken in
    its iteration order, which need not be the columns' (a set of strings changes order from run to run):
    per_class named the wrong classes without a word. Refused; lists, tuples and arrays still work."""
    for bad, kind in (("cdb", "str"), ({"cat", "dog", "bird"}, "set"), ({"dog": 1, "cat": 0, "bird": 2}, "dict"),
                      (frozenset(LABELS), "frozenset")):
        with pytest.raises(MetricsError,
                           match=rf"labels must be a sequence of class names in column order .* a {kind}"):
            compute_metrics(Y_TRUE, SCORES, bad)
    with pytest.raises(MetricsError, match="got a str"):
        confused_pairs([[3, 1, 0], [0, 2, 1], [1, 0, 2]], "cdb")
    for good in (LABELS, tuple(LABELS), np.array(LABELS)):
        assert compute_metrics(Y_TRUE, SCORES, good)["per_class"]["cat"]["support"] == 4


def test_top_k_must_be_integer_ranks():
    """top_k=(2.7,) was truncated and reported as top_2, ("3",) parsed, (0.5,) named "[0]" and a bare 3
    failed with "'int' object is not iterable"; each is now a MetricsError naming top_k and the value."""
    for bad in ((2.7,), ("3",), (0.5,), (True,), (np.True_,), 3, (0, 2), "35"):
        with pytest.raises(MetricsError, match=r"top_k must be a sequence of integer ranks >= 1, e\.g\. \(1, 3, 5\), "
                                              rf"got {re.escape(repr(bad))}$"):
            compute_metrics(Y_TRUE, SCORES, LABELS, top_k=bad)
    m = compute_metrics(Y_TRUE, SCORES, LABELS, top_k=[np.int64(2), 1])
    assert m["top_k_accuracy"] == pytest.approx({"top_1": 0.7, "top_2": 0.9})
    assert compute_metrics(Y_TRUE, SCORES, LABELS, top_k=range(1, 3))["top_k_accuracy"]["top_2"] == pytest.approx(0.9)


def test_confused_pairs_worst_first_with_ties():
    with pytest.raises(MetricsError, match="top must be >= 0, got -1"):
        confused_pairs([[1, 1], [0, 2]], ["a", "b"], top=-1)
    labels = ["a", "b", "c", "d"]
    cm = [[5, 2, 0, 1],   # support 8
          [2, 3, 0, 0],   # support 5
          [0, 0, 4, 2],   # support 6
          [1, 0, 0, 9]]   # support 10
    pairs = confused_pairs(cm, labels)
    # Three pairs share count 2 and are ordered by rate; the two with count 1 likewise.
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("b", "a", 2), ("c", "d", 2), ("a", "b", 2), ("a", "d", 1), ("d", "a", 1)]
    assert [p["rate"] for p in pairs] == pytest.approx([2 / 5, 2 / 6, 2 / 8, 1 / 8, 1 / 10])
    assert confused_pairs(cm, labels, top=2) == pairs[:2]
    # Same count and same rate: names decide (true first, then predicted).
    tied = confused_pairs([[0, 1, 1], [1, 1, 0], [0, 0, 2]], ["x", "y", "z"])
    assert [(p["true"], p["predicted"]) for p in tied] == [("x", "y"), ("x", "z"), ("y", "x")]
    assert confused_pairs(np.eye(3, dtype=int) * 4, ["x", "y", "z"]) == []
    with pytest.raises(MetricsError, match="3x3 but there are 2 labels"):
        confused_pairs(np.eye(3, dtype=int), ["x", "y"])


def test_weakest_classes_skip_absent_classes():
    m = compute_metrics(Y_TRUE, np.concatenate([SCORES, np.zeros((10, 1))], axis=1), LABELS + ["frog"])
    weakest = weakest_classes(m, n=2)
    # dog and bird tie on F1 and recall (2/3) and support (3): the name decides.
    assert [r["label"] for r in weakest] == ["bird", "dog"]
    assert [r["label"] for r in weakest_classes(m, n=10)] == ["bird", "dog", "cat"]


def _advice_metrics():
    # d is weak (F1 2/3 against macro ~0.84), a/b/c are fine; d's worst confusion is with a (3x).
    return metrics_from_confusion([[9, 1, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [3, 2, 0, 5]], ["a", "b", "c", "d"])


def test_data_advice_rule():
    m = _advice_metrics()
    assert m["per_class"]["d"]["f1"] == pytest.approx(2 / 3)
    # Median training count 30: c (10) and d (8) are scarce; d is also weak, so it comes first.
    advice = data_advice(m, {"a": 50, "b": 50, "c": 10, "d": 8})
    assert len(advice) == 2
    assert advice[0].startswith("d: F1 0.67") and "8 training examples" in advice[0]
    assert "more data should help most" in advice[0] and "mistaken for a (3x)" in advice[0]
    assert advice[1].startswith("c: only 10 training examples") and "more reliable" in advice[1]
    # Weak with plenty of data: more varied data or label checks, not just more.
    advice = data_advice(m, {"a": 50, "b": 50, "c": 50, "d": 50})
    assert advice == [advice[0]] and "despite 50 training examples" in advice[0] and "varied" in advice[0]
    # A class missing from the counts has no training data at all.
    assert data_advice(m, {"a": 50, "b": 50, "c": 50})[0].startswith("d: no training examples at all")
    with pytest.raises(MetricsError, match=r"\['zebra'\]"):
        data_advice(m, {"zebra": 3})
    # 5 evaluated examples are enough to judge a class (the note is for fewer)
    five = metrics_from_confusion([[9, 1, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [2, 1, 0, 2]], list("abcd"))
    assert data_advice(five, {"a": 50, "b": 50, "c": 50, "d": 50}) == [
        "d: F1 0.57 (macro 0.83) despite 50 training examples, most often mistaken for a (2x); add more varied "
        "examples or check its labels."]
    # weak and scarce first, then weak with plenty of data
    both = metrics_from_confusion([[10, 0, 0, 0, 0], [0, 10, 0, 0, 0], [0, 0, 10, 0, 0], [6, 0, 0, 4, 0],
                                   [0, 6, 0, 0, 4]], list("abcde"))
    ranked = data_advice(both, {"a": 50, "b": 50, "c": 50, "d": 50, "e": 8})
    assert ranked[0].startswith("e: F1 0.57 (macro 0.74) with 8 training examples")
    assert ranked[1].startswith("d: F1 0.57 (macro 0.74) despite 50")


def test_data_advice_counts_one_in_the_singular():
    """A class of one training clip and one test clip (3 clips of a rare call split 1/1/1) is '1 training
    example' and '1 evaluated example', not '1 training examples' (the walkthrough of session 46); crossval's
    own count name too."""
    # owl (one test clip, mistaken for wren) is weak (F1 0 against a macro F1 of 0.58) and scarce
    m = metrics_from_confusion([[5, 0, 0], [0, 0, 1], [1, 0, 5]], ["robin", "owl", "wren"])
    advice = data_advice(m, {"robin": 25, "owl": 1, "wren": 25})
    assert advice == ["owl: F1 0.00 (macro 0.58) with 1 training example (median 25), most often mistaken for "
                      "wren (1x); more data should help most (only 1 evaluated example, so the score is uncertain)."]
    scarce = metrics_from_confusion([[5, 0], [0, 1]], ["robin", "owl"])
    assert data_advice(scarce, {"robin": 25, "owl": 1}, count_name="clips in the dataset") == [
        "owl: only 1 clip in the dataset (median 13) though F1 is 1.00; more data would make its score more "
        "reliable (only 1 evaluated example, so the score is uncertain)."]
    # two stay plural
    assert "only 2 training examples" in data_advice(scarce, {"robin": 25, "owl": 2})[0]


def test_data_advice_for_a_scarce_class_below_the_average_of_a_model_near_chance():
    """A model that calls every clip robin (balanced accuracy 0.25 with 4 classes, macro F1 0.10): owl, with 3
    training clips and F1 0.00, is not clearly below the average class (0.00 is not below 0.10 - 0.10), and its
    advice was 'only 3 training examples (median 25) though F1 is 0.00; more data would make its score more
    reliable', worded for a scarce class that scores well. It says that the class scores below the average and
    that more data should help it; a scarce class at or above the macro F1 keeps the 'more reliable' sentence."""
    labels = ["robin", "owl", "wren", "jay"]
    m = metrics_from_confusion([[6, 0, 0, 0]] * 4, labels)
    assert near_chance(m) and m["macro_f1"] == pytest.approx(0.10)
    assert data_advice(m, {"robin": 25, "owl": 3, "wren": 25, "jay": 25}) == [
        "owl: only 3 training examples (median 25) and F1 0.00 (macro 0.10), most often mistaken for robin (6x); more "
        "data should help it."]
    # robin scarce instead: F1 0.40, above the macro F1, so its score is the one to doubt
    assert data_advice(m, {"robin": 3, "owl": 25, "wren": 25, "jay": 25}) == [
        "robin: only 3 training examples (median 25) though F1 is 0.40; more data would make its score more "
        "reliable."]


def test_summary_lines_name_weak_classes_pairs_and_advice():
    m = compute_metrics(Y_TRUE, SCORES, LABELS, top_k=(2,))
    text = "\n".join(summary_lines(m, class_counts={"cat": 40, "dog": 40, "bird": 10}, n_weakest=2, n_pairs=2))
    assert "accuracy 0.7000" in text and "macro F1 0.6944" in text and "top-2 0.9000" in text
    assert "weakest classes:\n  bird: F1 0.67" in text
    # All three confusions count 1: rate 1/3 beats 1/4, then the true class's name breaks the tie.
    assert "most confused pairs (true -> predicted):\n  bird -> cat: 1 (33% of bird)\n  dog -> bird: 1" in text
    assert "cat -> dog" not in text
    assert "bird: only 10 training examples (median 40)" in text
    short = summary_lines(m, class_counts={"cat": 40, "dog": 40, "bird": 10}, n_advice=0)
    assert short[-2:] == ["classes that would benefit from more data:", "  ... and 1 more class"]  # was 'class(es)'
    four = metrics_from_confusion([[8, 1, 1, 0], [1, 8, 0, 1], [1, 0, 8, 1], [0, 1, 1, 8]], ["a", "b", "c", "d"])
    two_more = summary_lines(four, class_counts={"a": 40, "b": 40, "c": 5, "d": 5}, n_advice=0)
    assert two_more[-1] == "  ... and 2 more classes"
    exact = summary_lines(m, class_counts={"cat": 40, "dog": 40, "bird": 10}, n_advice=1)  # all of it: no "0 more"
    assert exact[-1].startswith("  bird: only 10 training examples")
    assert summary_lines(m, class_counts={"cat": 40, "dog": 40, "bird": 40})[-1] == \
        "no class stands out as needing more data"


def test_summary_lines_say_a_model_at_chance_needs_more_as_a_whole():
    """A model at chance has no class below the others' F1 (data_advice's rule), and was told that no class
    stands out as needing more data: the whole model is what is weak."""
    from sound_tf.metrics import near_chance

    # 4 balanced classes, every one guessed: balanced accuracy 0.30, chance 0.25
    at_chance = metrics_from_confusion([[3, 3, 2, 2], [2, 3, 3, 2], [2, 2, 3, 3], [3, 2, 2, 3]], list("abcd"))
    counts = dict.fromkeys("abcd", 40)
    assert data_advice(at_chance, counts) == []
    last = summary_lines(at_chance, class_counts=counts)[-1]
    assert last == ("the model scores near chance (balanced accuracy 0.30; chance is 0.25 with 4 classes): as a whole "
                    "it needs more training data or more updates (epochs, a smaller batch), not one class")
    # a class below the others at chance is still named, after the line on the whole model
    lopsided = metrics_from_confusion([[4, 2, 2, 2], [3, 3, 2, 2], [2, 3, 3, 2], [5, 3, 2, 0]], list("abcd"))
    assert near_chance(lopsided) and data_advice(lopsided, counts)
    lines = summary_lines(lopsided, class_counts=counts)
    first = lines.index("classes that would benefit from more data:") - 1
    assert lines[first].endswith("(epochs, a smaller batch), before more data for single classes")
    assert lines[first + 2].startswith("  d: F1 0.00 (macro 0.23)")
    # the edge with 2 classes is 0.5 + 0.25 * 0.5 = 0.625: reached, chance level; one clip more right, not
    two = metrics_from_confusion([[10, 6], [6, 10]], list("ab"))  # balanced accuracy 0.625
    assert near_chance(two) and not near_chance(metrics_from_confusion([[11, 5], [6, 10]], list("ab")))
    # a model that learned (balanced accuracy 0.9) keeps the old line
    learned = metrics_from_confusion([[9, 1, 0, 0], [0, 9, 1, 0], [0, 0, 9, 1], [1, 0, 0, 9]], list("abcd"))
    assert not near_chance(learned)
    assert summary_lines(learned, class_counts=counts)[-1] == "no class stands out as needing more data"


def test_a_model_that_overfit_gets_a_line_of_its_own_when_it_is_not_near_chance():
    """The overfit advice was worded only inside the near-chance line: a model at 0.70 balanced accuracy whose
    training accuracy reached 1.00 while its validation loss was lowest at epoch 3 of 12 was told nothing of it. It
    now gets a line with the kept epoch, the two accuracies and the remedies, with how to rerun with them; near
    chance, the near-chance line says it, once."""
    from sound_tf.metrics import FitWording, overfit

    # 12 epochs: training accuracy climbs to 1.00, validation's best is 0.58 (epoch 4), its loss lowest at epoch 3
    history = {"accuracy": [0.30, 0.55, 0.70, 0.80, 0.88, 0.93, 0.96, 0.98, 0.99, 1.00, 1.00, 1.00],
               "val_accuracy": [0.30, 0.45, 0.55, 0.58, 0.56, 0.55, 0.54, 0.55, 0.53, 0.54, 0.52, 0.53],
               "val_loss": [1.50, 1.20, 1.05, 1.10, 1.18, 1.25, 1.33, 1.40, 1.48, 1.55, 1.61, 1.70]}
    fit = overfit(history, kept=2)
    assert fit == {"kept_epoch": 3, "epochs": 12, "train_accuracy": 1.0, "val_accuracy": 0.58}
    validation = {"accuracy": 0.55, "num_examples": 50, "overfit": {**fit, "augmented": True}}
    # 5 classes of 10 clips, 7 of each right: balanced accuracy 0.70, where chance is 0.20 and its edge 0.40
    fair = metrics_from_confusion((7 * np.eye(5, dtype=int) + 3 * np.roll(np.eye(5, dtype=int), 1, axis=1)).tolist(),
                                  list("abcde"))
    assert fair["balanced_accuracy"] == pytest.approx(0.70) and not near_chance(fair)
    lines = summary_lines(fair, class_counts=dict.fromkeys("abcde", 40), validation=validation)
    said = [line for line in lines if "overfit its training clips" in line]
    assert said == [
        "the model overfit its training clips: training accuracy reached 1.00 by epoch 12 while validation accuracy "
        "was at most 0.58, and the validation loss was lowest at epoch 3 of 12, whose weights it keeps: more epochs "
        "will not help; try stronger augmentation (it was on: raise augment.noise_probability, "
        "augment.pitch_probability, augment.mixup_probability or augment.spec_time_mask_count), a smaller model "
        "(model.widths) or more training data (in a new run: a new --out, or --overwrite to replace this one; an "
        "--out that holds a finished run is refused)"]
    assert lines.index(said[0]) < lines.index("no class stands out as needing more data")
    assert not any("overfit" in line for line in summary_lines(fair, validation={"accuracy": 0.55,
                                                                                "num_examples": 50}))
    # another wording's subject, remedies and rerun (a search's) replace train's
    wording = FitWording(model="the best trial's configuration", overfit_remedies="a smaller model", rerun="anew")
    assert [line for line in summary_lines(fair, validation=validation, fit_wording=wording)
            if "overfit" in line] == [
        "the best trial's configuration overfit its training clips: training accuracy reached 1.00 by epoch 12 while "
        "validation accuracy was at most 0.58, and the validation loss was lowest at epoch 3 of 12, whose weights it "
        "keeps: more epochs will not help; try a smaller model (anew)"]
    # near chance (5 classes, 3 of 10 right each: 0.30), the near-chance line gives the same facts, and no line more
    at_chance = metrics_from_confusion((3 * np.eye(5, dtype=int) + 7 * np.roll(np.eye(5, dtype=int), 1, axis=1))
                                       .tolist(), list("abcde"))
    assert near_chance(at_chance)
    said = [line for line in summary_lines(at_chance, validation=validation) if "overfit" in line]
    assert len(said) == 1 and said[0].startswith(
        "the model scores near chance (balanced accuracy 0.30; chance is 0.20 with 5 classes): it overfit its "
        "training clips: training accuracy reached 1.00 by epoch 12 while validation accuracy was at most 0.58, and "
        "the validation loss was lowest at epoch 3 of 12")
    assert said[0].endswith("(in a new run: a new --out, or --overwrite to replace this one; an --out that holds a "
                            "finished run is refused), not one class")


def _per_class_right(right: list[int], clips: int) -> dict:
    """Metrics of len(right) classes with ``clips`` clips each, ``right[i]`` of class i right, the rest called
    the last class with room (class i's wrong clips go to class 0, or 1 for class 0)."""
    labels = [f"c{index}" for index in range(len(right))]
    matrix = np.zeros((len(right), len(right)), dtype=int)
    for index, hits in enumerate(right):
        matrix[index, index] = hits
        matrix[index, 1 if index == 0 else 0] += clips - hits
    return metrics_from_confusion(matrix.tolist(), labels)


def test_summary_lines_name_a_test_score_far_below_validation():
    """The walkthrough of session 47: validation accuracy 0.74 and test accuracy 0.22 (the test clips a held-out
    speaker's), and the summary said only that the model needs more training data. A gap of 0.15 or more that is
    also twice its standard error, on 20 clips or more each, gets a line before the data advice."""
    from sound_tf.metrics import GAP_MIN, GAP_MIN_CLIPS, validation_gap

    walk = _per_class_right([0, 0, 10, 0, 1], 10)  # 5 words x 10 clips, 11 right: accuracy 0.22
    assert walk["accuracy"] == pytest.approx(0.22) and walk["num_examples"] == 50
    lines = summary_lines(walk, class_counts=dict.fromkeys(walk["labels"], 40),
                          validation={"accuracy": 0.74, "num_examples": 50})
    gap = lines.index(validation_gap(walk, {"accuracy": 0.74, "num_examples": 50}))
    assert lines[gap] == (
        "test accuracy 0.22 (50 clips) is far below validation accuracy 0.74 (50 clips): the test clips differ "
        "from the validation clips (other speakers, recordings or folds), so validation overstates what the model "
        "does on new data. If validation shares speakers or recordings with training, keep each in one split (a CSV's "
        "group column, or a fold column with --test-fold and --val-fold); `python -m sound_tf.crossval` "
        "measures over several held-out groups (the data's folds, or --k K)")
    assert lines[gap + 1].startswith("the model scores near chance")  # the advice to add data comes after it
    assert not any(line.startswith("test accuracy") for line in summary_lines(walk))  # no validation given
    assert (GAP_MIN, GAP_MIN_CLIPS) == (0.15, 20)
    # 0.40 against 0.60: a gap of 0.20, yet on 30 clips each its standard error is 0.126 (2x: 0.25), noise; on 100
    # clips each it is 0.069, and the gap is read
    assert validation_gap(_per_class_right([6, 6], 15), {"accuracy": 0.60, "num_examples": 30}) is None
    assert validation_gap(_per_class_right([20, 20], 50), {"accuracy": 0.60, "num_examples": 100}) is not None
    # below 0.15 on many clips: no line; fewer than 20 clips in either set: none either, however far apart
    assert validation_gap(_per_class_right([150, 150], 500), {"accuracy": 0.44, "num_examples": 1000}) is None
    assert validation_gap(_per_class_right([150, 150], 500), {"accuracy": 0.46, "num_examples": 1000}) is not None
    assert validation_gap(_per_class_right([0, 2, 0, 0, 0], 2), {"accuracy": 1.0, "num_examples": 50}) is None
    assert validation_gap(walk, {"accuracy": 1.0, "num_examples": 19}) is None
    assert validation_gap(walk, {"accuracy": 1.0, "num_examples": 20}) is not None


def test_errors_csv_lists_misclassified_files_most_confident_first(tmp_path):
    path = tmp_path / "errors.csv"
    assert write_errors_csv(path, PATHS, Y_TRUE, SCORES, LABELS) == 3
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "true_label", "predicted_label", "score", "top3"]
    assert [(r["path"], r["true_label"], r["predicted_label"], r["score"]) for r in rows] == [
        ("clips/clip_06.wav", "dog", "bird", "0.6500"),
        ("clips/clip_03.wav", "cat", "dog", "0.6000"),
        ("clips/clip_07.wav", "bird", "cat", "0.5000"),
    ]
    assert rows[0]["top3"] == "bird:0.65;cat:0.30;dog:0.05"
    # Logits are turned into probabilities first when asked.
    write_errors_csv(path, PATHS, Y_TRUE, np.log(SCORES), LABELS, from_logits=True)
    with path.open(newline="") as handle:
        assert next(csv.DictReader(handle))["top3"] == "bird:0.65;cat:0.30;dog:0.05"
    with pytest.raises(MetricsError, match="9 paths for 10 predictions"):
        write_errors_csv(path, PATHS[:-1], Y_TRUE, SCORES, LABELS)
    write_errors_csv(path, PATHS, Y_TRUE, SCORES, LABELS, top=2)  # the column lists exactly `top` classes
    with path.open(newline="") as handle:
        assert next(csv.DictReader(handle))["top2"] == "bird:0.65;cat:0.30"


def test_confused_pairs_csv_and_metrics_json_round_trip(tmp_path):
    m = compute_metrics(Y_TRUE, SCORES, LABELS)
    pairs = confused_pairs(m["confusion_matrix"], LABELS)
    write_confused_pairs_csv(tmp_path / "confused_pairs.csv", pairs)
    lines = (tmp_path / "confused_pairs.csv").read_text().splitlines()
    assert lines == ["true,predicted,count,rate", "bird,cat,1,0.3333", "dog,bird,1,0.3333", "cat,dog,1,0.2500"]

    path = write_metrics_json(tmp_path / "sub" / "metrics.json", {**m, "extra": np.float32(0.5), "n": np.int64(3)})
    data = json.loads(path.read_text())
    assert data["accuracy"] == pytest.approx(0.7) and data["macro_f1"] == pytest.approx(25 / 36)
    assert data["confusion_matrix"] == [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert data["per_class"]["cat"] == {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4}
    assert data["extra"] == 0.5 and data["n"] == 3
    assert not list(tmp_path.glob("sub/.*tmp"))  # no temporary file left behind


def test_aggregate_folds_mean_std_and_pooled_confusions(rng):
    labels = ["a", "b", "c", "d"]
    folds = []
    for _ in range(3):
        y = rng.integers(0, 4, size=40)
        scores = rng.random((40, 4))
        scores[np.arange(40), y] += rng.random(40)
        folds.append(compute_metrics(y, scores, labels))
    agg = aggregate_folds(folds)
    assert agg["num_folds"] == 3 and agg["labels"] == labels and agg["num_examples"] == 120
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "micro_f1", "weighted_f1", "top_1", "top_3"):
        values = [f[key] if key in f else f["top_k_accuracy"][key] for f in folds]
        assert agg["mean"][key] == pytest.approx(np.mean(values))
        assert agg["std"][key] == pytest.approx(np.std(values))
    pooled = np.sum([f["confusion_matrix"] for f in folds], axis=0)
    assert agg["confusion_matrix"] == pooled.tolist()
    assert agg["pooled"]["accuracy"] == pytest.approx(np.trace(pooled) / pooled.sum())
    assert agg["per_fold"][1]["accuracy"] == folds[1]["accuracy"]
    json.dumps(agg, allow_nan=False)
    with pytest.raises(MetricsError, match="fold 1 has labels"):
        aggregate_folds([folds[0], {**folds[1], "labels": ["a", "b", "c", "e"]}])
    with pytest.raises(MetricsError, match="at least one fold"):
        aggregate_folds([])


def test_module_does_not_import_tensorflow():
    code = ("import sys, sound_tf.metrics, sound_tf.report; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_precision_and_recall_are_not_interchangeable():
    # In the example above every class has precision == recall; here none has. Counted by hand:
    #   true \ predicted  cat dog bird   precision = right / predicted as   recall = right / truly
    #   cat               [4,  2,  0]    cat  4/5                            4/6
    #   dog               [0,  3,  0]    dog  3/6                            3/3
    #   bird              [1,  1,  2]    bird 2/2                            2/4
    y_true = [0] * 6 + [1] * 3 + [2] * 4
    y_pred = [0, 0, 0, 0, 1, 1] + [1, 1, 1] + [0, 1, 2, 2]
    scores = np.eye(3)[y_pred]
    expected = {"cat": (4 / 5, 4 / 6, 6), "dog": (3 / 6, 3 / 3, 3), "bird": (2 / 2, 2 / 4, 4)}
    for m in (compute_metrics(y_true, scores, LABELS),
              metrics_from_confusion([[4, 2, 0], [0, 3, 0], [1, 1, 2]], LABELS)):
        assert m["confusion_matrix"] == [[4, 2, 0], [0, 3, 0], [1, 1, 2]]
        for label, (precision, recall, support) in expected.items():
            stats = m["per_class"][label]
            assert stats["precision"] == pytest.approx(precision), label
            assert stats["recall"] == pytest.approx(recall), label
            assert stats["f1"] == pytest.approx(2 * precision * recall / (precision + recall)), label
            assert stats["support"] == support
        # Balanced accuracy is the mean recall, not the mean precision.
        assert m["balanced_accuracy"] == pytest.approx((4 / 6 + 1 + 2 / 4) / 3)


def test_confused_pairs_rank_by_count_before_rate():
    # y -> z happens 3 times out of 30 y's; x -> y once out of 2 x's. Count decides first, rate only breaks ties.
    pairs = confused_pairs([[1, 1, 0], [0, 27, 3], [0, 0, 30]], ["x", "y", "z"])
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [("y", "z", 3), ("x", "y", 1)]
    assert [p["rate"] for p in pairs] == pytest.approx([3 / 30, 1 / 2])


def test_weakest_classes_break_an_f1_tie_by_recall():
    # a: precision 1/2, recall 1/1; b: precision 1/1, recall 1/2 -> both F1 2/3. b misses half its
    # examples, so it is the weaker one although its name sorts later.
    m = metrics_from_confusion([[1, 0, 0], [1, 1, 0], [0, 0, 5]], ["a", "b", "c"])
    assert m["per_class"]["a"]["f1"] == pytest.approx(m["per_class"]["b"]["f1"]) == pytest.approx(2 / 3)
    assert [r["label"] for r in weakest_classes(m, n=3)] == ["b", "a", "c"]


def test_pooled_scores_count_every_example_once_with_folds_of_different_sizes(rng):
    """Pooled = from the summed confusion matrix, not the mean over folds (equal only for equal folds)."""
    labels = ["a", "b", "c"]
    folds, ys, preds = [], [], []
    for size in (12, 30, 90):
        y = rng.integers(0, 3, size=size)
        scores = rng.random((size, 3))
        scores[np.arange(size), y] += (0.0 if size == 12 else 1.0) * rng.random(size)  # the small fold is a guess
        folds.append(compute_metrics(y, scores, labels))
        ys.append(y)
        preds.append(np.argmax(scores, axis=1))
    y, pred = np.concatenate(ys), np.concatenate(preds)
    agg = aggregate_folds(folds)
    tp = np.array([np.sum((y == c) & (pred == c)) for c in range(3)])
    precision = tp / np.array([np.sum(pred == c) for c in range(3)])
    recall = tp / np.array([np.sum(y == c) for c in range(3)])
    f1 = 2 * precision * recall / (precision + recall)
    support = np.bincount(y, minlength=3)
    expected = {"accuracy": np.mean(y == pred), "balanced_accuracy": recall.mean(), "macro_f1": f1.mean(),
                "weighted_f1": np.sum(f1 * support) / support.sum()}
    for key, value in expected.items():
        assert agg["pooled"][key] == pytest.approx(value), key
    assert abs(agg["mean"]["macro_f1"] - expected["macro_f1"]) > 0.01  # the folds' mean is another number


def test_scarce_means_strictly_below_the_fraction_of_the_median():
    # d is weak (F1 2/3); with 20 training clips against a median of 40 it is exactly at half, not below.
    advice = data_advice(_advice_metrics(), {"a": 40, "b": 40, "c": 40, "d": 20})
    assert len(advice) == 1 and "despite 20 training examples" in advice[0]
    assert "more data should help most" in data_advice(_advice_metrics(), {"a": 40, "b": 40, "c": 40, "d": 19})[0]


def test_chance_counts_the_classes_evaluated_not_the_models():
    """Balanced accuracy averages the recall of the classes the evaluated clips hold, so its chance level is one
    over their number. Evaluating a 3-class model on recordings of 2 of its classes (another site: no wren there),
    a model that answers owl for 6 of 8 clips of each scored 0.50, exactly chance, and was told 'chance is 0.33
    with 3 classes'; one at 0.56 was not called near chance at all (the edge with 3 classes is 0.50, with the 2
    evaluated 0.625). The first line said 'classes: 3' of clips of 2."""
    labels = ["owl", "robin", "wren"]
    coin = metrics_from_confusion([[6, 2, 0], [6, 2, 0], [0, 0, 0]], labels)  # balanced accuracy 0.50
    assert coin["balanced_accuracy"] == pytest.approx(0.5)
    lines = summary_lines(coin, class_counts=dict.fromkeys(labels, 20))
    assert lines[0] == "examples: 16  classes: 2 of the model's 3"
    assert ("the model scores near chance (balanced accuracy 0.50; chance is 0.50 with the 2 classes evaluated): "
            "as a whole it needs more training data or more updates") in "\n".join(lines)
    slightly = metrics_from_confusion([[6, 2, 0], [5, 3, 0], [0, 0, 0]], labels)  # 0.5625, below 0.625
    assert near_chance(slightly)
    # every class evaluated: as before
    every = metrics_from_confusion([[6, 2, 0], [5, 3, 0], [4, 0, 4]], labels)
    assert summary_lines(every, class_counts=dict.fromkeys(labels, 20))[0] == "examples: 24  classes: 3"
    # one class evaluated says nothing of chance (balanced accuracy is its recall)
    assert not near_chance(metrics_from_confusion([[1, 7, 0], [0, 0, 0], [0, 0, 0]], labels))


def test_validation_gap_weighs_each_set_by_its_own_clips():
    """The standard error of the gap is sqrt(val (1 - val) / n_val + test (1 - test) / n_test): each accuracy's
    spread over its own number of clips. 0.90 on 1000 validation clips against 0.70 on 20 test clips:
    sqrt(0.09 / 1000 + 0.21 / 20) = 0.103, twice that 0.206 above the gap of 0.20, so no line; the same accuracies
    on 20 validation and 1000 test clips: sqrt(0.09 / 20 + 0.21 / 1000) = 0.069, and the gap is read."""
    from sound_tf.metrics import validation_gap

    few_test, many_test = _per_class_right([7, 7], 10), _per_class_right([350, 350], 500)
    assert (few_test["accuracy"], few_test["num_examples"]) == (pytest.approx(0.70), 20)
    assert (many_test["accuracy"], many_test["num_examples"]) == (pytest.approx(0.70), 1000)
    assert validation_gap(few_test, {"accuracy": 0.90, "num_examples": 1000}) is None
    assert validation_gap(many_test, {"accuracy": 0.90, "num_examples": 20}).startswith(
        "test accuracy 0.70 (1000 clips) is far below validation accuracy 0.90 (20 clips)")


def test_validation_gap_only_for_a_test_score_below_a_finite_validation_score():
    """A test accuracy far above the validation accuracy is no sign that validation overstates the model, and a
    validation accuracy that is NaN or infinite (a history of a run that diverged) measures nothing."""
    from sound_tf.metrics import validation_gap

    high = _per_class_right([45, 45], 50)  # 0.90 on 100 clips
    assert validation_gap(high, {"accuracy": 0.50, "num_examples": 100}) is None
    low = _per_class_right([25, 25], 50)  # 0.50 on 100 clips
    assert validation_gap(low, {"accuracy": 0.90, "num_examples": 100}) is not None  # the same gap the right way
    for bad in (float("nan"), float("inf")):
        assert validation_gap(low, {"accuracy": bad, "num_examples": 100}) is None


def test_validation_gap_of_exactly_gap_min_is_read():
    """'at least 0.15' (the README): 0.35 against 0.20 is 0.1499999... in floating point, and Keras logs a validation
    accuracy of 0.45 (90 of 200 clips) as float32, 0.44999998807907104; against 0.30 on 200 test clips (twice the
    standard error 0.096) both gaps of 0.15 were not read, while 0.45 - 0.30 in float64 was. 0.149 is not a gap."""
    from sound_tf.metrics import GAP_MIN, validation_gap

    test = _per_class_right([30, 30], 100)  # 0.30 on 200 clips
    assert float(np.float32(0.45)) - 0.30 < GAP_MIN and 0.35 - 0.20 < GAP_MIN  # what the comparison saw
    assert validation_gap(test, {"accuracy": float(np.float32(0.45)), "num_examples": 200}) is not None
    assert validation_gap(test, {"accuracy": 0.45, "num_examples": 200}) is not None
    assert validation_gap(_per_class_right([20, 20], 100), {"accuracy": 0.35, "num_examples": 200}) is not None
    assert validation_gap(test, {"accuracy": 0.449, "num_examples": 200}) is None


def test_near_chance_edge_is_a_quarter_of_the_way_from_chance_to_one():
    """The edge is chance + 0.25 (1 - chance): 0.4375 with 4 classes (not 0.25 + 0.25 x 0.25 = 0.3125), 0.325 with
    10. 13 of 40 clips right in each of 10 classes is balanced accuracy 0.32500000000000007 in floating point, and
    was not called chance level; 14 of 40 in one class is past the edge."""
    four = metrics_from_confusion([[7, 9, 0, 0], [9, 7, 0, 0], [0, 0, 7, 9], [0, 0, 9, 7]], list("abcd"))
    assert four["balanced_accuracy"] == pytest.approx(7 / 16) and near_chance(four)
    past = metrics_from_confusion([[8, 8, 0, 0], [9, 7, 0, 0], [0, 0, 7, 9], [0, 0, 9, 7]], list("abcd"))
    assert past["balanced_accuracy"] == pytest.approx(29 / 64) and not near_chance(past)
    cm = 13 * np.eye(10, dtype=int) + 27 * np.roll(np.eye(10, dtype=int), 1, axis=1)  # class i's misses go to i + 1
    ten = metrics_from_confusion(cm, [f"c{i}" for i in range(10)])
    assert ten["balanced_accuracy"] == pytest.approx(0.325) and near_chance(ten)
    cm[0] = [14, 26] + [0] * 8
    assert not near_chance(metrics_from_confusion(cm, [f"c{i}" for i in range(10)]))
    # one class has no chance level to be near (chance would be 1.00, and every score at it)
    with warnings.catch_warnings():  # scikit-learn: "A single label was found in 'y_true' and 'y_pred'"
        warnings.simplefilter("ignore", UserWarning)
        one = compute_metrics([0, 0, 0], np.ones((3, 1)), ["a"])
    assert one["balanced_accuracy"] == 1.0 and not near_chance(one)
    assert not any("near chance" in line for line in summary_lines(one))


def test_summary_head_and_weakest_lines_put_each_number_under_its_name():
    """Accuracy 9/13, balanced accuracy (4/6 + 1 + 2/4) / 3 and macro F1 differ here (the hand-counted matrix of
    test_precision_and_recall_are_not_interchangeable), so a line printing one under another's name shows; the
    top-1 accuracy is the accuracy and is not printed twice."""
    y_true = [0] * 6 + [1] * 3 + [2] * 4
    y_pred = [0, 0, 0, 0, 1, 1] + [1, 1, 1] + [0, 1, 2, 2]
    runner_up = [(p + 1) % 3 for p in y_pred]  # the second-best score of each clip
    m = compute_metrics(y_true, np.eye(3)[y_pred] + 0.1 * np.eye(3)[runner_up], LABELS, top_k=(1, 2))
    f1 = {"cat": 2 * (4 / 5) * (4 / 6) / (4 / 5 + 4 / 6), "dog": 2 * (3 / 6) / (3 / 6 + 1),
          "bird": 2 * (2 / 4) / (1 + 2 / 4)}
    macro, balanced = sum(f1.values()) / 3, (4 / 6 + 1 + 2 / 4) / 3
    top2 = np.mean([t in (p, r) for t, p, r in zip(y_true, y_pred, runner_up)])
    assert m["macro_f1"] == pytest.approx(macro) and m["top_k_accuracy"]["top_2"] == pytest.approx(top2)
    lines = summary_lines(m)
    assert lines[:2] == ["examples: 13  classes: 3",
                         f"accuracy {9 / 13:.4f}  balanced accuracy {balanced:.4f}  macro F1 {macro:.4f}  "
                         f"top-2 {top2:.4f}"]
    assert lines[2:5] == ["weakest classes:", "  bird: F1 0.67, precision 1.00, recall 0.50, support 4",
                          "  dog: F1 0.67, precision 0.50, recall 1.00, support 3"]
    # a class without test clips is one of the model's classes all the same, and not one evaluated
    frog = compute_metrics(Y_TRUE, np.concatenate([SCORES, np.zeros((10, 1))], axis=1), LABELS + ["frog"])
    assert summary_lines(frog)[0] == "examples: 10  classes: 3 of the model's 4"


def test_weakest_classes_break_an_f1_and_recall_tie_by_fewer_test_examples():
    # a: 2 of 4 right, 2 of 4 predictions right; b: 1 of 2 and 1 of 2: both F1 and recall 1/2. b has fewer test
    # examples, so its score is the less certain one and it comes first although its name sorts later.
    m = metrics_from_confusion([[2, 1, 1], [1, 1, 0], [1, 0, 5]], ["a", "b", "c"])
    assert m["per_class"]["a"]["f1"] == m["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["a"]["recall"] == m["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert [r["label"] for r in weakest_classes(m, n=3)] == ["b", "a", "c"]


def test_no_confused_pairs_asked_for_is_not_no_confusions():
    """top=0 lists no pair (and is no error); summary_lines(n_pairs=0) said 'no confusions: every example was
    classified correctly' of 3 clips in 10 misclassified."""
    m = compute_metrics(Y_TRUE, SCORES, LABELS)
    assert confused_pairs(m["confusion_matrix"], LABELS, top=0) == []
    lines = summary_lines(m, n_pairs=0)
    assert not any("confus" in line for line in lines)
    perfect = metrics_from_confusion(np.eye(3, dtype=int) * 4, LABELS)
    assert "no confusions: every example was classified correctly" in summary_lines(perfect, n_pairs=0)


def test_fold_aggregate_takes_the_top_k_every_fold_has():
    """A fold scored without top-k (a pooled matrix, metrics_from_confusion) or with fewer ranks: the mean and std
    keep the scalars every fold has, top_2 too, and leave out top_3 (one fold's, not a mean over folds)."""
    labels = ["a", "b", "c", "d"]
    one = compute_metrics(Y_TRUE, np.concatenate([SCORES, np.zeros((10, 1))], axis=1), labels, top_k=(1, 2, 3))
    two = compute_metrics(Y_TRUE, np.concatenate([SCORES, np.zeros((10, 1))], axis=1), labels, top_k=(1, 2))
    agg = aggregate_folds([one, two])
    assert sorted(agg["mean"]) == sorted(["accuracy", "balanced_accuracy", "macro_f1", "micro_f1", "weighted_f1",
                                          "top_1", "top_2"])
    assert agg["mean"]["top_2"] == pytest.approx(0.9) and agg["std"]["top_2"] == pytest.approx(0.0)
    bare = aggregate_folds([one, metrics_from_confusion(one["confusion_matrix"], labels)])
    assert "top_1" not in bare["mean"] and bare["mean"]["accuracy"] == pytest.approx(0.7)


def test_metrics_from_an_all_zero_confusion_matrix_is_refused():
    with pytest.raises(MetricsError, match="the confusion matrix is all zeros: no examples"):
        metrics_from_confusion([[0, 0], [0, 0]], ["a", "b"])


def test_metrics_json_refuses_nan_and_leaves_no_file(tmp_path):
    """NaN is no JSON (browsers' JSON.parse and jq refuse the file): a NaN score is an error, not a metrics.json
    that only Python reads back."""
    with pytest.raises(ValueError, match="JSON compliant"):
        write_metrics_json(tmp_path / "metrics.json", {"accuracy": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_errors_csv_ties_on_the_score_are_listed_by_path(tmp_path):
    # three mistakes of the same confidence, given out of path order: the file lists them by path
    scores = np.array([[0.2, 0.8], [0.2, 0.8], [0.9, 0.1], [0.2, 0.8]])
    assert write_errors_csv(tmp_path / "errors.csv", ["c.wav", "a.wav", "d.wav", "b.wav"], [0, 0, 0, 0], scores,
                            ["x", "y"]) == 3
    with (tmp_path / "errors.csv").open(newline="") as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == ["a.wav", "b.wav", "c.wav"]


def test_data_advice_without_training_counts_leaves_out_a_class_without_test_clips():
    """Without class_counts the test support stands in; a class with no test clips has no score to judge, and
    'no evaluated examples at all; add some before judging it' would be advice about the test split, not data."""
    m = compute_metrics(Y_TRUE, np.concatenate([SCORES, np.zeros((10, 1))], axis=1), LABELS + ["frog"])
    assert not any("frog" in text for text in data_advice(m))
    assert data_advice(m, {"cat": 40, "dog": 40, "bird": 40})[0].startswith("frog: no training examples at all")


def test_data_advice_lists_weak_classes_before_scarce_ones_and_the_lowest_f1_first():
    """The docstring's order: weak and scarce, then weak with a typical amount of data, then scarce; within a group
    the lowest F1 first."""
    # d is weak with 50 clips (F1 2/3 against macro 0.84); c is scarce (10 against a median of 50) and scores 1.00
    advice = data_advice(_advice_metrics(), {"a": 50, "b": 50, "c": 10, "d": 50})
    assert [text.split(":")[0] for text in advice] == ["d", "c"]
    assert "despite 50 training examples" in advice[0] and "more reliable" in advice[1]
    # two weak classes with 50 clips each: e (3 of 10 right, F1 0.46) before d (4 of 10, F1 0.57)
    m = metrics_from_confusion([[10, 0, 0, 0, 0], [0, 10, 0, 0, 0], [0, 0, 10, 0, 0], [0, 6, 0, 4, 0],
                                [7, 0, 0, 0, 3]], list("abcde"))
    f1 = {label: m["per_class"][label]["f1"] for label in "de"}
    assert f1 == {"d": pytest.approx(2 * 0.4 / 1.4), "e": pytest.approx(2 * 0.3 / 1.3)}
    assert max(f1.values()) < m["macro_f1"] - 0.10  # both weak
    advice = data_advice(m, dict.fromkeys("abcde", 50))
    assert [text.split(":")[0] for text in advice] == ["e", "d"]


def test_an_evaluation_of_few_clips_says_how_roughly_they_measure_the_accuracy():
    """A hobbyist's run (session 50's novice walkthrough) evaluated 7 test recordings and printed 'accuracy 1.0000'
    with nothing of how little 7 clips tell; under 30 clips a note now gives what one clip is worth and the Wilson
    interval of the accuracies the count fits (values checked against the closed form: 7 of 7 gives
    1 / (1 + z^2 / 7) = 0.6457 and 1.0; 6 of 9 gives 0.3542 and 0.8794)."""
    from sound_tf.metrics import FEW_CLIPS, few_clips_note, wilson_interval

    z2 = 1.959964 ** 2
    assert wilson_interval(7, 7) == pytest.approx((1 / (1 + z2 / 7), 1.0))
    assert wilson_interval(6, 9) == pytest.approx((0.354202, 0.879416), abs=1e-6)
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and high == pytest.approx(z2 / 5 / (1 + z2 / 5))
    assert few_clips_note(7, 7) == ("note: 7 clips are few to measure a model on: one clip is 14.3 points of "
                                    "accuracy, and 7 right of 7 fits any accuracy from 0.65 to 1.00 (95% Wilson "
                                    "interval); more recordings give a steadier figure")
    assert few_clips_note(1, 1).startswith("note: 1 clip is few to measure a model on: one clip is 100.0 points")
    assert few_clips_note(27, FEW_CLIPS - 1) is not None
    assert few_clips_note(27, FEW_CLIPS) is None and few_clips_note(0, 0) is None
    with pytest.raises(ValueError, match="total must be 1 or more, got 0"):
        wilson_interval(0, 0)
