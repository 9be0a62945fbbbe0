"""Model backends: one interface over a TFLite file, a SavedModel and a Keras run folder.

Every backend exposes the model's numbers, read from the model folder (never repeated here), and
``predict(windows [n, clip_samples] float32) -> {"probabilities": [n, classes], "logits": [n, classes]}``
(the outputs of an exported model; ``logits`` may be missing). ``predict`` is only ever called from the
batcher's single inference thread. A recording's score is the softmax of its windows' mean logits, the
rule of evaluation and of the on-device runner (:meth:`Backend.aggregate`).

=============  ==========================================  ===========================================
backend        needs in ``model_dir``                      runs with
=============  ==========================================  ===========================================
``tflite``     ``model_{variant}.tflite`` + ``config.json``  ``sound_tf.lite.LiteClassifier`` (no TensorFlow)
``savedmodel`` ``saved_model/`` + ``config.json``          ``tf.saved_model.load``, ``serving_default``
``keras``      ``model.keras`` + ``config.json``           ``keras.models.load_model`` + softmax
=============  ==========================================  ===========================================

``auto`` picks the first that is present, in that order (``model_float32.tflite`` unless a TFLite
variant is asked for; a variant asked for must exist). TensorFlow is imported only inside the
``savedmodel`` and ``keras`` backends, so a TFLite server never loads it.

An export bundle is served only when complete and accepted (:func:`read_export_report`): its
``export.json`` must be present, record that the parity checks passed (or that ``--allow-degraded``
accepted them; then a warning is logged), and list the model file that is served.
"""

from __future__ import annotations

import abc
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import check_finite_windows, check_windows
from ..config import CONFIG_FILENAME, Config, unfinished_run_hint
from ..errors import ConfigError, SoundTFError, and_list, counted, is_whole
from ..lite import LOGITS, PROBABILITIES, aggregate_logits, not_event_labels, window_logits
from ..tflite_meta import failed_artefacts, read_metadata

__all__ = ["Backend", "KerasBackend", "LiteBackend", "ModelInfo", "SavedModelBackend", "load_backend",
           "resolve_backend"]

log = logging.getLogger("sound_tf.serve")

KERAS_FILENAME = "model.keras"
SAVED_MODEL_DIRNAME = "saved_model"
EXPORT_REPORT_FILENAME = "export.json"  # sound_tf.export.EXPORT_JSON (not imported: it loads TensorFlow)
RUN_EXPORT_DIRNAME = "export"  # where python -m sound_tf.export RUN_DIR writes the bundle by default
DEFAULT_TFLITE_VARIANT = "float32"
#: Served, in this order, from a bundle without float32, SavedModel and model.keras (e.g. the micro profile's).
FALLBACK_TFLITE_VARIANTS = ("float16", "dynamic", "int8")


def tflite_filename(variant: str) -> str:
    """File name of a bundle's TFLite variant, e.g. ``model_float32.tflite``."""
    return f"model_{variant}.tflite"


@dataclass(frozen=True)
class ModelInfo:
    """The numbers a backend serves with, all read from the model folder's ``config.json``.

    ``not_events`` are the run's silence and other classes the model has (``data.silence_label`` and
    ``data.other_label``: :func:`sound_tf.lite.not_event_labels`), which are never a windowed answer's events.
    """

    labels: tuple[str, ...]
    sample_rate_hz: int
    clip_samples: int
    window_hop_samples: int
    not_events: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> "ModelInfo":
        return cls(labels=tuple(config.labels), sample_rate_hz=config.audio.sample_rate_hz,
                   clip_samples=config.audio.clip_samples, window_hop_samples=config.audio.window_hop_samples,
                   not_events=not_event_labels(config.labels, silence_label=config.data.silence_label,
                                               other_label=config.data.other_label))


#: The :class:`ModelInfo` fields export writes into a model, which its bundle's ``config.json`` must give too.
DESCRIBED_FIELDS = ("labels", "sample_rate_hz", "clip_samples", "window_hop_samples")


def tflite_variants(model_dir: Path) -> list[str]:
    """The TFLite variants of a bundle, from its ``model_{variant}.tflite`` files (sorted)."""
    return sorted(p.name[len("model_"):-len(".tflite")] for p in Path(model_dir).glob(tflite_filename("*")))


def _takes_waveform(path: Path) -> bool:
    """Whether the ``.tflite`` at ``path`` takes a waveform (what uploads become), by its metadata."""
    try:
        return read_metadata(path).info.get("input_kind") == "waveform"
    except (SoundTFError, OSError):  # unreadable: not one to suggest
        return False


