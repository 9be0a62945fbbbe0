"""``python -m sound_tf.predict``: the top classes of audio files, from a trained run.

Each file is decoded at the run's sample rate (:func:`sound_tf.audio.load_audio`), covered by windows of
one clip every ``audio.window_hop_samples`` (:func:`sound_tf.audio.split_windows`, the tail zero-padded)
and scored as evaluation scores a clip: the file's probabilities are the softmax of the mean of the window
logits. ``--windows`` also prints each window's own top class, a timeline for long recordings, and its events
(:func:`sound_tf.lite.window_events`): what was heard when, runs of consecutive windows of one top class at
``--min-probability`` or more (0.5), the run's ``data.silence_label`` and ``data.other_label`` left out. A file
that cannot be read is reported (on stderr, and as a JSON line with ``"error"`` under ``--json``) and
skipped; the others are still classified, and the exit code is 1 when any file could not be (as
``sound_tf.lite``).

Examples
--------
    python -m sound_tf.predict runs/demo dog.wav street/ --top-k 5
    python -m sound_tf.predict runs/demo long_recording.flac --windows
    python -m sound_tf.predict runs/kws commands.wav --windows --min-probability 0.8
    python -m sound_tf.predict runs/demo clips/ --json > predictions.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .audio import check_wave, expand_audio_inputs, left_out_note, load_audio, silent_note, split_windows
from .errors import AudioError, ConfigError, counted, run_cli
from .lite import (DEFAULT_MIN_PROBABILITY, check_min_probability, check_top_k, event_lines, not_event_labels,
                   shown_label, window_events, window_timeline)


@dataclass
class Prediction:
    """The result for one file.

    Attributes
    ----------
    file : str
    duration_s : float
    top : list of (str, float)
        The best classes and their probabilities (softmax of the mean window logits), best first.
    windows : list of dict
        The timeline of :func:`sound_tf.lite.window_timeline` (``start_seconds``, ``end_seconds``, ``top_k``, ...).
    events : list of dict
        The timeline's events (:func:`sound_tf.lite.window_events`: ``start_seconds``, ``end_seconds``, ``label``,
        ``peak_probability``, ``first_window``, ``last_window``).
    warning : str or None
        :func:`sound_tf.audio.silent_note` for a silent recording, whose classes say nothing of a sound.
    """

    file: str
    duration_s: float
    top: list[tuple[str, float]]
    windows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    warning: str | None = None

    def to_json(self, *, with_windows: bool) -> dict[str, Any]:
        """The JSON line (the server's field names: ``label``, ``probability``, ``top_k``, ``windows``; ``events``
        with the windows, as ``sound_tf.lite --json`` gives them)."""
        def top_k(top: list[tuple[str, float]]) -> list[dict[str, Any]]:
            return [{"label": label, "probability": round(p, 6)} for label, p in top]

        out: dict[str, Any] = {"file": self.file, "label": self.top[0][0], "probability": round(self.top[0][1], 6),
                               "top_k": top_k(self.top), "duration_seconds": round(self.duration_s, 6),
                               "num_windows": len(self.windows)}
        if with_windows:
            out["windows"] = self.windows
            out["events"] = self.events
        if self.warning is not None:  # as lite's and the server's results
            out["warning"] = self.warning
        return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _top(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(labels[i], float(probabilities[i])) for i in order]


class Predictor:
    """Scores waveforms with a run's model, window by window, as evaluation does.

    Parameters
    ----------
    config : Config
        The run's config (labels, sample rate, clip and hop sizes, batch size).
    model : keras.Model
        Waveform ``[batch, clip_samples]`` -> logits ``[batch, classes]``.
    """

    def __init__(self, config: Any, model: Any):
        import tensorflow as tf

        self.config = config
        self.labels = list(config.labels)
        #: The run's silence and other classes, never events (as :attr:`sound_tf.lite.LiteClassifier.not_events`).
        self.not_events = not_event_labels(self.labels, silence_label=config.data.silence_label,
                                           other_label=config.data.other_label)
        self._infer = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def window_logits(self, wave: np.ndarray, *, name: str = "waveform") -> np.ndarray:
        """Logits of every window of ``wave`` ``[samples]``, float samples in [-1, 1] at the run's rate:
        ``[windows, classes]``. Raises :class:`AudioError` naming ``name`` for any other input."""
        audio = self.config.audio
        wave = check_wave(wave, name)
        # A view: overlapping windows share the wave's samples; each batch is copied when it is scored.
        windows = split_windows(wave, clip_samples=audio.clip_samples, hop_samples=audio.window_hop_samples,
                                copy=False)  # [windows, clip_samples]
        batch = self.config.train.batch_size
        return np.concatenate([np.asarray(self._infer(windows[i:i + batch].astype(np.float32)))
                               for i in range(0, len(windows), batch)])  # [windows, classes]

    def predict_file(self, path: str | Path, *, top_k: int = 3,
                     min_probability: float = DEFAULT_MIN_PROBABILITY) -> Prediction:
        """Decode ``path`` at the run's rate and score it, listing ``top_k`` classes (at most all of them), and its
        events: windows of one top class, not :attr:`not_events`, at ``min_probability`` or more.

        Raises :class:`AudioError` when the file is unreadable, ``ConfigError`` unless ``top_k`` is an
        integer >= 1 and ``min_probability`` in [0, 1].
        """
        top_k = check_top_k(top_k, len(self.labels))
        min_probability = check_min_probability(min_probability)
        audio = self.config.audio
        wave = load_audio(path, sample_rate_hz=audio.sample_rate_hz)  # [samples]
        logits = self.window_logits(wave)  # [windows, classes]
        overall = _softmax(logits.astype(np.float64).mean(axis=0))  # [classes]
        per_window = _softmax(logits.astype(np.float64))  # [windows, classes]
        windows = window_timeline(per_window, self.labels, hop_samples=audio.window_hop_samples,
                                  clip_samples=audio.clip_samples, total_samples=wave.size,
                                  sample_rate_hz=audio.sample_rate_hz, top_k=top_k)
        return Prediction(file=str(path), duration_s=wave.size / audio.sample_rate_hz,
                          top=_top(overall, self.labels, top_k), windows=windows,
                          events=window_events(windows, min_probability=min_probability, leave_out=self.not_events),
                          warning=silent_note(wave, audio.sample_rate_hz))


def table_header(width: int, k: int) -> list[str]:
    """The table's two header lines for file names up to ``width`` characters and ``k`` classes a row."""
    header = (f"{'file':<{width}}  " + "  ".join(f"{f'top-{i + 1}':<22}" for i in range(k))).rstrip()
    return [header, "-" * len(header)]


