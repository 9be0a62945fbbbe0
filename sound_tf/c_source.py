"""A TFLite flatbuffer as C++ source for TensorFlow Lite Micro: ``<name>.cc`` and ``<name>.h``.

A microcontroller has no file system: its firmware compiles the model in as a byte array. ``xxd -i model.tflite``
gives one, but without the 16-byte alignment TensorFlow Lite Micro requires of a flatbuffer (on some cores a
misaligned one faults or fails to load), and of a sound_tf ``.tflite`` file, whose label archive is appended after
the flatbuffer (:mod:`sound_tf.tflite_meta`), it embeds that archive too, flash the device never reads. Export's
``c_source`` profile key writes, beside each int8 ``.tflite`` file::

    model_int8_features.cc   alignas(16) const unsigned char model_int8_features[] = {0x1c, ...};
                             const unsigned int model_int8_features_len = ...;
    model_int8_features.h    their declarations, and what the firmware needs to feed the model and read it: the
                             labels in output order, the sample rate, the window and hop, the input shape, and the
                             input's and each output's place, type, quantisation scale and zero point

The ``.cc`` holds the flatbuffer alone, byte for byte. The ``.h`` is valid C (C99, C11) and C++ alike, since many
firmwares (Zephyr, CMSIS, Arduino sketches in C) include a model's header from C files: its numbers are macros
(``MODEL_INT8_FEATURES_SAMPLE_RATE_HZ``), where ``constexpr`` compiled only as C++. It also gives the
``MicroMutableOpResolver`` calls of the ops the model uses (``MODEL_INT8_FEATURES_ADD_OPS(resolver)``), checked against
TensorFlow Lite Micro's builtin ops (:data:`TFLM_BUILTIN_OPS`): one it does not provide is named there, in
``export.json`` and in export's log. This module imports no TensorFlow: it writes text.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ConfigError, and_list

__all__ = ["ALIGNMENT_BYTES", "SOURCE_SUFFIX", "HEADER_SUFFIX", "TFLM_BUILTIN_OPS", "MicroModel", "c_identifier",
           "c_source_note", "c_string", "header_text", "macro_prefix", "missing_ops_text", "missing_ops_warning",
           "ops_not_in_tflm", "resolver_calls", "source_text", "write_c_source"]

#: The alignment TensorFlow Lite Micro requires of a model's flatbuffer (``alignas(16)`` in its own examples).
ALIGNMENT_BYTES = 16
SOURCE_SUFFIX = ".cc"
HEADER_SUFFIX = ".h"
#: Bytes per line of the array, as ``xxd -i`` writes them.
_BYTES_PER_LINE = 12
#: Characters per line of the files' comments.
_COMMENT_WIDTH = 116
# C and C++ keywords: an identifier that spells one gets the ``model_`` prefix.
_RESERVED = frozenset({
    "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char", "class", "const",
    "constexpr", "continue", "default", "delete", "do", "double", "else", "enum", "explicit", "export", "extern",
    "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new",
    "noexcept", "not", "nullptr", "operator", "or", "private", "protected", "public", "register", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "template", "this", "throw", "true", "try", "typedef",
    "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "while", "xor"})

#: TensorFlow Lite Micro's builtin operators, each as TFLite names it (the interpreter's ``op_name``, the flatbuffer's
#: BuiltinOperator) with the ``tflite::MicroMutableOpResolver`` method that registers it: the Add* methods of
#: tensorflow/lite/micro/micro_mutable_op_resolver.h in github.com/tensorflow/tflite-micro, its 2025 version, read on
#: 2026-12-07 (its custom ops, the Signal* ones, CIRCULAR_BUFFER, TFLite_Detection_PostProcess and Ethos-U's, are
#: left out: a converted Keras model has none). A newer TFLM may add ops; an op listed may still lack a kernel for
#: some tensor type.
TFLM_BUILTIN_OPS: tuple[tuple[str, str], ...] = (
    ("ABS", "AddAbs"), ("ADD", "AddAdd"), ("ADD_N", "AddAddN"), ("ARG_MAX", "AddArgMax"), ("ARG_MIN", "AddArgMin"),
    ("ASSIGN_VARIABLE", "AddAssignVariable"), ("AVERAGE_POOL_2D", "AddAveragePool2D"),
    ("BATCH_MATMUL", "AddBatchMatMul"), ("BATCH_TO_SPACE_ND", "AddBatchToSpaceNd"),
    ("BROADCAST_ARGS", "AddBroadcastArgs"), ("BROADCAST_TO", "AddBroadcastTo"), ("CALL_ONCE", "AddCallOnce"),
    ("CAST", "AddCast"), ("CEIL", "AddCeil"), ("CONCATENATION", "AddConcatenation"), ("CONV_2D", "AddConv2D"),
    ("COS", "AddCos"), ("CUMSUM", "AddCumSum"), ("DEPTH_TO_SPACE", "AddDepthToSpace"),
    ("DEPTHWISE_CONV_2D", "AddDepthwiseConv2D"), ("DEQUANTIZE", "AddDequantize"), ("DIV", "AddDiv"),
    ("ELU", "AddElu"), ("EMBEDDING_LOOKUP", "AddEmbeddingLookup"), ("EQUAL", "AddEqual"), ("EXP", "AddExp"),
    ("EXPAND_DIMS", "AddExpandDims"), ("FILL", "AddFill"), ("FLOOR", "AddFloor"), ("FLOOR_DIV", "AddFloorDiv"),
    ("FLOOR_MOD", "AddFloorMod"), ("FULLY_CONNECTED", "AddFullyConnected"), ("GATHER", "AddGather"),
    ("GATHER_ND", "AddGatherNd"), ("GREATER", "AddGreater"), ("GREATER_EQUAL", "AddGreaterEqual"),
    ("HARD_SWISH", "AddHardSwish"), ("IF", "AddIf"), ("L2_NORMALIZATION", "AddL2Normalization"),
    ("L2_POOL_2D", "AddL2Pool2D"), ("LEAKY_RELU", "AddLeakyRelu"), ("LESS", "AddLess"),
    ("LESS_EQUAL", "AddLessEqual"), ("LOG", "AddLog"), ("LOG_SOFTMAX", "AddLogSoftmax"),
    ("LOGICAL_AND", "AddLogicalAnd"), ("LOGICAL_NOT", "AddLogicalNot"), ("LOGICAL_OR", "AddLogicalOr"),
    ("LOGISTIC", "AddLogistic"), ("MAX_POOL_2D", "AddMaxPool2D"), ("MAXIMUM", "AddMaximum"), ("MEAN", "AddMean"),
    ("MINIMUM", "AddMinimum"), ("MIRROR_PAD", "AddMirrorPad"), ("MUL", "AddMul"), ("NEG", "AddNeg"),
    ("NOT_EQUAL", "AddNotEqual"), ("PACK", "AddPack"), ("PAD", "AddPad"), ("PADV2", "AddPadV2"),
    ("PRELU", "AddPrelu"), ("QUANTIZE", "AddQuantize"), ("READ_VARIABLE", "AddReadVariable"),
    ("REDUCE_MAX", "AddReduceMax"), ("REDUCE_MIN", "AddReduceMin"), ("RELU", "AddRelu"), ("RELU6", "AddRelu6"),
    ("RESHAPE", "AddReshape"), ("RESIZE_BILINEAR", "AddResizeBilinear"),
    ("RESIZE_NEAREST_NEIGHBOR", "AddResizeNearestNeighbor"), ("REVERSE_V2", "AddReverseV2"), ("ROUND", "AddRound"),
    ("RSQRT", "AddRsqrt"), ("SELECT_V2", "AddSelectV2"), ("SHAPE", "AddShape"), ("SIN", "AddSin"),
    ("SLICE", "AddSlice"), ("SOFTMAX", "AddSoftmax"), ("SPACE_TO_BATCH_ND", "AddSpaceToBatchNd"),
    ("SPACE_TO_DEPTH", "AddSpaceToDepth"), ("SPLIT", "AddSplit"), ("SPLIT_V", "AddSplitV"), ("SQRT", "AddSqrt"),
    ("SQUARE", "AddSquare"), ("SQUARED_DIFFERENCE", "AddSquaredDifference"), ("SQUEEZE", "AddSqueeze"),
    ("STRIDED_SLICE", "AddStridedSlice"), ("SUB", "AddSub"), ("SUM", "AddSum"), ("SVDF", "AddSvdf"),
    ("TANH", "AddTanh"), ("TRANSPOSE", "AddTranspose"), ("TRANSPOSE_CONV", "AddTransposeConv"),
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", "AddUnidirectionalSequenceLSTM"), ("UNPACK", "AddUnpack"),
    ("VAR_HANDLE", "AddVarHandle"), ("WHILE", "AddWhile"), ("ZEROS_LIKE", "AddZerosLike"),
)


@dataclass(frozen=True)
class MicroModel:
    """What the header says about a model, each value taken from the run's config and the model itself.

    Attributes
    ----------
    labels : sequence of str
        Class names in the model's output order.
    sample_rate_hz, clip_samples, window_hop_samples : int
        The run's rate, window and hop (a longer recording is cut into windows every hop).
    input_shape : sequence of int
        One window's input tensor, batch 1: ``[1, clip_samples]`` (waveform) or ``[1, frames, mel_bins]``.
    input : mapping
        The input tensor's ``dtype`` and, when it is quantised, ``scale`` and ``zero_point``
        (:func:`sound_tf.export.tflite_op_summary`'s ``input``).
    outputs : mapping of str to mapping
        Each output by its signature name: ``output_index`` (its place: ``interpreter.output(i)``), ``dtype`` and,
        when quantised, ``scale`` and ``zero_point``.
    description : str
        One line on what the input is and what made the file.
    ops : sequence of str
        The builtin operators the model's graph uses, as TFLite names them (``CONV_2D``); the header lists the
        resolver calls they need and those TensorFlow Lite Micro does not provide.
    """

    labels: Sequence[str]
    sample_rate_hz: int
    clip_samples: int
    window_hop_samples: int
    input_shape: Sequence[int]
    input: Mapping[str, Any]
    outputs: Mapping[str, Mapping[str, Any]]
    description: str
    ops: Sequence[str] = ()


def c_identifier(name: str) -> str:
    """A valid C and C++ identifier from a file name's stem: each character other than an ASCII letter, digit or
    underscore becomes ``_``; one starting with a digit, or a reserved word, gets a ``model_`` prefix.

    Examples
    --------
    >>> c_identifier("model_int8"), c_identifier("2-class model"), c_identifier("int")
    ('model_int8', 'model_2_class_model', 'model_int')
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident:
        raise ConfigError(f"{name!r}: no C identifier can be made of an empty name")
    if ident[0].isdigit() or ident in _RESERVED or ident.startswith("__") or re.match(r"_[A-Z]", ident):
        ident = f"model_{ident.lstrip('_')}"  # "__x" and "_X" are the implementation's
    return ident


def c_string(text: str) -> str:
    """``text`` as a C string literal of its UTF-8 bytes: printable ASCII as it is (``"`` and ``\\`` escaped),
    every other byte as a three-digit octal escape (which, unlike ``\\x``, never runs into the next character).

    Examples
    --------
    >>> print(c_string('dog "bark"'), c_string("café"))
    "dog \\"bark\\"" "caf\\303\\251"
    """
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F and char != "?":  # "?": "??=" would be a trigraph before C++17
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _comment(text: str) -> list[str]:
    """``text`` as ``//`` comment lines."""
    return [f"// {line}" for line in textwrap.wrap(text, _COMMENT_WIDTH - len("// "))]


def _c_float(value: float) -> str:
    """A float32 value as a C float literal that reads back as the same value (in parentheses when negative, so a
    macro of it stays one operand)."""
    literal = f"{float(value)!r}f"
    return f"({literal})" if literal.startswith("-") else literal


def _c_int(value: int) -> str:
    """An integer as a C literal, in parentheses when negative (``x - PREFIX_ZERO_POINT`` stays right)."""
    return f"({int(value)})" if int(value) < 0 else str(int(value))


def _define(name: str, value: str) -> str:
    """One object-like macro: a number both C and C++ read as a constant expression."""
    return f"#define {name} {value}"


def _tensor_lines(prefix: str, what: str, tensor: Mapping[str, Any]) -> list[str]:
    """The type comment, scale and zero point of one tensor (scale 0 and zero point 0: not quantised, as TFLite
    reports a float tensor's); ``prefix`` is the macros' upper-case one."""
    quantised = "scale" in tensor
    how = ("real = (q - zero_point) * scale" if quantised else "not quantised: scale 0 and zero point 0, as TFLite "
                                                                 "gives a float tensor's")
    return [f"// {what}: {tensor['dtype']}; {how}",
            _define(f"{prefix}_SCALE", _c_float(tensor.get("scale", 0.0))),
            _define(f"{prefix}_ZERO_POINT", _c_int(tensor.get("zero_point", 0)))]


def resolver_calls(ops: Sequence[str]) -> list[str]:
    """The ``tflite::MicroMutableOpResolver`` methods that register ``ops`` (TFLite's names), in their order in
    :data:`TFLM_BUILTIN_OPS`; an op TensorFlow Lite Micro does not provide has none (:func:`ops_not_in_tflm`).

    Examples
    --------
    >>> resolver_calls(["SOFTMAX", "CONV_2D", "RFFT2D"])
    ['AddConv2D', 'AddSoftmax']
    """
    wanted = set(ops)
    return [method for op, method in TFLM_BUILTIN_OPS if op in wanted]


def ops_not_in_tflm(ops: Sequence[str]) -> list[str]:
    """Those of ``ops`` that TensorFlow Lite Micro provides no kernel for (none in :data:`TFLM_BUILTIN_OPS`), sorted.

    Examples
    --------
    >>> ops_not_in_tflm(["SOFTMAX", "RFFT2D", "COMPLEX_ABS"])
    ['COMPLEX_ABS', 'RFFT2D']
    """
    provided = {op for op, _ in TFLM_BUILTIN_OPS}
    return sorted(set(ops) - provided)


def missing_ops_text(array: str, missing: Sequence[str]) -> str:
    """What the log and the done lines say of a model whose ops TensorFlow Lite Micro does not all provide."""
    return f"{array} uses {and_list(list(missing))}, which TensorFlow Lite Micro does not provide"


def missing_ops_warning(record: Mapping[str, Any]) -> str | None:
    """Export's warning for a model of ``record`` (:func:`write_c_source`'s) whose ops TensorFlow Lite Micro does not
    all provide, or None: the firmware would build, and fail at ``AllocateTensors`` on the device."""
    missing = record.get("ops_not_in_tflm")
    return (f"{missing_ops_text(record['array'], missing)} (no Add method in its micro_mutable_op_resolver.h): "
            f"{record['files'][0]} will not run on a device unless its firmware registers a kernel of its own for "
            f"{'it' if len(missing) == 1 else 'each'}" if missing else None)


def _ops_lines(upper: str, ops: Sequence[str]) -> list[str]:
    """The header's operators: a macro of the resolver's size, one making its Add calls, and the ops TensorFlow Lite
    Micro does not provide (none when ``ops`` is unknown)."""
    if not ops:
        return []
    calls, missing = resolver_calls(ops), ops_not_in_tflm(ops)
    kinds = f"{len(set(ops))} different builtin op{'' if len(set(ops)) == 1 else 's'}"
    lines = ["", *_comment(f"Operators: the model's graph uses {kinds}. "
                           f"Register them in C++ with tflite::MicroMutableOpResolver<{upper}_NUM_OPS> resolver; "
                           f"{upper}_ADD_OPS(resolver); (each Add returns kTfLiteOk when it added its op)."),
             _define(f"{upper}_NUM_OPS", str(len(calls))),
             f"#define {upper}_ADD_OPS(resolver) \\", "    do { \\",
             *(f"        (resolver).{method}(); \\" for method in calls), "    } while (0)"]
    if missing:
        lines += _comment(f"NOT IN TENSORFLOW LITE MICRO: {', '.join(missing)} (no Add method in its "
                          f"micro_mutable_op_resolver.h; {upper}_NUM_OPS and {upper}_ADD_OPS leave "
                          f"{'it' if len(missing) == 1 else 'them'} out): this model does not run there unless the "
                          f"firmware registers a kernel of its own for each.")
    return lines


def macro_prefix(ident: str) -> str:
    """The prefix of the header's macros for array ``ident``: its name in upper case, as C names a constant
    (``model_int8_features`` -> ``MODEL_INT8_FEATURES``)."""
    return ident.upper()


def header_text(ident: str, model: MicroModel, *, source_name: str) -> str:
    """The ``.h`` of the array ``ident`` (defined in ``source_name``): valid C99, C11 and C++ alike, so a firmware's
    C files include it too. Numbers are macros (``<IDENT>_SAMPLE_RATE_HZ``), the labels and the input shape ``static
    const`` arrays, the model's array and length ``extern`` with C linkage."""
    guard = f"SOUND_TF_{ident.upper()}_H_"
    upper = macro_prefix(ident)
    shape = ", ".join(str(int(d)) for d in model.input_shape)
    labels = ",\n".join(f"    {c_string(label)}" for label in model.labels)
    lines = [
        f"// {ident}: a TensorFlow Lite Micro model written by sound_tf's export; do not edit (export again).",
        *_comment(model.description),
        f"// The array, in {source_name}, is the model's flatbuffer alone, {ALIGNMENT_BYTES}-byte aligned:",
        f"//   const tflite::Model* model = tflite::GetModel({ident});",
        *_comment(f"This header is C (C99, C11) and C++ alike, so C files of the firmware include it too. "
                  f"{source_name} is C++11 (alignas({ALIGNMENT_BYTES})); a project that compiles the array as C "
                  f"instead declares it _Alignas({ALIGNMENT_BYTES}) (C11), or keeps the alignment its compiler's "
                  f"way (__attribute__((aligned({ALIGNMENT_BYTES}))) in GCC and Clang)."),
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"extern const unsigned char {ident}[];",
        f"extern const unsigned int {ident}_len;",
        "",
        f"// Class names, output i being {ident}_labels[i].",
        _define(f"{upper}_NUM_LABELS", str(len(model.labels))),
        f"static const char *const {ident}_labels[{upper}_NUM_LABELS] = {{",
        labels,
        "};",
        "",
        "// Audio: a window is CLIP_SAMPLES samples at SAMPLE_RATE_HZ (16-bit PCM / 32768); a shorter recording is",
        "// zero-padded at its end, a longer one cut into windows every WINDOW_HOP_SAMPLES.",
        _define(f"{upper}_SAMPLE_RATE_HZ", str(int(model.sample_rate_hz))),
        _define(f"{upper}_CLIP_SAMPLES", str(int(model.clip_samples))),
        _define(f"{upper}_WINDOW_HOP_SAMPLES", str(int(model.window_hop_samples))),
        "",
        "// The input tensor of one window (batch 1), interpreter.input(0).",
        _define(f"{upper}_INPUT_DIMS", str(len(model.input_shape))),
        f"static const int {ident}_input_shape[{upper}_INPUT_DIMS] = {{{shape}}};",
        *_tensor_lines(f"{upper}_INPUT", "input", model.input),
    ]
    for name, output in sorted(model.outputs.items(), key=lambda item: item[1]["output_index"]):
        prefix = f"{upper}_{macro_prefix(c_identifier(name))}"
        lines += ["", f"// Output {name!r}: interpreter.output({prefix}_INDEX), one value per label.",
                  _define(f"{prefix}_INDEX", str(int(output["output_index"]))),
                  *_tensor_lines(prefix, name, output)]
    lines += _ops_lines(upper, model.ops)
    return "\n".join([*lines, "", "#ifdef __cplusplus", '}  // extern "C"', "#endif", "", f"#endif  // {guard}", ""])


def source_text(ident: str, flatbuffer: bytes, *, header_name: str, description: str) -> str:
    """The ``.cc`` defining ``ident`` (``flatbuffer``, byte for byte) and ``ident_len``."""
    rows = (", ".join(f"0x{byte:02x}" for byte in flatbuffer[start:start + _BYTES_PER_LINE])
            for start in range(0, len(flatbuffer), _BYTES_PER_LINE))
    return "\n".join([
        *_comment(f"{ident}: {description}"),
        *_comment(f"The model's flatbuffer alone ({len(flatbuffer):,} bytes, the .tflite file's appended label "
                  f"archive left out), as TensorFlow Lite Micro reads it; declared in {header_name}."),
        f'#include "{header_name}"',
        "",
        f"alignas({ALIGNMENT_BYTES}) const unsigned char {ident}[] = {{",
        *(f"    {row}," for row in rows),
        "};",
        f"const unsigned int {ident}_len = {len(flatbuffer)};",
        "",
    ])


def write_c_source(flatbuffer: bytes, tflite_path: str | Path, model: MicroModel) -> dict[str, Any]:
    """Write ``<name>.cc`` and ``<name>.h`` beside ``tflite_path``, the array named after its stem.

    Parameters
    ----------
    flatbuffer : bytes
        The model as the converter gave it (the ``.tflite`` file without its appended archive).
    tflite_path : path
        The model's ``.tflite`` file; the two files take its name.
    model : MicroModel
        What the header tells the firmware.

    Returns
    -------
    dict
        ``export.json``'s record of them: ``files``, ``array``, ``array_bytes``, ``alignment_bytes``, ``resolver`` (the
        Add methods the header's ``<IDENT>_ADD_OPS`` calls) and ``ops_not_in_tflm``.
    """
    path = Path(tflite_path)
    ident = c_identifier(path.stem)
    source, header = path.with_suffix(SOURCE_SUFFIX), path.with_suffix(HEADER_SUFFIX)
    header.write_text(header_text(ident, model, source_name=source.name), encoding="utf-8")
    source.write_text(source_text(ident, flatbuffer, header_name=header.name, description=model.description),
                      encoding="utf-8")
    return {"files": [source.name, header.name], "array": ident, "array_bytes": len(flatbuffer),
            "alignment_bytes": ALIGNMENT_BYTES, "resolver": resolver_calls(model.ops),
            "ops_not_in_tflm": ops_not_in_tflm(model.ops)}


def c_source_note(artefacts: Mapping[str, Any]) -> str | None:
    """The C source of a bundle as the last line of ``python -m sound_tf.export`` and of ``python -m sound_tf.train
    --export`` name it, from ``export.json``'s ``artefacts`` (each one's ``c_source`` record), or None when there is
    none: one wording for both, where train's line said nothing of the files export's named.

    Examples
    --------
    >>> c_source_note({"int8": {"c_source": {"files": ["model_int8.cc", "model_int8.h"]}}, "float32": {}})
    'C source for TensorFlow Lite Micro: model_int8.cc and model_int8.h'

    A model using ops TensorFlow Lite Micro does not provide (``ops_not_in_tflm``) is named with them.
    """
    records = [entry["c_source"] for entry in artefacts.values()
               if isinstance(entry, Mapping) and isinstance(entry.get("c_source"), Mapping)]
    files = [name for record in records for name in record.get("files", [])]
    missing = [missing_ops_text(record["array"], record["ops_not_in_tflm"]) for record in records
               if record.get("ops_not_in_tflm")]
    return "; ".join([f"C source for TensorFlow Lite Micro: {and_list(files)}", *missing]) if files else None