def _copy_hint(model_dir: Path) -> str:
    """For a folder of ``.tflite`` models copied without their bundle's files (a device): which files of the
    export folder to copy beside them, and that ``lite`` runs one model alone; ``""`` for a folder without one."""
    models = sorted(p for p in model_dir.glob(tflite_filename("*")) if p.is_file())
    if not models:
        return ""
    missing = [name for name in (CONFIG_FILENAME, EXPORT_REPORT_FILENAME) if not (model_dir / name).is_file()]
    waveform = [p for p in models if not p.name.endswith("_features.tflite")] or models
    model = next((p for p in waveform if p.name == tflite_filename("int8")), waveform[0])
    return (f"; copied to a device, copy the export folder's {' and '.join(missing)} beside the model too (the "
            f"server reads {'it' if len(missing) == 1 else 'them'}; `python -m sound_tf.lite {model} FILE` runs the "
            f".tflite alone)")


def read_export_report(model_dir: Path) -> dict | None:
    """A bundle's ``export.json``, once checked that the bundle may be served; ``None`` for a run folder.

    Raises
    ------
    ConfigError
        The folder holds exported models but no ``export.json`` (an export that failed or was
        interrupted, or files copied by hand); ``export.json`` is unreadable; or it records that the
        parity checks failed and the export was not run with ``--allow-degraded``.
    """
    model_dir = Path(model_dir)
    path = model_dir / EXPORT_REPORT_FILENAME
    if not path.is_file():
        exported = sorted(p.name for p in model_dir.glob(tflite_filename("*")))
        exported += [f"{SAVED_MODEL_DIRNAME}/"] if (model_dir / SAVED_MODEL_DIRNAME).exists() else []
        if exported:
            hint = _copy_hint(model_dir)
            raise ConfigError(f"{model_dir}: holds {', '.join(exported)} but no {EXPORT_REPORT_FILENAME}, so it is not "
                              f"a complete export bundle (an export that failed or was interrupted, or files copied "
                              f"by hand){hint}; {'otherwise ' if hint else ''}export again: python -m "
                              f"sound_tf.export RUN_DIR --out {model_dir}")
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the export report ({exc}); export the bundle again") from None
    if not isinstance(report, dict) or not isinstance(report.get("artefacts"), dict) \
            or not isinstance(report.get("passed"), bool):
        raise ConfigError(f"{path}: not an export report (expected 'artefacts' and 'passed'); export the bundle again")
    if not report["passed"] and report.get("allow_degraded") is not True:
        failures = [str(f) for f in report.get("failures") or []] or ["(no failure listed)"]
        raise ConfigError(f"{path}: this export failed its parity checks and was not accepted with --allow-degraded, "
                          f"so the bundle is not served:\n  " + "\n  ".join(failures) +
                          "\nexport again (with --allow-degraded to accept these results)")
    return report


def _check_listed(report: dict, model_dir: Path, path: Path) -> None:
    """Raise unless ``export.json`` lists the model file about to be served (else it is a stale leftover)."""
    listed = sorted(str(entry.get("file")) for name, entry in report["artefacts"].items()
                    if name != "keras" and isinstance(entry, dict))
    if path.name not in listed:
        raise ConfigError(f"{path}: not listed in {model_dir / EXPORT_REPORT_FILENAME} (which lists "
                          f"{', '.join(listed) or 'nothing'}), so it is left over from another export; export "
                          f"the bundle again")


def _warn_if_degraded(report: dict | None, model_dir: Path, path: Path) -> None:
    """Log a warning when the bundle was accepted with ``--allow-degraded`` despite failed parity checks, saying
    whether the model served is one that failed them: a bundle whose int8 features model alone failed read "its
    parity checks failed" while it served float32, which had passed its own."""
    if report is None or report["passed"]:
        return
    failures = [str(f) for f in report.get("failures") or []]
    served = next((name for name, entry in report["artefacts"].items()
                   if isinstance(entry, dict) and entry.get("file") == path.name), path.name)
    failed = failed_artefacts(list(report["artefacts"]), failures)
    if served in failed:
        message = (f"serving a degraded export: {served}, the model served, failed its parity checks and was "
                   f"accepted with --allow-degraded")
    else:
        message = (f"serving a degraded export: {served}, the model served, passed its parity checks; "
                   f"{and_list(failed) or 'another artefact'} failed theirs, accepted with --allow-degraded")
    log.warning(message, extra={"fields": {"model_dir": str(model_dir), "artefact": served,
                                           "artefact_failed": served in failed, "failures": failures}})


