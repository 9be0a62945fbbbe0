"""Classification metrics that explain a model: scores, confusions, weak classes and data advice.

NumPy in, JSON-ready dicts and CSV/JSON files out. The numbers come from scikit-learn (top-k accuracy
is ranked here, with ties in the argmax's order); this module adds the analysis around them (which pairs
are confused, which classes are weak, which would profit from more data) and the files ``evaluate`` and
``crossval`` write.

This module must never import TensorFlow or Keras: it is used by reports and by tools that only read
saved predictions.

Examples
--------
>>> import numpy as np
>>> y_true = np.array([0, 0, 1, 2])
>>> scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]])
>>> m = compute_metrics(y_true, scores, ["dog", "cat", "bird"])
>>> m["accuracy"], m["confusion_matrix"][0]
(0.75, [1, 1, 0])
>>> confused_pairs(m["confusion_matrix"], m["labels"])[0]["predicted"]
'cat'
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import atomic
from .errors import SoundTFError, counted, is_whole

#: Scalar metrics averaged across cross-validation folds (``top_k_accuracy`` entries are added).
SCALAR_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "micro_f1", "weighted_f1")


class MetricsError(SoundTFError, ValueError):
    """Predictions, labels or metric dicts that do not fit together."""


# -- computing ---------------------------------------------------------------------------------------
def _as_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, (str, bytes, Mapping, set, frozenset)):
        # a string would be split into its characters, a set or dict taken in an order the columns need not have
        raise MetricsError(f"labels must be a sequence of class names in column order (a list or tuple), got a "
                           f"{type(labels).__name__}: {labels!r:.80}")
    labels = [str(label) for label in labels]
    if not labels:
        raise MetricsError("labels is empty: at least one class name is needed")
    if len(set(labels)) != len(labels):
        dupes = sorted({label for label in labels if labels.count(label) > 1})
        raise MetricsError(f"labels must be unique, got duplicates {dupes}")
    return labels


def _check_inputs(y_true: Any, scores: Any, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate and convert ``(y_true [n], scores [n, classes], labels [classes])``."""
    labels = _as_labels(labels)
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.ndim != 1:
        raise MetricsError(f"y_true must be 1-D [examples], got shape {y_true.shape}")
    if scores.ndim != 2:
        raise MetricsError(f"scores must be 2-D [examples, classes], got shape {scores.shape}")
    if scores.shape[0] != y_true.shape[0]:
        raise MetricsError(f"y_true has {y_true.shape[0]} examples but scores has {scores.shape[0]} rows")
    if scores.shape[1] != len(labels):
        raise MetricsError(f"scores has {scores.shape[1]} columns but there are {len(labels)} labels")
    if y_true.shape[0] == 0:
        raise MetricsError("no examples to evaluate (y_true is empty)")
    if not np.issubdtype(y_true.dtype, np.integer):
        if not (np.issubdtype(y_true.dtype, np.floating) and np.all(np.mod(y_true, 1) == 0)):
            raise MetricsError(f"y_true must hold integer class indices, got dtype {y_true.dtype}")
    y_true = y_true.astype(np.int64)
    bad = (y_true < 0) | (y_true >= len(labels))
    if bad.any():
        raise MetricsError(f"y_true holds class indices outside [0, {len(labels) - 1}]: "
                           f"{sorted(set(y_true[bad].tolist()))[:10]}")
    if not np.all(np.isfinite(scores)):
        rows = np.flatnonzero(~np.all(np.isfinite(scores), axis=1))
        raise MetricsError(f"scores contain NaN or infinity in rows {rows[:10].tolist()}")
    return y_true, scores, labels


def _label_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Every metric that needs only true and predicted class indices."""
    # scikit-learn here, not at the top: it took 1.2-1.6 s to import, which compare paid (it reads fold metrics with
    # near_chance and never computes one)
    from sklearn.metrics import (balanced_accuracy_score, confusion_matrix as sk_confusion_matrix, f1_score,
                                 precision_recall_fscore_support)

    classes = list(range(len(labels)))
    cm = sk_confusion_matrix(y_true, y_pred, labels=classes)  # [classes, classes], rows = true
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0)
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected when a split lacks a class.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(balanced),
        # labels=None: macro over the classes seen in y_true or y_pred, so a class missing from the
        # evaluation split neither helps nor hurts, while predicting an absent class still costs.
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, labels=classes, average="micro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0)),
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.astype(int).tolist(),
        "labels": list(labels),
        "num_examples": int(y_true.shape[0]),
    }


def _top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the ``k`` best scores, ties ranked in class order.

    The order argmax, ``errors.csv`` and every ``top_k`` answer use (a stable sort of the scores, the
    lower class index first among equal scores), so the top-1 accuracy is the accuracy and top-k never
    falls below it. scikit-learn's ``top_k_accuracy_score`` ranks tied scores the other way round (the
    higher index first): with every score equal it found the true class 0 in no top-3 although argmax
    predicted it.
    """
    rows = np.arange(y_true.shape[0])  # [examples]
    true_score = scores[rows, y_true][:, None]  # [examples, 1]
    before = np.arange(scores.shape[1])[None, :] < y_true[:, None]  # [examples, classes]: classes ranked first on a tie
    rank = np.sum((scores > true_score) | ((scores == true_score) & before), axis=1)  # [examples], 0 = the best
    return float(np.mean(rank < k))