def table_rows(prediction: Prediction, *, width: int, with_windows: bool,
               min_probability: float = DEFAULT_MIN_PROBABILITY, not_events: Sequence[str] = ()) -> list[str]:
    """One file's row (its top classes), and with ``with_windows`` its timeline below it, then its events
    (:func:`sound_tf.lite.event_lines`, whose heading names ``min_probability`` and ``not_events``)."""
    cells = "  ".join(f"{f'{shown_label(label)} {prob:.3f}':<22}" for label, prob in prediction.top)
    lines = [f"{prediction.file:<{width}}  {cells}".rstrip()]
    if with_windows:
        for w in prediction.windows:
            best = ", ".join(f"{shown_label(t['label'])} {t['probability']:.3f}" for t in w["top_k"])
            lines.append(f"  {w['start_seconds']:8.2f} - {w['end_seconds']:.2f} s".ljust(26) + best)
        lines += event_lines(prediction.events, min_probability=min_probability, leave_out=not_events)
    return lines


def run(run_dir: str | Path, inputs: Sequence[str | Path], *, top_k: int = 3, as_json: bool = False,
        with_windows: bool = False, min_probability: float | None = None, out: Callable[[str], None] = print,
        err: Callable[[str], None] | None = None) -> tuple[int, int]:
    """Classify ``inputs`` (files or folders, or one of them) with the run in ``run_dir``; returns the numbers
    of files classified and failed. ``min_probability`` (:data:`sound_tf.lite.DEFAULT_MIN_PROBABILITY` when
    ``None``) sets the events ``with_windows`` lists, and is refused without it."""
    from .config import load_run_config

    err = err or (lambda line: print(line, file=sys.stderr))
    if isinstance(inputs, (str, os.PathLike)):  # one path, not its characters (the first of "/data/x.wav" is "/")
        inputs = [inputs]
    check_top_k(top_k, 1, name="--top-k")  # before the model loads; predict_file caps it at the model's classes
    threshold = check_min_probability(DEFAULT_MIN_PROBABILITY if min_probability is None else min_probability,
                                      name="--min-probability")
    if min_probability is not None and not with_windows:  # it would change nothing printed
        raise ConfigError(f"--min-probability {threshold:g} sets the events listed after each file's windows: give "
                          f"--windows too")
    load_run_config(run_dir)  # a mistyped or unfinished RUN_DIR is refused before TensorFlow loads
    from .evaluation import load_run

    predictor = Predictor(*load_run(run_dir))
    classified = failed = 0
    left_out: list[str] = []
    files = expand_audio_inputs(inputs, left_out=left_out)
    if left_out:
        err(left_out_note(left_out))
    # Each row is printed as soon as its file is scored (a folder of thousands of files shows progress),
    # aligned on the longest name of them all, which is known before the first file is read.
    width = max((len(str(path)) for path, _ in files), default=0)
    for path, problem in files:
        try:
            if problem is not None:
                raise AudioError(path, problem)
            prediction = predictor.predict_file(path, top_k=top_k, min_probability=threshold)
        except AudioError as exc:
            failed += 1
            err(f"skipping {exc.path}: {exc.reason}")
            if as_json:
                out(json.dumps({"file": exc.path, "error": exc.reason}))
            continue
        if as_json:
            out(json.dumps(prediction.to_json(with_windows=with_windows)))
        else:
            lines = table_rows(prediction, width=width, with_windows=with_windows, min_probability=threshold,
                               not_events=predictor.not_events)
            if not classified:
                lines = table_header(width, len(prediction.top)) + lines
            for line in lines:
                out(line)
            if prediction.warning is not None:
                err(f"warning: {prediction.file}: {prediction.warning}")
        classified += 1
    return classified, failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sound_tf.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by sound_tf.train")
    parser.add_argument("inputs", metavar="FILE_OR_FOLDER", nargs="+", help="audio files or folders of them")
    parser.add_argument("--top-k", type=int, default=3,
                        help="classes listed per file and, with --windows, per window (default: 3; the number of "
                             "classes lists every class's probability)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file and line")
    parser.add_argument("--windows", action="store_true",
                        help="also list each window's classes (a timeline), then its events: consecutive windows of "
                             "one top class, not the run's silence or other class (_silence_, _unknown_), each at "
                             "--min-probability or more, merged into one 'start-end s: label (peak p)'")
    parser.add_argument("--min-probability", type=float, default=None,
                        help=f"with --windows: the top probability a window needs to be part of an event (default "
                             f"{DEFAULT_MIN_PROBABILITY})")
    parser.add_argument("--quiet", action="store_true",
                        help="none of TensorFlow's own log lines: the results, notes and errors only")
    args = parser.parse_args(argv)

    from .quiet import native_logs_held, quiet_tensorflow
    quiet_tensorflow()

    def work() -> int:  # as sound_tf.lite: 1 when any file could not be classified (the others are printed)
        classified, failed = run(args.run_dir, args.inputs, top_k=args.top_k, as_json=args.json,
                                 with_windows=args.windows, min_probability=args.min_probability,
                                 out=lambda line: print(line, flush=True))
        if classified == 0:
            print("error: no file could be classified", file=sys.stderr)
        elif failed:
            print(f"error: {failed} of {counted(classified + failed, 'files')} could not be classified",
                  file=sys.stderr)
        return 1 if failed or not classified else 0

    with native_logs_held(args.quiet):  # TensorFlow is imported in work
        return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