def read_model_info(model_dir: Path) -> ModelInfo:
    """Load ``config.json`` of a run folder or bundle and check it names the classes.

    Raises
    ------
    ConfigError
        The file is missing or invalid, or it holds no labels (a run that never finished).
    """
    path = Path(model_dir) / CONFIG_FILENAME
    if not path.is_file():
        raise ConfigError(f"{model_dir}: no {CONFIG_FILENAME}; expected a run folder or an export bundle")
    config = Config.load(path)
    if not config.labels:
        raise ConfigError(f"{path}: the config has no labels (was the model trained to the end?)")
    return ModelInfo.from_config(config)


def check_describes(said: ModelInfo, stored: ModelInfo, model_path: Path) -> None:
    """Raise unless the bundle's ``config.json`` (``said``) gives the numbers export wrote into the model
    at ``model_path`` (``stored``): a ``config.json`` edited after export would serve other windows or
    name the classes wrongly."""
    in_config, in_model = ({**vars(info), "labels": list(info.labels)} for info in (said, stored))
    differ = [f"{key} {in_model[key]!r} in the model, {in_config[key]!r} in config.json"
              for key in DESCRIBED_FIELDS if in_model[key] != in_config[key]]
    if differ:
        raise ConfigError(f"{model_path.parent / CONFIG_FILENAME}: does not describe {model_path} "
                          f"({'; '.join(differ)}); it was edited after export: restore it or export again")