def compute_metrics(y_true: Any, scores: Any, labels: Sequence[str], *,
                    top_k: Iterable[int] = (1, 3, 5)) -> dict[str, Any]:
    """Every evaluation number for one set of predictions, as a JSON-ready dict.

    Parameters
    ----------
    y_true : array-like of int, shape [examples]
        True class indices into ``labels``.
    scores : array-like of float, shape [examples, classes]
        Probabilities or logits; the prediction is the argmax, top-k accuracy ranks the scores (equal
        scores in class order, the lower index first, as argmax takes the first of equal scores).
    labels : sequence of str
        Class names, one per column of ``scores``.
    top_k : iterable of int
        Ranks for ``top_k_accuracy``; only ``k < classes`` are reported (``top_1`` is the accuracy).

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (mean recall over classes present in ``y_true``),
        ``macro_f1`` (over classes present in ``y_true`` or predicted), ``micro_f1``, ``weighted_f1``,
        ``top_k_accuracy`` (``{"top_3": ...}``), ``per_class`` (``{label: {precision, recall, f1,
        support}}``, every label, absent ones with support 0), ``confusion_matrix`` (list of lists,
        rows = true class, columns = predicted, every label), ``labels`` and ``num_examples``.

    Raises
    ------
    MetricsError
        When shapes, class indices or labels do not fit together, or scores are not finite.
    """
    y_true, scores, labels = _check_inputs(y_true, scores, labels)
    ranks = list(top_k) if isinstance(top_k, Iterable) and not isinstance(top_k, (str, bytes)) else None
    if ranks is None or any(not is_whole(k) or k < 1 for k in ranks):
        # int(2.7) was top_2, int("3") top_3, and top_k=3 failed with "'int' object is not iterable"
        raise MetricsError(f"top_k must be a sequence of integer ranks >= 1, e.g. (1, 3, 5), got {top_k!r}")
    ks = sorted({int(k) for k in ranks})
    y_pred = np.argmax(scores, axis=1)  # [examples]
    result = _label_metrics(y_true, y_pred, labels)
    top: dict[str, float] = {}
    for k in ks:
        if k >= len(labels):
            continue
        if k == 1:
            top["top_1"] = result["accuracy"]  # argmax; also defined for two classes
        else:
            top[f"top_{k}"] = _top_k_accuracy(y_true, scores, k)
    ordered = {key: result[key] for key in SCALAR_METRICS}
    ordered["top_k_accuracy"] = top
    ordered.update({key: result[key] for key in ("per_class", "confusion_matrix", "labels", "num_examples")})
    return ordered


def metrics_from_confusion(confusion_matrix: Any, labels: Sequence[str]) -> dict[str, Any]:
    """The label-only metrics of :func:`compute_metrics` recomputed from a confusion matrix.

    Used for the pooled confusion matrix of cross-validation. There are no scores, so there is no
    ``top_k_accuracy``.

    Parameters
    ----------
    confusion_matrix : array-like of int, shape [classes, classes]
        Rows = true class, columns = predicted class.
    labels : sequence of str
        Class names in matrix order.
    """
    labels = _as_labels(labels)
    cm = _check_confusion(confusion_matrix, labels)
    n = len(labels)
    true_idx = np.repeat(np.repeat(np.arange(n), n), cm.ravel())  # [examples]
    pred_idx = np.repeat(np.tile(np.arange(n), n), cm.ravel())  # [examples]
    if true_idx.size == 0:
        raise MetricsError("the confusion matrix is all zeros: no examples")
    return _label_metrics(true_idx, pred_idx, labels)


def _check_confusion(confusion_matrix: Any, labels: Sequence[str]) -> np.ndarray:
    cm = np.asarray(confusion_matrix)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise MetricsError(f"a confusion matrix must be square [classes, classes], got shape {cm.shape}")
    if cm.shape[0] != len(labels):
        raise MetricsError(f"the confusion matrix is {cm.shape[0]}x{cm.shape[1]} but there are {len(labels)} labels")
    if cm.size and (not np.all(np.mod(cm, 1) == 0) or cm.min() < 0):
        raise MetricsError("a confusion matrix must hold non-negative integer counts")
    return cm.astype(np.int64)


# -- analysis ----------------------------------------------------------------------------------------
def confused_pairs(confusion_matrix: Any, labels: Sequence[str], *, top: int | None = None) -> list[dict[str, Any]]:
    """The off-diagonal cells of a confusion matrix, worst first.

    Parameters
    ----------
    confusion_matrix : array-like of int, shape [classes, classes]
        Rows = true class, columns = predicted class.
    labels : sequence of str
        Class names in matrix order.
    top : int, optional
        Keep only the first ``top`` pairs.

    Returns
    -------
    list of dict
        ``{"true", "predicted", "count", "rate"}`` where ``rate = count / support of the true class``;
        zero counts are dropped. Ordered by count (descending), then rate (descending), then the true
        and predicted names (ascending), so ties are stable.
    """
    labels = _as_labels(labels)
    cm = _check_confusion(confusion_matrix, labels)
    support = cm.sum(axis=1)  # [classes]
    pairs = []
    for i, j in zip(*np.nonzero(cm)):
        if i == j:
            continue
        count = int(cm[i, j])
        pairs.append({"true": labels[i], "predicted": labels[j], "count": count,
                      "rate": float(count / support[i])})
    pairs.sort(key=lambda p: (-p["count"], -p["rate"], p["true"], p["predicted"]))
    if top is not None:
        if top < 0:
            raise MetricsError(f"top must be >= 0, got {top}")
        pairs = pairs[:top]
    return pairs


