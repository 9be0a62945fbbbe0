"""Labels, sample rate and feature parameters carried inside a ``.tflite`` file.

A TFLite model is a FlatBuffer; readers ignore bytes after it. Like the TFLite metadata convention
for *associated files*, the export appends a ZIP archive to the model, so one file is enough on a
device (there is no ``TFLITE_METADATA`` FlatBuffer entry, so tools that read only TFLite Support's
schema do not see it)::

    model_int8.tflite = <FlatBuffer as converted> + <ZIP: labels.txt, sound_tf.json[, features.json]>

``labels.txt`` holds one class name per line (line ``i`` is output ``i``); ``sound_tf.json`` holds the
sample rate, clip and hop sizes, the input kind (``waveform`` or ``log_mel``), the variant and the
run's config. Any ZIP tool lists them (``unzip -l model.tflite``), the LiteRT interpreter loads the
file unchanged, and :func:`read_metadata` reads them back with :mod:`zipfile`. As the archive ends the
file, a file cut short loses it first: :func:`read_metadata` then reports the file as truncated (the
archive's first header without its end, or a FlatBuffer LiteRT's verifier refuses), not as a model
exported without metadata.

This module imports neither TensorFlow nor LiteRT (LiteRT only to check a model that carries no archive):
the exporter and the on-device runner share it.

Examples
--------
>>> flatbuffer_bytes = b"\\x1c\\x00\\x00\\x00TFL3" + bytes(56)  # stands in for the converter's output
>>> model = embed_metadata(flatbuffer_bytes, labels=["dog", "rain"],
...                        info={"sample_rate_hz": 16000, "clip_samples": 16000, "window_hop_samples": 8000,
...                              "input_kind": "waveform", "variant": "float32"})
>>> read_metadata(model).labels
('dog', 'rain')
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ConfigError, is_whole

__all__ = ["FORMAT", "LABELS_FILE", "INFO_FILE", "FEATURES_FILE", "REQUIRED_KEYS", "ModelMetadata",
           "activation_memory", "embed_metadata", "failed_artefacts", "read_metadata", "strip_metadata"]

#: Version tag written into ``sound_tf.json``; bump it when the layout changes.
FORMAT = "sound_tf.tflite/1"
LABELS_FILE = "labels.txt"
INFO_FILE = "sound_tf.json"
FEATURES_FILE = "features.json"
#: Keys every ``sound_tf.json`` must hold (the runner needs them to cut audio into model inputs).
REQUIRED_KEYS = ("format", "sample_rate_hz", "clip_samples", "window_hop_samples", "input_kind", "variant")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a ZIP can hold
# The FlatBuffer file identifier of TFLite models (bytes 4-8).
_TFLITE_IDENTIFIER = b"TFL3"
# How each member of a ZIP archive begins (its local file header's signature).
_ZIP_LOCAL_HEADER = b"PK\x03\x04"


@dataclass(frozen=True)
class ModelMetadata:
    """What :func:`read_metadata` found in a model file.

    Attributes
    ----------
    labels : tuple of str
        Class names in output order.
    info : dict
        The parsed ``sound_tf.json`` (``sample_rate_hz``, ``clip_samples``, ``window_hop_samples``,
        ``input_kind``, ``variant``, ``config`` ...).
    files : dict of str to bytes
        Every associated file, by name (including the two above).
    model_size_bytes : int
        Size of the FlatBuffer alone, without the appended archive.
    """

    labels: tuple[str, ...]
    info: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    model_size_bytes: int = 0

    @property
    def sample_rate_hz(self) -> int:
        return int(self.info["sample_rate_hz"])

    @property
    def clip_samples(self) -> int:
        return int(self.info["clip_samples"])

    @property
    def window_hop_samples(self) -> int:
        return int(self.info["window_hop_samples"])


def failed_artefacts(names: Sequence[str], failures: Sequence[str]) -> list[str]:
    """The artefacts of ``names`` (``export.json``'s) that a line of its ``failures`` belongs to: a line begins with
    the artefact's name and ``:``, or with it and `` (``, as ``int8 (built-in kernels): ...`` does, which is int8's
    and not int8_features'. Export's refusal and the server's warning for a degraded bundle both name them."""
    return [name for name in names if any(failure.startswith((f"{name}:", f"{name} (")) for failure in failures)]


def _is_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == _TFLITE_IDENTIFIER


def _cut_archive(data: bytes) -> int | None:
    """Where a metadata archive that lost its end begins (a file cut short inside it), or ``None``.

    :mod:`zipfile` finds an archive by its end record, the file's last bytes. :func:`embed_metadata` writes
    ``labels.txt`` first, so the archive begins with that member's local header: its signature, 26 bytes
    of fields (the name's length at 26-28) and the name, of which a file cut inside the header keeps a
    part: the bytes it keeps must match.
    """
    name = LABELS_FILE.encode()
    name_length = len(name).to_bytes(2, "little")
    at = data.find(_ZIP_LOCAL_HEADER)
    while at != -1:
        if name_length.startswith(data[at + 26:at + 28]) and name.startswith(data[at + 30:at + 30 + len(name)]):
            return at
        at = data.find(_ZIP_LOCAL_HEADER, at + 1)
    return None


def _litert_refusal(data: bytes) -> str | None:
    """Why LiteRT's FlatBuffer verifier refuses ``data`` as a model, or ``None`` when it accepts it, LiteRT is
    not installed, or LiteRT refuses a verified model for another reason (an op or op version it lacks)
    (imported here only, when a model carries no archive: a file cut short lost it first)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    try:
        Interpreter(model_content=data)
    except ValueError as exc:
        if "flatbuffer" in str(exc).lower():  # the verifier's "The model is not a valid Flatbuffer buffer"
            return str(exc)
        # A whole model this LiteRT cannot build ("Didn't find op for builtin opcode 'PAD' version '99'": a newer
        # converter's): it is not damaged, and without the archive it is one exported without it.
        return None
    except RuntimeError:  # a whole model LiteRT cannot run here (an op it lacks): not a damaged file
        return None
    return None


def _zip_start(data: bytes) -> int | None:
    """Offset where an appended ZIP archive starts, or ``None`` when there is none."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        return None
    if not infos:
        return None
    # zipfile stores where each member's local header really starts, prefix included.
    return min(info.header_offset for info in infos)


def _model_bytes(data: Any, function: str) -> bytes:
    """``data`` as bytes; a path (or anything else) is a ConfigError, not a TypeError from inside zipfile."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    hint = (f"; read the file first: {function}(Path({str(data)!r}).read_bytes())"
            if isinstance(data, (str, os.PathLike)) else "")
    raise ConfigError(f"{function} takes the model's bytes, got {type(data).__name__} {data!r}"[:300] + hint)


def _check_sizes(info: Mapping[str, Any], what: str) -> None:
    """Raise ``ConfigError`` (``what`` first) unless the rate, clip and hop in ``info`` are whole numbers >= 1
    with the hop at most the clip: what :func:`read_metadata` reads, :func:`embed_metadata` writes."""
    sizes = {key: info[key] for key in ("sample_rate_hz", "clip_samples", "window_hop_samples")}
    if any(not is_whole(v) or v < 1 for v in sizes.values()) or (
            sizes["window_hop_samples"] > sizes["clip_samples"]):
        raise ConfigError(f"{what} needs positive whole numbers with window_hop_samples <= clip_samples, got {sizes}")


def strip_metadata(data: bytes) -> bytes:
    """The FlatBuffer without an appended archive (``data`` unchanged when there is none)."""
    data = _model_bytes(data, "strip_metadata")
    start = _zip_start(data)
    return data if start is None else data[:start]


def embed_metadata(model: bytes, *, labels: Sequence[str], info: Mapping[str, Any],
                   extra_files: Mapping[str, bytes] | None = None) -> bytes:
    """Return ``model`` with a ZIP of ``labels.txt``, ``sound_tf.json`` and ``extra_files`` appended.

    An archive already present is replaced, so embedding twice leaves one archive.

    Parameters
    ----------
    model : bytes
        A TFLite FlatBuffer (as ``TFLiteConverter.convert()`` returns it).
    labels : sequence of str
        Class names in output order; none may contain a line break.
    info : mapping
        JSON-serialisable facts about the model; must hold :data:`REQUIRED_KEYS` except ``format``,
        which is added.
    extra_files : mapping of str to bytes, optional
        More associated files (e.g. ``features.json``).

    Raises
    ------
    ConfigError
        ``model`` is not the bytes of a TFLite FlatBuffer, ``labels`` is not a list (a single name, a
        set), a label is empty, repeated or holds a line break, a required key is missing, a size is
        not a positive whole number (or the hop exceeds the clip), ``info['format']`` is another
        format, an extra file is named ``labels.txt`` or ``sound_tf.json``, or ``info`` is not JSON.
    """
    model = _model_bytes(model, "embed_metadata")
    if not _is_tflite(model):
        raise ConfigError(f"embed_metadata expects a TFLite FlatBuffer (identifier {_TFLITE_IDENTIFIER!r} at "
                          f"bytes 4-8), got {model[:8]!r}")
    # A single name ("dog") was embedded as the labels 'd', 'o', 'g'; a set in an arbitrary output order.
    if isinstance(labels, (str, bytes, set, frozenset, Mapping)) or not hasattr(labels, "__iter__") or (
            getattr(labels, "ndim", 1) == 0):
        raise ConfigError(f"labels must be a list of class names in output order, got {labels!r}")
    labels = [str(label) for label in labels]
    bad = [label for label in labels if not label or "\n" in label or "\r" in label]
    if not labels or bad:
        raise ConfigError(f"labels must be non-empty names without line breaks, got {labels!r}")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:  # two outputs of one name: a prediction could not say which class it means
        raise ConfigError(f"labels must be distinct; {repeated} appear more than once in {labels!r}")
    if not isinstance(info, Mapping):
        raise ConfigError(f"info must be a mapping of the model's facts, got {type(info).__name__}")
    if info.get("format", FORMAT) != FORMAT:
        raise ConfigError(f"info['format'] is {info['format']!r}; this module writes {FORMAT!r} (leave it out)")
    info = {"format": FORMAT, **dict(info), "labels": labels}
    missing = [key for key in REQUIRED_KEYS if key not in info]
    if missing:
        raise ConfigError(f"metadata info lacks {missing}; required keys: {list(REQUIRED_KEYS)}")
    # What read_metadata refuses is not written (numpy integers, e.g. from a config array, are whole numbers).
    for key in ("sample_rate_hz", "clip_samples", "window_hop_samples"):
        value = info[key]
        if not isinstance(value, (bool, float)) and hasattr(value, "__index__") and getattr(value, "ndim", 0) == 0:
            info[key] = int(value.__index__())
    _check_sizes(info, "metadata info")
    extra_files = dict(extra_files or {})
    clash = [name for name in extra_files if name in (LABELS_FILE, INFO_FILE)]
    if clash:  # they replaced the labels or the facts written from ``labels`` and ``info``
        raise ConfigError(f"extra_files may not name {clash}: {LABELS_FILE} and {INFO_FILE} are written from "
                          f"labels and info")
    try:
        info_text = json.dumps(info, indent=2, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"metadata info must hold JSON values (numbers, strings, lists, dicts): {exc}") from None
    buffer = io.BytesIO()
    files = {LABELS_FILE: "".join(f"{label}\n" for label in labels).encode("utf-8"),
             INFO_FILE: info_text.encode("utf-8"), **extra_files}
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():  # a fixed date: the same model gives the same bytes
            entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            entry.external_attr = 0o644 << 16  # rw-r--r-- when unzipped
            archive.writestr(entry, content, zipfile.ZIP_DEFLATED)
    return strip_metadata(model) + buffer.getvalue()


def _example_model(names: Sequence[str]) -> str:
    """The model of ``names`` to name in a hint: ``model_int8.tflite``, the small one for a device, when it is
    there, else the first that takes a waveform by its name (not ``model_int8_features.tflite``), else the first."""
    preferred = ["model_int8.tflite", *(n for n in names if not n.endswith("_features.tflite")), *names]
    return next(n for n in preferred if n in names)


def read_metadata(source: bytes | str | os.PathLike) -> ModelMetadata:
    """Read the associated files of a model written by :func:`embed_metadata`.

    Parameters
    ----------
    source : bytes or path
        The model file or its content.

    Returns
    -------
    ModelMetadata

    Raises
    ------
    ConfigError
        The file is missing, empty or not a TFLite model; it is cut short or damaged (its archive
        begins but has no end, or it has none and LiteRT's verifier refuses the FlatBuffer); it
        carries no sound_tf archive (a whole model exported without one); or the archive is damaged or
        inconsistent (labels.txt and sound_tf.json disagree, a required key is missing). The message
        names the file.
    """
    name = "<bytes>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        name = str(source)
        path = Path(source)
        if path.is_dir():  # e.g. an export bundle given where one of its models belongs
            models = sorted(child.name for child in path.glob("*.tflite") if child.is_file())
            if models:
                raise ConfigError(f"{name}: a folder, not a .tflite model file; pass one of the models in it "
                                  f"({', '.join(models)})")
            # a run folder, whose export writes its models into RUN/export: name them, not "none here"
            exported = sorted(child.name for child in (path / "export").glob("*.tflite") if child.is_file())
            if exported:
                raise ConfigError(f"{name}: a folder, not a .tflite model file; its export/ folder holds the models "
                                  f"({', '.join(exported)}): pass one of them, e.g. "
                                  f"{Path(name) / 'export' / _example_model(exported)}")
            if (path / "model.keras").is_file():  # a run folder not yet exported
                raise ConfigError(f"{name}: a training run folder, not a .tflite model file, and not exported yet (no "
                                  f"export/ folder of models): export it first, `python -m sound_tf.export {name}`, "
                                  f"then pass one of its models, e.g. {Path(name) / 'export' / 'model_int8.tflite'}")
            raise ConfigError(f"{name}: a folder, not a .tflite model file; pass one of the models in it (it holds no "
                              f".tflite file)")
        if not path.is_file():
            raise ConfigError(f"{name}: model file not found")
        data = path.read_bytes()
    if not data:
        raise ConfigError(f"{name}: not a TFLite model: the file is empty (0 bytes; a copy or download cut "
                          f"short?); export or copy the model again")
    if len(data) < 8:
        raise ConfigError(f"{name}: not a TFLite model: only {len(data)} bytes, short of its 8-byte header (root "
                          f"offset and {_TFLITE_IDENTIFIER.decode()} identifier): the file is truncated or damaged")
    if not _is_tflite(data):
        raise ConfigError(f"{name}: not a TFLite model (no {_TFLITE_IDENTIFIER.decode()} identifier at bytes 4-8): "
                          f"another kind of file, or a model damaged from its first bytes")
    try:
        start = _zip_start(data)
        if start is not None:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                files = {info.filename: archive.read(info) for info in archive.infolist()}
    except (zipfile.BadZipFile, zlib.error, ValueError, RuntimeError, EOFError, NotImplementedError) as exc:
        raise ConfigError(f"{name}: the model's metadata archive is damaged ({exc}); export the model again") from None
    if start is None:  # the archive ends the file, so a file cut short lost it (or its end) first
        cut = _cut_archive(data)
        if cut is not None:
            raise ConfigError(f"{name}: not a complete TFLite model: its metadata archive (from byte {cut} of "
                              f"{len(data)}) has no end (the ZIP's end of central directory): the file is truncated "
                              f"(cut short) or damaged; export or copy the model again")
        refusal = _litert_refusal(data)
        if refusal is not None:
            raise ConfigError(f"{name}: not a complete TFLite model: LiteRT refuses its {len(data)} bytes ({refusal}): "
                              f"the file is truncated (cut short) or damaged; export or copy the model again")
        raise ConfigError(f"{name}: the model carries no labels or sample rate (no associated-file archive: exported "
                          f"without one, or the file was cut short where it began); export it with `python -m "
                          f"sound_tf.export RUN_DIR`")
    for required in (LABELS_FILE, INFO_FILE):
        if required not in files:
            raise ConfigError(f"{name}: the model's archive lacks {required} (it holds {sorted(files)})")
    try:
        info = json.loads(files[INFO_FILE].decode("utf-8"))
        # One name per line, split at "\n" only (splitlines() also splits at U+2028 or U+0085 in a name).
        labels = tuple(line.removesuffix("\r")
                       for line in files[LABELS_FILE].decode("utf-8").removesuffix("\n").split("\n"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{name}: {INFO_FILE} or {LABELS_FILE} is not valid UTF-8 / JSON ({exc})") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{name}: {INFO_FILE} holds a JSON {type(info).__name__}, not an object")
    missing = [key for key in REQUIRED_KEYS if key not in info]
    if missing:
        raise ConfigError(f"{name}: {INFO_FILE} lacks {missing}")
    if info["format"] != FORMAT:
        raise ConfigError(f"{name}: unsupported metadata format {info['format']!r}; this runner reads {FORMAT!r}")
    _check_sizes(info, f"{name}: {INFO_FILE}")
    if list(labels) != list(info.get("labels", labels)):
        raise ConfigError(f"{name}: {LABELS_FILE} ({list(labels)}) and {INFO_FILE} labels "
                          f"({info.get('labels')}) disagree")
    return ModelMetadata(labels=labels, info=info, files=files, model_size_bytes=start)


#: Bytes per element of each TFLite tensor type (the schema's ``TensorType`` names), for :func:`activation_memory`.
_TYPE_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "BFLOAT16": 2, "FLOAT64": 8, "INT64": 8, "UINT64": 8, "INT32": 4,
               "UINT32": 4, "INT16": 2, "UINT16": 2, "INT8": 1, "UINT8": 1, "BOOL": 1, "COMPLEX64": 8,
               "COMPLEX128": 16}


def activation_memory(model: bytes) -> dict[str, Any]:
    """An estimate of the RAM a model's activations need: the peak of its live non-constant tensors.

    The operators of the main subgraph run in the FlatBuffer's order (as TFLite Micro and LiteRT without a
    delegate run them). A tensor without data of its own -- an activation -- is alive from the operator that
    writes it (from the start for a model input) to the last operator that reads it (to the end for a model
    output; a variable throughout); at each operator the bytes of the tensors alive there are summed, and the
    largest sum is the peak. Constant tensors (weights: a buffer with data) sit in flash, not RAM, and are left
    out; a constant's dequantised copy (a ``DEQUANTIZE`` of float16 or int8 weights) is an activation. Shapes
    are the FlatBuffer's, a batch of one. The sum is a lower bound of a planner's tensor arena: TFLite Micro's
    greedy planner adds alignment and fragmentation, and its kernels' scratch buffers and the interpreter's own
    structures come on top. Other subgraphs (of control-flow ops) are not counted.

    Parameters
    ----------
    model : bytes
        A ``.tflite`` model, with or without the archive :func:`embed_metadata` appends.

    Returns
    -------
    dict
        ``{"activation_bytes_peak": int, "activation_peak_op": {"index": int, "name": str}}``, the operator
        at the (first) peak in execution order and its builtin name (``"CONV_2D"``; a custom op's own name);
        ``activation_peak_op`` is ``None`` for a model of no operators.

    Raises
    ------
    ConfigError
        ``model`` is not a TFLite model, or a live tensor has a type of no fixed size (a string) or a negative
        dimension.
    """
    data = _model_bytes(model, "activation_memory")
    if not _is_tflite(data):
        raise ConfigError(f"activation_memory: not a TFLite model (no {_TFLITE_IDENTIFIER.decode()} identifier at "
                          f"bytes 4-8)")
    from ai_edge_litert import schema_py_generated as schema  # the FlatBuffer reader LiteRT ships

    root = schema.Model.GetRootAs(data, 0)
    if not root.SubgraphsLength():
        raise ConfigError("activation_memory: the TFLite model has no subgraph (no operators or tensors)")
    graph = root.Subgraphs(0)
    type_names = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    op_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}

    def constant(tensor: Any) -> bool:
        buffer = root.Buffers(tensor.Buffer()) if tensor.Buffer() < root.BuffersLength() else None
        return buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0)  # Size: data past 2 GB

    def op_name(op: Any) -> str:
        code = root.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # the older field holds codes < 127
        if builtin == schema.BuiltinOperator.CUSTOM and code.CustomCode():
            return code.CustomCode().decode("utf-8", "replace")
        return op_names.get(builtin, f"builtin {builtin}")

    def size(index: int) -> int:
        tensor = graph.Tensors(index)
        shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []  # [] for a scalar
        kind = type_names.get(tensor.Type(), str(tensor.Type()))
        name = tensor.Name().decode("utf-8", "replace")
        if kind not in _TYPE_BYTES or any(d < 0 for d in shape):
            raise ConfigError(f"activation_memory: tensor {index} ({name!r}) is {kind} of shape {shape}, whose bytes "
                              f"are not fixed")
        return _TYPE_BYTES[kind] * math.prod(shape)

    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    last = len(ops) - 1
    # tensor -> [first, last] operator index it is alive at
    alive: dict[int, list[int]] = {int(i): [0, 0] for i in graph.InputsAsNumpy()} if graph.InputsLength() else {}
    for index, op in enumerate(ops):
        reads = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        writes = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for tensor in reads:
            if tensor >= 0 and not constant(graph.Tensors(tensor)):  # -1: an optional input left out
                span = alive.setdefault(tensor, [0, index])  # read and never written: alive from the start
                span[1] = max(span[1], index)
        for tensor in writes:
            if tensor >= 0:
                span = alive.setdefault(tensor, [index, index])
                span[0] = min(span[0], index)
    for tensor in (graph.OutputsAsNumpy() if graph.OutputsLength() else []):
        alive.setdefault(int(tensor), [0, last])[1] = last
    for tensor in alive:
        if graph.Tensors(tensor).IsVariable():  # state kept between calls: alive throughout
            alive[tensor] = [0, last]
    sizes = {tensor: size(tensor) for tensor in alive}
    if not ops:
        return {"activation_bytes_peak": sum(sizes.values()), "activation_peak_op": None}
    totals = [sum(sizes[t] for t, (first, end) in alive.items() if first <= index <= end) for index in range(len(ops))]
    peak = max(range(len(ops)), key=lambda index: (totals[index], -index))  # the first of equal peaks
    return {"activation_bytes_peak": int(totals[peak]),
            "activation_peak_op": {"index": peak, "name": op_name(ops[peak])}}