class Backend(abc.ABC):
    """A loaded model that turns windows into class probabilities.

    Attributes
    ----------
    name : str
        ``tflite``, ``savedmodel`` or ``keras``.
    path : pathlib.Path
        The model file or folder that was loaded.
    variant : str or None
        The export variant (``float32``, ``int8``, ...) of a TFLite model; ``None`` for the others.
    labels : tuple of str
    sample_rate_hz, clip_samples, window_hop_samples : int
    not_events : tuple of str
        The classes that are never events (:attr:`ModelInfo.not_events`; the TFLite backend's are the ones the
        on-device runner reads from the config inside the model).
    """

    name: str = ""
    variant: str | None = None
    #: Whether one call on n windows is cheaper than n calls; if not, the batcher never waits for more.
    batches_pay_off: bool = True

    def __init__(self, path: Path, info: ModelInfo):
        self.path = Path(path)
        self.labels = tuple(info.labels)
        self.sample_rate_hz = int(info.sample_rate_hz)
        self.clip_samples = int(info.clip_samples)
        self.window_hop_samples = int(info.window_hop_samples)
        self.not_events = tuple(info.not_events)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @abc.abstractmethod
    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """``{"probabilities": [n, classes], "logits": [n, classes]}`` of ``windows`` ``[n, clip_samples]``."""

    def _check_windows(self, windows: np.ndarray, *, values: bool = True) -> np.ndarray:
        """``windows`` as ``[n >= 1, clip_samples]`` float32 (:func:`sound_tf.audio.check_windows`), else a
        ConfigError naming the backend and the problem.

        With ``values``, also refuse samples that are not finite: the SavedModel and Keras models answered NaN
        windows with plausible probabilities (the TFLite runner checks them itself, a chunk at a time).
        """
        where = f"{self.name} predict: "
        windows = check_windows(windows, clip_samples=self.clip_samples, where=where)  # [n, clip_samples] float32
        if values:
            check_finite_windows(windows, where=where)
        return windows

    def aggregate(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """One recording's ``[classes]`` probabilities from :meth:`predict`'s outputs for its windows.

        ``softmax(mean logits)``, the clip score of evaluation; a model without a logits output uses
        the mean log-probability, which ranks classes the same way.
        """
        return aggregate_logits(window_logits(outputs))

    def warm_up(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Run silent windows through the model once per batch size (first calls compile and allocate)."""
        if is_whole(batch_sizes):
            batch_sizes = (batch_sizes,)
        sizes = tuple(batch_sizes) if isinstance(batch_sizes, (tuple, list)) else None
        if sizes is None or not all(is_whole(s) and s >= 1 for s in sizes):
            raise ConfigError(f"warm_up: batch_sizes must be positive integers (a tuple, or one int), "
                              f"got {batch_sizes!r}")
        for size in sizes:
            probabilities = self.predict(np.zeros((size, self.clip_samples), np.float32))[PROBABILITIES]
            if probabilities.shape != (size, self.num_classes):  # [size, classes]
                raise ConfigError(f"{self.path}: the model answers shape {probabilities.shape} for "
                                  f"{counted(size, 'windows')} but config.json lists {self.num_classes} labels")


class LiteBackend(Backend):
    """A bundle's ``model_{variant}.tflite`` through :class:`sound_tf.lite.LiteClassifier` (no TensorFlow)."""

    name = "tflite"
    batches_pay_off = False  # see predict()

    def __init__(self, model_path: Path, *, num_threads: int = 1):
        from ..lite import LiteClassifier

        self._classifier = LiteClassifier(model_path, num_threads=num_threads)
        c = self._classifier
        self.variant = c.variant
        super().__init__(model_path, ModelInfo(labels=tuple(c.labels), sample_rate_hz=c.sample_rate_hz,
                                               clip_samples=c.clip_samples,
                                               window_hop_samples=c.window_hop_samples, not_events=c.not_events))

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """One invoke per window at batch size 1: faster than batches on a CPU interpreter.

        Measured on the esc50 model (5-s windows, one thread): a batch of 16 costs about twice as much per
        window as batch 1 (its buffers outgrow the caches), and every change of batch size reallocates
        the interpreter's tensors, which costs more than the window itself. The batcher's batches still
        pay off here: one thread owns the interpreter and requests never wait on each other's decoding.
        """
        windows = self._check_windows(windows, values=False)  # NaN: LiteClassifier.predict checks it per chunk
        rows = [self._classifier.predict(windows[i:i + 1]) for i in range(windows.shape[0])]  # [1, classes] each
        if len(rows) == 1:
            return rows[0]
        return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}  # [n, classes] each

    def aggregate(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Exactly as the on-device runner does."""
        return self._classifier.aggregate(outputs)


class SavedModelBackend(Backend):
    """A bundle's ``saved_model/`` through its ``serving_default`` signature (waveform -> probabilities)."""

    name = "savedmodel"

    def __init__(self, saved_model_dir: Path, info: ModelInfo):
        super().__init__(saved_model_dir, info)
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(str(saved_model_dir))
        if "serving_default" not in self._loaded.signatures:
            raise ConfigError(f"{saved_model_dir}: no serving_default signature "
                              f"(has {sorted(self._loaded.signatures)})")
        self._fn = self._loaded.signatures["serving_default"]
        inputs = self._fn.structured_input_signature[1]  # {name: TensorSpec}
        if len(inputs) != 1:
            raise ConfigError(f"{saved_model_dir}: serving_default should take one waveform input, "
                              f"takes {sorted(inputs)}")
        self._input_name = next(iter(inputs))
        if PROBABILITIES not in self._fn.structured_outputs:
            raise ConfigError(f"{saved_model_dir}: serving_default has no {PROBABILITIES!r} output "
                              f"(has {sorted(self._fn.structured_outputs)})")
        self._output_names = [name for name in (PROBABILITIES, LOGITS) if name in self._fn.structured_outputs]
        if "metadata" in self._loaded.signatures:  # what export wrote into the model: config.json must agree
            own = {key: value.numpy() for key, value in self._loaded.signatures["metadata"]().items()}
            stored = ModelInfo(labels=tuple(bytes(v).decode("utf-8") for v in own.get("labels", [])),
                               sample_rate_hz=int(own.get("sample_rate_hz", info.sample_rate_hz)),
                               clip_samples=int(own.get("clip_samples", info.clip_samples)),
                               window_hop_samples=int(own.get("window_hop_samples", info.window_hop_samples)))
            check_describes(info, stored, saved_model_dir)

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        windows = self._check_windows(windows)
        outputs = self._fn(**{self._input_name: self._tf.constant(windows, dtype=self._tf.float32)})
        return {name: outputs[name].numpy().astype(np.float32, copy=False) for name in self._output_names}


class KerasBackend(Backend):
    """A run folder's ``model.keras`` (logits, plus their softmax), traced once for any batch size."""

    name = "keras"

    def __init__(self, model_path: Path, info: ModelInfo):
        super().__init__(model_path, info)
        import tensorflow as tf

        from ..evaluation import check_frontend, check_labels_file, load_keras_file

        self._model = load_keras_file(model_path, compile=False)  # registers sound_tf's layers first
        config_path = Path(model_path).parent / CONFIG_FILENAME
        config = Config.load(config_path)
        check_frontend(self._model, config, config_path)  # a hand-edited rate or band
        check_labels_file(config_path.parent, config)  # reordered labels: as predict, never another class's name
        model_samples = self._model.input_shape[-1]
        if model_samples != self.clip_samples:
            raise ConfigError(f"{model_path}: the model takes {model_samples} samples per window but "
                              f"config.json gives clip_samples={self.clip_samples}")
        model = self._model

        @tf.function(input_signature=[tf.TensorSpec([None, self.clip_samples], tf.float32)])
        def outputs(waveform):  # [batch, clip_samples]
            logits = model(waveform, training=False)  # [batch, classes]
            return {LOGITS: logits, PROBABILITIES: tf.nn.softmax(logits, axis=-1)}

        self._fn = outputs

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        windows = self._check_windows(windows)
        return {name: value.numpy() for name, value in self._fn(windows).items()}  # [n, classes] each


def resolve_backend(model_dir: str | Path, backend: str = "auto", *,
                    tflite_variant: str | None = None) -> tuple[str, Path]:
    """Choose the backend for ``model_dir`` and the file or folder it loads (cheap: no model is loaded).

    ``tflite_variant`` ``None`` means ``float32`` when the bundle has it (``auto`` otherwise takes the
    SavedModel, then ``model.keras``); without any of those (a ``micro`` bundle), ``auto`` takes the
    first waveform variant of float16, dynamic and int8. A variant given explicitly must exist (``auto``
    never falls back from it), must take a waveform (not ``int8_features``), and goes only with the
    ``auto`` or ``tflite`` backend.

    Raises
    ------
    ConfigError
        ``model_dir`` is not a folder, has no ``config.json``, is an incomplete or failed export bundle
        (see :func:`read_export_report`), lacks the file the backend (or the variant) needs, or the
        variant cannot be served (it takes features, or the backend is not TFLite).
    """
    kind, path, _ = _resolve(Path(model_dir).expanduser(), backend, tflite_variant)
    return kind, path


def _resolve(model_dir: Path, backend: str, tflite_variant: str | None) -> tuple[str, Path, dict | None]:
    """:func:`resolve_backend`, plus the bundle's export report (``None`` for a run folder)."""
    if model_dir.is_file():  # e.g. one model of a bundle: the server takes the folder and picks the model
        hint = (f" with --tflite-variant {model_dir.stem.removeprefix('model_')}"
                if model_dir.suffix == ".tflite" and model_dir.stem.startswith("model_") else "")
        raise ConfigError(f"{model_dir}: a file, not a model folder; pass the run folder or export bundle that holds "
                          f"it ({model_dir.parent}){hint}")
    if not model_dir.is_dir():
        raise ConfigError(f"{model_dir}: model folder not found (expected a run folder or an export bundle)")
    report = read_export_report(model_dir)
    unfinished = unfinished_run_hint(model_dir)  # a training run killed before it wrote its model
    if not (model_dir / CONFIG_FILENAME).is_file():
        raise ConfigError(f"{model_dir}: no {CONFIG_FILENAME}; "
                          + (unfinished or "expected a run folder or an export bundle") + _copy_hint(model_dir))
    if backend != "auto" and backend not in ("tflite", "savedmodel", "keras"):
        raise ConfigError(f"backend must be one of auto, tflite, savedmodel, keras, got {backend!r}")
    if tflite_variant is not None and backend not in ("auto", "tflite"):
        raise ConfigError(f"--tflite-variant {tflite_variant} (SOUND_TF_TFLITE_VARIANT) chooses a TFLite model, but "
                          f"the backend is {backend}: drop one of the two")
    candidates = {
        "tflite": model_dir / tflite_filename(tflite_variant or DEFAULT_TFLITE_VARIANT),
        "savedmodel": model_dir / SAVED_MODEL_DIRNAME,
        "keras": model_dir / KERAS_FILENAME,
    }
    present = {
        "tflite": candidates["tflite"].is_file(),
        "savedmodel": (candidates["savedmodel"] / "saved_model.pb").is_file(),
        "keras": candidates["keras"].is_file(),
    }
    if tflite_variant is None and backend == "auto" and not any(present.values()):  # e.g. a micro bundle
        files = (model_dir / tflite_filename(v) for v in FALLBACK_TFLITE_VARIANTS)
        fallback = next((path for path in files if path.is_file() and _takes_waveform(path)), None)
        if fallback is not None:
            candidates["tflite"], present["tflite"] = fallback, True
    variants = tflite_variants(model_dir)
    servable = [v for v in variants if _takes_waveform(model_dir / tflite_filename(v))]  # never int8_features
    if servable:
        have = (f"TFLite variants the server can feed here: "
                f"{', '.join(f'{v} ({tflite_filename(v)})' for v in servable)}; choose one with --tflite-variant")
    elif variants:
        have = (f"this folder's TFLite models ({', '.join(tflite_filename(v) for v in variants)}) take features, "
                f"not a waveform: export a waveform variant (e.g. --profile default) to serve this run")
    else:
        have = "this folder has no model_*.tflite file"
    if not present["tflite"] and (backend == "tflite" or (backend == "auto" and tflite_variant is not None)):
        raise ConfigError(f"{model_dir}: the tflite backend needs {candidates['tflite']}, which is missing ({have})")
    if backend == "auto":
        found = [kind for kind in ("tflite", "savedmodel", "keras") if present[kind]]
        if not found:
            raise ConfigError(f"{model_dir}: found none of {candidates['tflite'].name}, {SAVED_MODEL_DIRNAME}/, "
                              f"{KERAS_FILENAME} ({unfinished or have})")
        backend = found[0]
    if not present[backend]:
        raise ConfigError(f"{model_dir}: the {backend} backend needs {candidates[backend]}, which is missing"
                          + (f"; {unfinished}" if unfinished else ""))
    if report is not None and backend != "keras":
        _check_listed(report, model_dir, candidates[backend])
    if backend == "tflite":
        input_kind = read_metadata(candidates["tflite"]).info["input_kind"]
        if input_kind != "waveform":
            raise ConfigError(f"{candidates['tflite']}: this model takes {input_kind!r} input, not a waveform, so the "
                              f"server cannot feed it uploads ({have})")
    return backend, candidates[backend], report


def run_export_note(model_dir: str | Path, backend: str, kind: str) -> str | None:
    """The log's note when ``auto`` serves a run folder's ``model.keras`` while the run's export bundle sits in
    ``RUN/export``: the server then loads TensorFlow (9-10 s here for a small model, where the bundle's
    float32 TFLite model loads in 0.06 s), and nothing said the bundle was passed over. ``None`` otherwise, and
    when the bundle would not be served with TFLite: a profile of ``saved_model`` alone (TensorFlow again) or of
    ``int8_features`` alone, or an export that failed its checks (:func:`_resolve` refuses it)."""
    bundle = Path(model_dir).expanduser() / RUN_EXPORT_DIRNAME
    if backend != "auto" or kind != "keras" or not (bundle / EXPORT_REPORT_FILENAME).is_file():
        return None
    try:
        if _resolve(bundle, "auto", None)[0] != "tflite":
            return None
    except ConfigError:  # the note would send the user to a bundle the server refuses
        return None
    return (f"serving the run folder's {KERAS_FILENAME} with TensorFlow; its export bundle {bundle} would be "
            f"served with TFLite, which loads in a fraction of the time: python -m sound_tf.serve {bundle}")


def load_backend(model_dir: str | Path, backend: str = "auto", *, tflite_variant: str | None = None,
                 num_threads: int = 1) -> Backend:
    """Load the model of ``model_dir`` with the chosen backend (see :func:`resolve_backend`)."""
    kind, path, report = _resolve(Path(model_dir).expanduser(), backend, tflite_variant)
    _warn_if_degraded(report, Path(model_dir), path)
    note = run_export_note(model_dir, backend, kind)
    if note:
        log.info(note, extra={"fields": {"bundle": str(Path(model_dir).expanduser() / RUN_EXPORT_DIRNAME)}})
    log.info("loading model", extra={"fields": {"backend": kind, "path": str(path)}})
    if kind == "tflite":  # the numbers embedded in the .tflite file; the bundle's config.json must agree
        loaded: Backend = LiteBackend(path, num_threads=num_threads)
        stored = ModelInfo(labels=loaded.labels, sample_rate_hz=loaded.sample_rate_hz,
                           clip_samples=loaded.clip_samples, window_hop_samples=loaded.window_hop_samples)
        check_describes(read_model_info(Path(model_dir)), stored, path)
    else:
        info = read_model_info(Path(model_dir))
        loaded = SavedModelBackend(path, info) if kind == "savedmodel" else KerasBackend(path, info)
    if not loaded.labels:
        raise ConfigError(f"{model_dir}: the model has no labels")
    return loaded