def _per_class(metrics: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    per_class = metrics.get("per_class") if isinstance(metrics, Mapping) else None
    if not isinstance(per_class, Mapping):
        raise MetricsError("metrics must be a dict from compute_metrics with a 'per_class' entry")
    return per_class


def weakest_classes(metrics: Mapping[str, Any], n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` classes with the lowest F1 among those with test examples.

    Ties are broken by lower recall, then fewer test examples, then name. Classes without test
    examples (support 0) have no measured score and are left out.

    Returns
    -------
    list of dict
        ``{"label", "precision", "recall", "f1", "support"}``, weakest first.
    """
    rows = [{"label": label, **{k: stats[k] for k in ("precision", "recall", "f1", "support")}}
            for label, stats in _per_class(metrics).items() if stats["support"] > 0]
    rows.sort(key=lambda r: (r["f1"], r["recall"], r["support"], r["label"]))
    return rows[:max(int(n), 0)]


def data_advice(metrics: Mapping[str, Any], class_counts: Mapping[str, int] | None = None, *,
                f1_margin: float = 0.10, scarce_fraction: float = 0.5,
                min_test_support: int = 5, count_name: str | None = None) -> list[str]:
    """Which classes would benefit from more data, in sentences a user can act on.

    The rule, per class (``count`` = its training examples from ``class_counts``; a label missing
    there counts 0; without ``class_counts`` the test support stands in):

    - *weak*: it has test examples and ``f1 < macro_f1 - f1_margin`` (clearly below the average
      class).
    - *scarce*: ``count < scarce_fraction * median count`` over all classes.

    Weak and scarce classes are the prime candidates for more data and come first. Weak classes with
    a typical amount of data get advice naming their main confusion (more *varied* data or cleaner
    labels, rather than just more). Scarce classes that score at least the macro F1 are mentioned because
    their score is less reliable; scarce ones below it (but not clearly: all of a model near chance) as
    needing the data. A class with fewer than ``min_test_support`` test examples is flagged as
    uncertain, and a class with no training data at all always is listed. Within each group the
    lowest F1 comes first.

    Parameters
    ----------
    metrics : dict
        Output of :func:`compute_metrics` (or :func:`metrics_from_confusion`).
    class_counts : mapping of str to int, optional
        Training examples per class.
    f1_margin, scarce_fraction : float
        Thresholds of the rule above.
    min_test_support : int
        Below this many test examples a class's score is called uncertain.
    count_name : str, optional
        What ``class_counts`` counts, as the sentences name it: ``"training examples"`` by default, or
        e.g. ``"clips in the dataset"`` for counts that are not one model's training split.

    Returns
    -------
    list of str
        One sentence per flagged class; empty when no class stands out.
    """
    per_class = _per_class(metrics)
    if class_counts is None:
        counts = {label: int(stats["support"]) for label, stats in per_class.items()}
        count_name = "evaluated examples"
    else:
        unknown = sorted(set(class_counts) - set(per_class))
        if unknown:
            raise MetricsError(f"class_counts names classes the metrics do not have: {unknown[:10]}")
        counts = {label: int(class_counts.get(label, 0)) for label in per_class}
        count_name = count_name or "training examples"
    median = float(np.median(list(counts.values())))
    macro = float(metrics.get("macro_f1", np.mean([s["f1"] for s in per_class.values() if s["support"] > 0])))
    cm = metrics.get("confusion_matrix")
    pairs = confused_pairs(cm, list(per_class)) if cm is not None else []
    worst_confusion = {}
    for pair in pairs:  # worst first, so the first seen per true class wins
        worst_confusion.setdefault(pair["true"], pair)

    groups: dict[str, list[tuple[float, str]]] = {"none": [], "both": [], "weak": [], "scarce": []}
    for label, stats in per_class.items():
        count, f1, support = counts[label], float(stats["f1"]), int(stats["support"])
        weak = support > 0 and f1 < macro - f1_margin
        scarce = count < scarce_fraction * median
        uncertain = f" (only {counted(support, 'evaluated examples')}, so the score is uncertain)" \
            if 0 < support < min_test_support else ""
        confusion = worst_confusion.get(label)
        confused = (f", most often mistaken for {confusion['predicted']} ({confusion['count']}x)"
                    if confusion else "")
        if count == 0 and class_counts is not None:
            groups["none"].append((f1, f"{label}: no {count_name} at all; add some before judging it."))
        elif weak and scarce:
            groups["both"].append((f1, f"{label}: F1 {f1:.2f} (macro {macro:.2f}) with {counted(count, count_name)} "
                                       f"(median {median:g}){confused}; more data should help most{uncertain}."))
        elif weak:
            groups["weak"].append((f1, f"{label}: F1 {f1:.2f} (macro {macro:.2f}) despite {counted(count, count_name)}"
                                       f"{confused}; add more varied examples or check its labels{uncertain}."))
        elif scarce and support > 0 and f1 >= macro:
            groups["scarce"].append((f1, f"{label}: only {counted(count, count_name)} (median {median:g}) though "
                                         f"F1 is {f1:.2f}; more data would make its score more reliable{uncertain}."))
        elif scarce and support > 0:  # below the average class, if not clearly (all are low near chance): not reliable,
            # it scores poorly ('though F1 is 0.00; more data would make its score more reliable' read as praise)
            groups["scarce"].append((f1, f"{label}: only {counted(count, count_name)} (median {median:g}) and F1 "
                                         f"{f1:.2f} (macro {macro:.2f}){confused}; more data should help it"
                                         f"{uncertain}."))
    advice = []
    for name in ("none", "both", "weak", "scarce"):
        advice.extend(text for _, text in sorted(groups[name], key=lambda item: (item[0], item[1])))
    return advice


#: :func:`validation_gap`: a test accuracy this far (absolute) below the validation accuracy is called a gap. Below
#: it, a few points between two small sets of clips are the usual difference of two draws, not clips of another kind.
GAP_MIN = 0.15
#: :func:`validation_gap`: fewer test or validation clips than this say nothing about a gap (with 20 clips one clip
#: is 5 points), and above it the gap must also be twice its standard error (two proportions, each
#: ``sqrt(p(1-p)/n)``): 0.74 against 0.22 on 50 clips each is 6 of them, while 0.60 against 0.40 on 30 each is 1.6.
GAP_MIN_CLIPS = 20


def validation_gap(metrics: Mapping[str, Any], validation: Mapping[str, Any] | None) -> str | None:
    """A line when the test accuracy in ``metrics`` is far below the validation accuracy of the same model
    (``validation``: ``{"accuracy", "num_examples"}``, the kept epoch's, and ``"held_apart"`` when the split keeps
    speakers apart already, :func:`~sound_tf.datasets.folds_held_apart`: no group column is advised), ``None``
    otherwise: the test clips are of another kind than the validation clips (other speakers, recordings or folds),
    so validation overstates what the model does on new data, and advice to add data does not reach the cause. Fires
    when the gap is at least :data:`GAP_MIN` and twice its standard error, with :data:`GAP_MIN_CLIPS` clips in each
    set or more."""
    if not validation or "accuracy" not in metrics:
        return None
    try:
        val, test = float(validation["accuracy"]), float(metrics["accuracy"])
        n_val, n_test = int(validation["num_examples"]), int(metrics["num_examples"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (np.isfinite(val) and np.isfinite(test)) or min(n_val, n_test) < GAP_MIN_CLIPS:
        return None
    gap = round(val - test, 6)  # 0.35 - 0.20 is 0.1499999..., and Keras logs 0.45 as 0.44999998807907104 (float32)
    error = float(np.sqrt(val * (1 - val) / n_val + test * (1 - test) / n_test))
    if gap < GAP_MIN or gap < 2 * error:
        return None
    if validation.get("held_apart"):  # the data's own folds: a group column or folds would change nothing
        return (f"test accuracy {test:.2f} ({n_test} clips) is far below validation accuracy {val:.2f} ({n_val} "
                f"clips): validation and test are {validation['held_apart']}, so training shares no speaker or "
                f"recording with them; the test clips differ from the validation clips in another way (their "
                f"speakers or recording conditions, or a draw of few clips), and validation, which chose the kept "
                f"epoch, overstates what the model does on new data. `python -m sound_tf.crossval` measures over "
                f"several held-out sets (the data's folds, or --k K) how far a score moves from one to another")
    return (f"test accuracy {test:.2f} ({n_test} clips) is far below validation accuracy {val:.2f} ({n_val} clips): "
            f"the test clips differ from the validation clips (other speakers, recordings or folds), so validation "
            f"overstates what the model does on new data. If validation shares speakers or recordings with training, "
            f"keep each in one split (a CSV's group column, or a fold column with --test-fold and --val-fold); "
            f"`python -m sound_tf.crossval` measures over several held-out groups (the data's folds, or --k K)")


def headline(metrics: Mapping[str, Any]) -> str:
    """``accuracy 0.8000  balanced accuracy 0.7500  macro F1 0.7400`` (and each top-k accuracy beyond top-1) of
    :func:`compute_metrics`' output: the scores line of :func:`summary_lines`, and ``evaluate --quiet``'s one line."""
    head = [f"accuracy {metrics['accuracy']:.4f}", f"balanced accuracy {metrics['balanced_accuracy']:.4f}",
            f"macro F1 {metrics['macro_f1']:.4f}"]
    head += [f"{name.replace('_', '-')} {value:.4f}"
             for name, value in metrics.get("top_k_accuracy", {}).items() if name != "top_1"]
    return "  ".join(head)


@dataclass(frozen=True)
class FitWording:
    """How :func:`summary_lines` words its advice to a model that overfit (:func:`overfit`) or underfit
    (:func:`underfit`). The defaults are ``python -m sound_tf.train``'s, of the run it trained;
    ``python -m sound_tf.tune`` names its best trial and what its search varied (:func:`sound_tf.tune.fit_wording`).

    Attributes
    ----------
    model : str, optional
        The model the advice concerns, as its subject (``None``: the run's own, "it").
    overfit_remedies : str, optional
        What a model that overfit is told to try, after "try " (``None``: :func:`augmentation_advice`, a smaller
        model or more training data).
    underfit_remedies : str, optional
        What a model that underfits is told to try, after "try " (``None``: more epochs, a larger model, or
        ``--no-augment``).
    rerun : str, optional
        How the settings those remedies name are changed without the rerun being refused, in parentheses after them
        (``None``: :data:`TRAIN_RERUN`, a new ``--out`` or ``--overwrite``).
    """

    model: str | None = None
    overfit_remedies: str | None = None
    underfit_remedies: str | None = None
    rerun: str | None = None


#: :class:`FitWording`'s default ``rerun``: ``python -m sound_tf.train`` refuses an ``--out`` that holds a finished
#: run ("holds a finished run; pass --overwrite or choose another --out"), so the advice to train again with
#: ``--epochs`` or ``model.widths`` changed, followed with the run's own ``--out``, was refused.
TRAIN_RERUN = ("in a new run: a new --out, or --overwrite to replace this one; an --out that holds a finished run "
               "is refused")


def _remedies(remedies: str, wording: FitWording) -> str:
    """``remedies`` (what a model is told to try) and how to rerun with them (``wording.rerun``) in parentheses."""
    return f"{remedies} ({wording.rerun or TRAIN_RERUN})"


def _overfit_words(fit: Mapping[str, Any], wording: FitWording, *, subject: str) -> str:
    """``<subject> overfit its training clips: training accuracy reached ...; try ...``: what :func:`overfit`'s
    ``fit`` says of a run, with the remedies of ``wording`` (the near-chance line's reason, or a line of its own)."""
    # More updates do not help a model that learnt its training clips by heart: FSDD's fold 1 without augmentation
    # kept epoch 1 and was told to train longer.
    remedies = wording.overfit_remedies or (f"{augmentation_advice(fit.get('augmented'))}, a smaller model "
                                            f"(model.widths) or more training data")
    return (f"{wording.model or subject} overfit its training clips: training accuracy reached "
            f"{fit['train_accuracy']:.2f} by epoch {fit['epochs']} while validation accuracy was at most "
            f"{fit['val_accuracy']:.2f}, and the validation loss was lowest at epoch {fit['kept_epoch']} of "
            f"{fit['epochs']}, whose weights it keeps: more epochs will not help; try {_remedies(remedies, wording)}")


def summary_lines(metrics: Mapping[str, Any], *, class_counts: Mapping[str, int] | None = None,
                  n_weakest: int = 5, n_pairs: int = 5, n_advice: int = 8,
                  count_name: str | None = None, validation: Mapping[str, Any] | None = None,
                  fit_wording: FitWording | None = None) -> list[str]:
    """The console summary of an evaluation: headline scores, weak classes, confusions, data advice.

    Parameters
    ----------
    metrics : dict
        Output of :func:`compute_metrics`.
    class_counts : mapping of str to int, optional
        Training examples per class, for :func:`data_advice` (``count_name`` says what else they count).
    n_weakest, n_pairs, n_advice : int
        How many weakest classes, confused pairs and data-advice sentences to list (the number of
        further advice sentences is given).
    validation : mapping, optional
        The same model's validation ``accuracy`` and ``num_examples``, for :func:`validation_gap`; its
        ``overfit`` (:func:`overfit`), which turns the advice of a model near chance from more updates to less
        fitting, and gets a line of its own when the model is not near chance (with ``augmented``, whether the run
        augmented, the augmentation advice is to turn it on or to make it stronger); and its ``underfit``
        (:func:`underfit`, given for a run that augmented), which gets a line of its own. Both name how to rerun
        with the settings they advise (:attr:`FitWording.rerun`).
    fit_wording : FitWording, optional
        Whose model that advice concerns and what it tells the user to try (by default ``train``'s words).
    """
    wording = fit_wording or FitWording()
    total, evaluated = len(_per_class(metrics)), _evaluated_classes(metrics)
    classes = str(total) if evaluated == total else f"{evaluated} of the model's {total}"
    lines = [f"examples: {metrics.get('num_examples', '?')}  classes: {classes}", headline(metrics)]
    weakest = weakest_classes(metrics, n_weakest)
    if weakest:
        lines.append("weakest classes:")
        lines += [f"  {r['label']}: F1 {r['f1']:.2f}, precision {r['precision']:.2f}, recall {r['recall']:.2f}, "
                  f"support {r['support']}" for r in weakest]
    pairs = confused_pairs(metrics["confusion_matrix"], metrics["labels"], top=n_pairs)
    if pairs:
        lines.append("most confused pairs (true -> predicted):")
        lines += [f"  {p['true']} -> {p['predicted']}: {p['count']} ({p['rate']:.0%} of {p['true']})"
                  for p in pairs]
    elif not confused_pairs(metrics["confusion_matrix"], metrics["labels"], top=1):  # not n_pairs=0
        lines.append("no confusions: every example was classified correctly")
    advice = data_advice(metrics, class_counts, count_name=count_name)
    if (gap := validation_gap(metrics, validation)) is not None:  # before the advice to add data: it is not the cause
        lines.append(gap)
    fit = (validation or {}).get("overfit")
    if near_chance(metrics):  # first: advice for single classes means little until the model learns at all
        which = f"{evaluated} classes" if evaluated == total else f"the {evaluated} classes evaluated"
        # overfit when its training accuracy is far from chance: more updates would fit its training clips further
        why = (_overfit_words(fit, wording, subject="it") if fit and not _at_chance(float(fit["train_accuracy"]),
                                                                                    1 / evaluated)
               else "as a whole it needs more training data or more updates (epochs, a smaller batch)")
        lines.append(f"the model scores near chance (balanced accuracy {metrics['balanced_accuracy']:.2f}; chance is "
                     f"{1 / evaluated:.2f} with {which}): {why}" + (", before more data for single classes" if advice
                                                                    else ", not one class"))
    elif fit:  # a model that learnt, less well than its training clips say (0.70 against 1.00) was told nothing of it
        lines.append(_overfit_words(fit, wording, subject="the model"))
    if (under := (validation or {}).get("underfit")) is not None:  # before the advice to add data: not learnt yet
        remedies = wording.underfit_remedies or ("more epochs (--epochs), a larger model (model.widths), or "
                                                 "--no-augment to check what augmentation costs this run")
        lines.append((f"{wording.model}: " if wording.model else "")
                     + f"training accuracy ended at {under['train_accuracy']:.2f} (epoch {under['epochs']}, on "
                     f"augmented clips) and validation accuracy was at most {under['val_accuracy']:.2f}: the model "
                     f"underfits, and augmentation, which was on, makes a short run or a small model learn slower; try "
                     + _remedies(remedies, wording))
    if advice:
        lines.append("classes that would benefit from more data:")
        lines += [f"  {text}" for text in advice[:n_advice]]
        if len(advice) > n_advice:
            lines.append(f"  ... and {counted(len(advice) - n_advice, 'more classes', one='more class')}")
    elif not near_chance(metrics):
        lines.append("no class stands out as needing more data")
    return lines


#: :func:`near_chance`: the share of the way from chance to a perfect balanced accuracy still called chance level.
NEAR_CHANCE_SHARE = 0.25


def _evaluated_classes(metrics: Mapping[str, Any]) -> int:
    """How many classes the evaluated clips hold (support above 0; a class without a support entry counts): the
    classes balanced accuracy averages its recall over, so its chance level is one over their number."""
    return sum(1 for scores in _per_class(metrics).values()
               if not isinstance(scores, Mapping) or scores.get("support") is None or scores["support"] > 0)


def chance_level(metrics: Mapping[str, Any]) -> float | None:
    """The balanced accuracy of guessing: one over the classes the evaluated clips of ``metrics`` hold
    (:func:`_evaluated_classes`), 0.10 with 10; ``None`` with fewer than two, where there is no guessing."""
    classes = _evaluated_classes(metrics)
    return 1.0 / classes if classes >= 2 else None


def near_chance(metrics: Mapping[str, Any]) -> bool:
    """Whether the balanced accuracy of ``metrics`` (two or more classes evaluated) is no more than
    :data:`NEAR_CHANCE_SHARE` of the way from chance (``1 / classes``) to 1: 0.44 with 4 classes, 0.33 with 10.
    There, classes are not weak against the others (what :func:`data_advice` looks for): they are all weak.
    The classes are those the evaluated clips hold (:func:`_evaluated_classes`), as balanced accuracy's are:
    a 3-class model evaluated on clips of 2 of its classes is at chance at 0.50, where 0.33 was used."""
    chance = chance_level(metrics)
    if chance is None or "balanced_accuracy" not in metrics:
        return False
    return _at_chance(float(metrics["balanced_accuracy"]), chance)


def _at_chance(score: float, chance: float) -> bool:
    """Whether ``score`` is no more than :data:`NEAR_CHANCE_SHARE` of the way from ``chance`` to 1."""
    # rounded: 13 of 40 clips right in each of 10 classes is 0.32500000000000007, the edge 0.325
    return round(score, 6) <= round(chance + NEAR_CHANCE_SHARE * (1.0 - chance), 6)


#: :func:`overfit`: epochs after the kept one (the lowest validation loss) with no lower loss before a run is called
#: overfit. FSDD by speaker without augmentation (6 epochs): fold 1's validation loss rose after epoch 1 for all five
#: epochs after it, while fold 3's rose for one epoch (2.38 to 2.60) and then fell to 1.28 by the last.
OVERFIT_EPOCHS_AFTER = 2
#: :func:`overfit`: how far the last epoch's training accuracy must be above the best validation accuracy of any
#: epoch. The same folds: fold 1 reached 0.90 against 0.27 (0.62 apart), the folds that learnt 0.88 against 0.75
#: (0.14) and 0.87 against 0.50 (0.36, another speaker's digits).
OVERFIT_ACCURACY_GAP = 0.4


def overfit(history: Mapping[str, Sequence[float]], kept: int) -> dict[str, Any] | None:
    """Whether a run's ``history`` (``history.csv``'s columns: ``accuracy``, ``val_accuracy``, ``val_loss``) shows a
    model that learnt its training clips and not what holds beyond them, with the weights of epoch ``kept`` (from 0,
    the lowest validation loss's) kept: at least :data:`OVERFIT_EPOCHS_AFTER` epochs trained after it (none with a
    lower validation loss), and the last epoch's training accuracy at least :data:`OVERFIT_ACCURACY_GAP` above the
    best validation accuracy of any epoch. Then ``{"kept_epoch", "epochs"`` (counted from 1)``, "train_accuracy",
    "val_accuracy"}`` (the last training accuracy, the best validation one), else ``None``: a run that kept its last
    epoch (its validation loss still falling) or whose training accuracy is as low as its validation accuracy is
    under-trained, if anything, and more updates may help it; a history without these columns says nothing."""
    train = [value for value in history.get("accuracy", []) if np.isfinite(value)]
    valid = [value for value in history.get("val_accuracy", []) if np.isfinite(value)]
    epochs = len(history.get("val_loss", []))
    if not train or not valid or not 0 <= kept < epochs or epochs - 1 - kept < OVERFIT_EPOCHS_AFTER:
        return None
    if round(train[-1] - max(valid), 6) < OVERFIT_ACCURACY_GAP:  # Keras logs 0.9 as 0.8999999761581421
        return None
    return {"kept_epoch": kept + 1, "epochs": epochs, "train_accuracy": float(train[-1]),
            "val_accuracy": float(max(valid))}


#: :func:`summary_lines`: the settings a user raises to make augmentation stronger, named in the advice to a model that
#: overfit with augmentation on (each is a field of :class:`sound_tf.config.AugmentConfig`; tested).
STRONGER_AUGMENT_KEYS = ("augment.noise_probability", "augment.pitch_probability", "augment.mixup_probability",
                         "augment.spec_time_mask_count")


def augmentation_advice(augmented: bool | None) -> str:
    """What an overfit model is told to try of augmentation: to turn it on when the run had it off
    (``augmented`` False: ``augment.enabled`` false, or no transform that acts, as a tuning space's
    ``augment_strength`` of 0 leaves it), to make it stronger when it was on, both when the run's config is
    unknown (``None``)."""
    if augmented is None:
        return "augmentation (--no-augment turns it off; stronger if it was on)"
    if not augmented:
        return "augmentation (it was off: train without --no-augment, with an augment.*_probability above 0)"
    keys = ", ".join(STRONGER_AUGMENT_KEYS[:-1]) + f" or {STRONGER_AUGMENT_KEYS[-1]}"
    return f"stronger augmentation (it was on: raise {keys})"


#: :func:`underfit`: the last epoch's training accuracy and the best validation accuracy both at most this. A model
#: whose training clips are nearly all right has little left to learn from them, and one that validates above it
#: (mixup's soft labels keep the training accuracy of a good model lower) is not held back in a way worth a line.
UNDERFIT_MAX_ACCURACY = 0.9
#: :func:`underfit`: the last epoch's training accuracy less than this above the best validation accuracy of any
#: epoch: training has not pulled away from validation (with augmentation the training clips are the harder ones,
#: and it is often below). The FSDD folds that learnt (without augmentation) ended 0.14 and 0.36 above; the demo (40
#: clips per class, model.widths [16, 32], 8 epochs; session 55) 0.25 below with augmentation (0.23 against 0.48, test
#: accuracy 0.43) and 0.24 below without (0.46 against 0.70, test 0.72).
UNDERFIT_ACCURACY_GAP = 0.1


def underfit(history: Mapping[str, Sequence[float]], *, patience: int | None = None) -> dict[str, Any] | None:
    """Whether a run's ``history`` (``history.csv``'s columns: ``accuracy``, ``val_accuracy``, ``val_loss``) shows a
    model that has not learnt its training clips yet: the last epoch's training accuracy and the best validation
    accuracy of any epoch at most :data:`UNDERFIT_MAX_ACCURACY`, the first less than :data:`UNDERFIT_ACCURACY_GAP`
    above the second, and the validation loss still falling when training ended (its lowest within the last
    :data:`OVERFIT_EPOCHS_AFTER` epochs, or, given the run's early-stopping ``patience``, fewer epochs than that before
    the end: early stopping did not end it). A run that early stopping ended on a plateau has learnt what it will, and
    the line's "more epochs" would not help: a hard task can end there with both accuracies under the edge. One that
    ran out of epochs has not: a cosine schedule's last epochs, their learning rate near 0, barely move the validation
    loss, and 180 FSDD digits (6 x 30, model.widths [16, 32, 64, 64], 40 epochs) kept epoch 38 of 40, training
    accuracy 0.21 and validation 0.46 at best, and said nothing of it (test accuracy 0.58). Then
    ``{"epochs", "train_accuracy", "val_accuracy"}`` (the last training accuracy, the best validation one), else
    ``None``. Such a model learns slower under augmentation: a 10-fold crossval of a small UrbanSound8K look-alike (8
    epochs, a 1,429-parameter model) scored 80.0% with augmentation and 94.7% without, and its summary said nothing
    of it; the opposite of :func:`overfit`, which needs the training accuracy far above."""
    train = [value for value in history.get("accuracy", []) if np.isfinite(value)]
    valid = [value for value in history.get("val_accuracy", []) if np.isfinite(value)]
    if not train or not valid or round(max(train[-1], max(valid)), 6) > UNDERFIT_MAX_ACCURACY:
        return None
    if round(train[-1] - max(valid), 6) >= UNDERFIT_ACCURACY_GAP:  # Keras logs 0.9 as 0.8999999761581421
        return None
    losses = list(history.get("val_loss", []))
    finite = [(loss, epoch) for epoch, loss in enumerate(losses) if np.isfinite(loss)]
    # no loss, or it stopped falling (early stopping ended the run, when its patience is known)
    if not finite or len(losses) - 1 - min(finite)[1] >= max(OVERFIT_EPOCHS_AFTER, patience or 0):
        return None
    return {"epochs": len(history.get("accuracy", [])), "train_accuracy": float(train[-1]),
            "val_accuracy": float(max(valid))}


#: :func:`few_clips_note`: below this many evaluated clips a score is noted as rough (30 clips: one is 3.3 points of
#: accuracy, and 27 right of 30 fits 0.74-0.97).
FEW_CLIPS = 30
#: The normal quantile of a two-sided 95% interval, for :func:`wilson_interval`.
Z_95 = 1.959964


def wilson_interval(right: int, total: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion, ``right`` of ``total`` (95% by default): the accuracies that
    ``right`` of ``total`` clips fit. Unlike the normal approximation it stays in [0, 1] and is not empty at 0 or
    ``total`` right (7 of 7: 0.65-1.00)."""
    if total <= 0:
        raise ValueError(f"total must be 1 or more, got {total}")
    p = right / total
    centre = p + z * z / (2 * total)
    spread = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    scale = 1 + z * z / total
    return max(0.0, float((centre - spread) / scale)), min(1.0, float((centre + spread) / scale))


def few_clips_note(right: int, total: int) -> str | None:
    """What an evaluation of fewer than :data:`FEW_CLIPS` clips says of its accuracy, or ``None``: a hobbyist's 7
    test recordings gave 'accuracy 1.0000' with nothing of how little 7 clips can tell."""
    if not 0 < total < FEW_CLIPS:
        return None
    low, high = wilson_interval(right, total)
    return (f"note: {counted(total, 'clips')} {'is' if total == 1 else 'are'} few to measure a model on: one clip is "
            f"{100 / total:.1f} points of accuracy, and {right} right of {total} fits any accuracy from {low:.2f} to "
            f"{high:.2f} (95% Wilson interval); more recordings give a steadier figure")


# -- cross-validation --------------------------------------------------------------------------------
def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    values = {key: float(metrics[key]) for key in SCALAR_METRICS if key in metrics}
    values.update({key: float(v) for key, v in metrics.get("top_k_accuracy", {}).items()})
    return values


def aggregate_folds(fold_metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation of the scalar metrics across folds, plus the pooled confusions.

    Parameters
    ----------
    fold_metrics : sequence of dict
        One :func:`compute_metrics` result per fold, all with the same labels.

    Returns
    -------
    dict
        ``num_folds`` (the folds given: crossval's finished ones, ``num_folds_done`` in ``crossval.json`` too);
        ``mean`` and ``std`` (population standard deviation, ``ddof=0``, i.e.
        ``numpy.std``) of ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``micro_f1``,
        ``weighted_f1`` and each ``top_k`` present in every fold; ``per_fold`` (the scalars of each
        fold); ``confusion_matrix`` (the sum over folds), ``labels``, ``num_examples`` and ``pooled``
        (:func:`metrics_from_confusion` of the pooled matrix, with ``per_class``); ``per_class_folds``
        (:func:`per_class_over_folds`: each class's precision, recall and F1, mean and std over the folds).
    """
    if not fold_metrics:
        raise MetricsError("aggregate_folds needs at least one fold's metrics, got none")
    labels = list(fold_metrics[0].get("labels", []))
    for index, fold in enumerate(fold_metrics):
        if list(fold.get("labels", [])) != labels:
            raise MetricsError(f"fold {index} has labels {list(fold.get('labels', []))[:5]}... "
                               f"different from fold 0 {labels[:5]}...")
    per_fold = [_scalars(fold) for fold in fold_metrics]
    keys = [key for key in per_fold[0] if all(key in fold for fold in per_fold)]
    table = np.array([[fold[key] for key in keys] for fold in per_fold], dtype=np.float64)  # [folds, metrics]
    pooled_cm = np.sum([np.asarray(fold["confusion_matrix"], dtype=np.int64) for fold in fold_metrics], axis=0)
    return {
        "num_folds": len(fold_metrics),
        "mean": {key: float(v) for key, v in zip(keys, table.mean(axis=0))},
        "std": {key: float(v) for key, v in zip(keys, table.std(axis=0))},
        "per_fold": per_fold,
        "confusion_matrix": pooled_cm.tolist(),
        "labels": labels,
        "num_examples": int(pooled_cm.sum()),
        "pooled": metrics_from_confusion(pooled_cm, labels),
        "per_class_folds": per_class_over_folds(fold_metrics),
    }


PER_CLASS_SCORES = ("precision", "recall", "f1")


def per_class_over_folds(fold_metrics: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each class's precision, recall and F1 over the folds: their mean and population standard deviation
    (``ddof=0``, as :func:`aggregate_folds`' ``std``) over the folds whose test clips hold the class.

    A fold without a clip of the class (support 0) has no recall or F1 for it and is left out of its numbers, as
    the per-class table shows it as ``-``; ``folds`` says how many folds each class's numbers are over. The pooled
    per-class numbers (``pooled``'s ``per_class``) are of the summed confusion matrix, where a fold of many clips
    weighs more; these weigh each fold alike, as the mean over folds of the scalar scores does.

    Returns
    -------
    dict
        ``{label: {"folds": n, "mean": {"precision", "recall", "f1"}, "std": {...}}}`` in the labels' order;
        a class no fold tested: ``{"folds": 0}``.
    """
    labels = list(fold_metrics[0].get("labels", [])) if fold_metrics else []
    result: dict[str, dict[str, Any]] = {}
    for label in labels:
        tested = [fold["per_class"][label] for fold in fold_metrics
                  if int((fold.get("per_class") or {}).get(label, {}).get("support", 0)) > 0]
        if not tested:
            result[label] = {"folds": 0}
            continue
        table = np.array([[float(stats[name]) for name in PER_CLASS_SCORES] for stats in tested])  # [folds, 3]
        result[label] = {"folds": len(tested),
                         "mean": {name: float(v) for name, v in zip(PER_CLASS_SCORES, table.mean(axis=0))},
                         "std": {name: float(v) for name, v in zip(PER_CLASS_SCORES, table.std(axis=0))}}
    return result


# -- files -------------------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_metrics_json(path: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write ``metrics`` as indented JSON (NumPy scalars and arrays converted); returns the path."""
    return atomic.write_text(path, json.dumps(metrics, indent=2, default=_json_default, allow_nan=False) + "\n")


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_confused_pairs_csv(path: str | Path, pairs: Sequence[Mapping[str, Any]]) -> Path:
    """Write :func:`confused_pairs` output as ``true,predicted,count,rate`` (rate to 4 decimals)."""
    rows = [(p["true"], p["predicted"], int(p["count"]), f"{float(p['rate']):.4f}") for p in pairs]
    return atomic.write_text(path, _csv_text(("true", "predicted", "count", "rate"), rows))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def write_errors_csv(path: str | Path, paths: Sequence[str | Path], y_true: Any, scores: Any,
                     labels: Sequence[str], *, from_logits: bool = False, top: int = 3) -> int:
    """Write one row per misclassified file, most confident mistakes first.

    Columns: ``path,true_label,predicted_label,score,top3``; ``score`` is the predicted class's
    score (4 decimals) and ``top3`` the best ``top`` classes as ``"a:0.61;b:0.20;c:0.05"``.

    Parameters
    ----------
    path : str or Path
        The CSV to write.
    paths : sequence of str
        One file per row of ``scores``.
    y_true, scores, labels
        As for :func:`compute_metrics`. Pass probabilities, or logits with ``from_logits=True`` to
        have them turned into probabilities (softmax) first.
    top : int
        How many classes the last column lists.

    Returns
    -------
    int
        The number of misclassified files written.
    """
    y_true, scores, labels = _check_inputs(y_true, scores, labels)
    if len(paths) != y_true.shape[0]:
        raise MetricsError(f"{len(paths)} paths for {y_true.shape[0]} predictions")
    if from_logits:
        scores = _softmax(scores)
    y_pred = np.argmax(scores, axis=1)  # [examples]
    wrong = np.flatnonzero(y_pred != y_true)
    order = sorted(wrong.tolist(), key=lambda i: (-scores[i, y_pred[i]], str(paths[i])))
    ranks = np.argsort(-scores, axis=1, kind="stable")[:, :top]  # [examples, top]
    rows = []
    for i in order:
        best = ";".join(f"{labels[j]}:{scores[i, j]:.2f}" for j in ranks[i])
        rows.append((str(paths[i]), labels[y_true[i]], labels[y_pred[i]], f"{scores[i, y_pred[i]]:.4f}", best))
    atomic.write_text(path, _csv_text(("path", "true_label", "predicted_label", "score", f"top{top}"), rows))
    return len(rows)

