"""sound_tf.tflite_meta used from Python (TensorFlow-free): what embed_metadata accepts, read_metadata reads, and
activation_memory's peak on tiny models converted here with TensorFlow."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sound_tf.errors import ConfigError
from sound_tf.tflite_meta import FORMAT, activation_memory, embed_metadata, read_metadata, strip_metadata

FLATBUFFER = b"\x1c\x00\x00\x00TFL3" + bytes(56)  # stands in for the converter's output
INFO = {"sample_rate_hz": 16000, "clip_samples": 16000, "window_hop_samples": 8000, "input_kind": "waveform",
        "variant": "float32"}


def test_the_module_imports_no_tensorflow():
    code = "import sys, sound_tf.tflite_meta, sound_tf.datasets, sound_tf.locks; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_labels_must_be_an_ordered_list_of_distinct_names():
    # labels="dog" was embedded as the three classes 'd', 'o', 'g'; a set in an arbitrary output order.
    for labels in ("dog", b"dog", {"dog", "rain"}, np.array("dog"), {"dog": 0, "rain": 1}):
        with pytest.raises(ConfigError, match="labels must be a list of class names in output order"):
            embed_metadata(FLATBUFFER, labels=labels, info=INFO)
    with pytest.raises(ConfigError, match=r"labels must be distinct; \['dog'\] appear more than once"):
        embed_metadata(FLATBUFFER, labels=["dog", "rain", "dog"], info=INFO)
    labels = ["dög", "雨 rain", "a,b", 'q"x', "x\u2028y", " spaced "]
    for given in (labels, tuple(labels), np.array(labels), iter(labels)):
        assert read_metadata(embed_metadata(FLATBUFFER, labels=given, info=INFO)).labels == tuple(labels)


def test_embed_refuses_what_read_metadata_would_refuse():
    model = embed_metadata(FLATBUFFER, labels=["a", "b"], info={**INFO, "sample_rate_hz": np.int64(22050),
                                                                "clip_samples": np.int32(22050)})
    assert (read_metadata(model).sample_rate_hz, read_metadata(model).clip_samples) == (22050, 22050)
    assert type(read_metadata(model).info["sample_rate_hz"]) is int
    for key, value in (("sample_rate_hz", 0), ("clip_samples", 16000.0), ("window_hop_samples", 20000),
                       ("sample_rate_hz", True), ("sample_rate_hz", np.True_), ("clip_samples", "16000")):
        with pytest.raises(ConfigError, match="positive whole numbers with window_hop_samples <= clip_samples"):
            embed_metadata(FLATBUFFER, labels=["a", "b"], info={**INFO, key: value})
    with pytest.raises(ConfigError, match=r"info\['format'\] is 'sound_tf.tflite/0'"):
        embed_metadata(FLATBUFFER, labels=["a", "b"], info={**INFO, "format": "sound_tf.tflite/0"})
    assert read_metadata(embed_metadata(FLATBUFFER, labels=["a", "b"],
                                        info={**INFO, "format": FORMAT})).labels == ("a", "b")
    for name in ("labels.txt", "sound_tf.json"):  # replaced the files written from labels / info
        with pytest.raises(ConfigError, match=f"extra_files may not name \\['{name}'\\]"):
            embed_metadata(FLATBUFFER, labels=["a", "b"], info=INFO, extra_files={name: b"x\ny\n"})
    with pytest.raises(ConfigError, match="metadata info must hold JSON values.*float32"):
        embed_metadata(FLATBUFFER, labels=["a", "b"], info={**INFO, "gain": np.float32(0.5)})
    with pytest.raises(ConfigError, match="info must be a mapping"):
        embed_metadata(FLATBUFFER, labels=["a", "b"], info=None)
    extra = read_metadata(embed_metadata(FLATBUFFER, labels=["a", "b"], info=INFO,
                                         extra_files={"features.json": b"{}"})).files
    assert sorted(extra) == ["features.json", "labels.txt", "sound_tf.json"]


def test_the_size_check_takes_numpy_integers_as_every_whole_number_check_does():
    """The check read_metadata and embed_metadata share took only ``int`` (embed_metadata converts numpy
    integers before it, so only a direct caller saw it refuse ``np.int64``); a bool stays refused."""
    from sound_tf.tflite_meta import _check_sizes

    _check_sizes({"sample_rate_hz": np.int64(16000), "clip_samples": np.int32(16000),
                  "window_hop_samples": np.uint16(8000)}, "metadata info")
    for value in (True, np.True_, 8000.0, "8000", np.array(8000)):
        with pytest.raises(ConfigError, match=r"^metadata info needs positive whole numbers with window_hop_samples"):
            _check_sizes({**INFO, "window_hop_samples": value}, "metadata info")


def test_a_path_instead_of_the_model_bytes_is_named(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(embed_metadata(FLATBUFFER, labels=["a", "b"], info=INFO))
    for given in (path, str(path)):
        with pytest.raises(ConfigError, match=r"strip_metadata takes the model's bytes.*read_bytes\(\)"):
            strip_metadata(given)
        with pytest.raises(ConfigError, match=r"embed_metadata takes the model's bytes.*read_bytes\(\)"):
            embed_metadata(given, labels=["a", "b"], info=INFO)
    assert strip_metadata(path.read_bytes()) == FLATBUFFER
    assert strip_metadata(memoryview(path.read_bytes())) == FLATBUFFER
    assert read_metadata(path).labels == read_metadata(bytearray(path.read_bytes())).labels == ("a", "b")


def test_embed_refuses_bytes_that_are_not_a_model_and_labels_it_could_not_read_back():
    """What the docstring says embed_metadata refuses and no test held (found by a mutation pass): bytes that are
    not a TFLite FlatBuffer (no b"TFL3" at bytes 4-8: an empty result, another file, a PNG), an empty list of
    labels (one class per output: a file read back with no class or as one empty name), and a label with a
    carriage return ("dog\\r" was written, then read back as "dog" and refused as disagreeing with
    sound_tf.json: the export wrote a model that read_metadata refused)."""
    for model in (b"", FLATBUFFER[:7], b"\x89PNG\r\n\x1a\n" + bytes(56), b"\x1c\x00\x00\x00TFL2" + bytes(56)):
        with pytest.raises(ConfigError, match=r"^embed_metadata expects a TFLite FlatBuffer \(identifier b'TFL3' at "
                                              r"bytes 4-8\), got "):
            embed_metadata(model, labels=["a", "b"], info=INFO)
    for labels in ([], ["dog\r"], ["rain", "a\rb"], ["dog", ""]):
        with pytest.raises(ConfigError, match=r"^labels must be non-empty names without line breaks, got "):
            embed_metadata(FLATBUFFER, labels=labels, info=INFO)


def test_an_archive_lacking_a_required_key_is_named_not_a_key_error():
    """A sound_tf.json without one of REQUIRED_KEYS (hand-made, or written by another tool) is refused naming the
    key; without that check the format's and the sizes' were KeyErrors, and one without ``variant`` or
    ``input_kind`` was read as whole and failed later, in LiteClassifier, as a KeyError."""
    for key in ("format", "sample_rate_hz", "clip_samples", "window_hop_samples", "input_kind", "variant"):
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("labels.txt", "a\nb\n")
            zipped.writestr("sound_tf.json", json.dumps({k: v for k, v in {"format": FORMAT, **INFO}.items()
                                                         if k != key}))
        with pytest.raises(ConfigError, match=rf"^<bytes>: sound_tf.json lacks \['{key}'\]$"):
            read_metadata(FLATBUFFER + archive.getvalue())


def test_a_cut_archive_is_found_past_a_zip_signature_in_the_model_itself():
    """A model's weights may hold the bytes "PK\\x03\\x04" (any 4 bytes do, about once in 4 GB of them): a file cut
    within its archive is still named as such, the archive found at the header that begins it, not given up at
    the first signature (which then read as a model LiteRT refuses, or one exported without metadata)."""
    flat = FLATBUFFER[:24] + b"PK\x03\x04" + FLATBUFFER[28:]  # a ZIP signature inside the FlatBuffer
    whole = embed_metadata(flat, labels=["a", "b"], info=INFO)
    assert read_metadata(whole).model_size_bytes == len(flat) == 64
    for size in (len(flat) + 4, len(flat) + 40, len(whole) - 1):
        with pytest.raises(ConfigError, match=rf"^<bytes>: not a complete TFLite model: its metadata archive \(from "
                                              rf"byte 64 of {size}\) has no end"):
            read_metadata(whole[:size])


def test_an_archive_lacking_labels_or_facts_is_named():
    """Found by a mutation pass (session 49): no test gave an archive without labels.txt, which read_metadata
    must name rather than fail on with a KeyError."""
    for kept in ("labels.txt", "sound_tf.json"):
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr(kept, "a\nb\n" if kept == "labels.txt" else json.dumps({"format": FORMAT, **INFO}))
        missing = "sound_tf.json" if kept == "labels.txt" else "labels.txt"
        with pytest.raises(ConfigError, match=rf"^<bytes>: the model's archive lacks {missing} \(it holds "
                                              rf"\['{kept}'\]\)$"):
            read_metadata(FLATBUFFER + archive.getvalue())


def test_an_empty_archive_is_no_archive_to_strip():
    """A ZIP of no members (its end record alone) after the model is not an archive strip_metadata can cut at
    (found by a mutation pass: without the check, min() of no members raised a ValueError)."""
    archive = io.BytesIO()
    zipfile.ZipFile(archive, "w").close()
    assert len(archive.getvalue()) == 22  # the end of central directory record
    assert strip_metadata(FLATBUFFER + archive.getvalue()) == FLATBUFFER + archive.getvalue()


def test_litert_failing_on_a_whole_model_for_another_reason_is_no_refusal(monkeypatch):
    """_litert_refusal calls a file damaged only for the FlatBuffer verifier's ValueError; another ValueError or a
    RuntimeError (a model this LiteRT cannot build or run) is not one, and a missing LiteRT refuses nothing."""
    import ai_edge_litert.interpreter as litert  # a dependency: never skipped

    from sound_tf.tflite_meta import _litert_refusal

    for error in (RuntimeError("Encountered unresolved custom op"), ValueError("Didn't find op for builtin opcode"),
                  ValueError("The model is not a valid Flatbuffer buffer")):
        def refuse(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(litert, "Interpreter", refuse)
        assert _litert_refusal(FLATBUFFER) == (str(error) if "Flatbuffer" in str(error) else None), error
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # as if not installed
    assert _litert_refusal(FLATBUFFER) is None


# -- activation_memory ------------------------------------------------------------------------------------------
SHAPE = (1, 32, 24)  # [batch, frames, bins] of the tiny models below


def _converted(skip: bool, *, int8: bool = False) -> bytes:
    """relu -> mean over the last axis -> tanh, then (``skip``) added to the input again, which keeps the input
    alive to the last op; as float32, or fully int8 (int8 input and output) calibrated on seeded noise."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(SHAPE, tf.float32)])
    def model(x):  # [1, 32, 24]
        pooled = tf.tanh(tf.reduce_mean(tf.nn.relu(x), axis=2, keepdims=True))  # [1, 32, 1]
        return x + pooled if skip else pooled  # [1, 32, 24] (broadcast) or [1, 32, 1]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.standard_normal(SHAPE).astype(np.float32)] for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _ops(model: bytes) -> list[dict]:
    """The model's ops as LiteRT's interpreter lists them (the order it runs them in, no delegate)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    return [{**op, "dtypes": {dtypes[i] for i in [*op["inputs"], *op["outputs"]] if i >= 0}}
            for op in interpreter._get_ops_details()]


@pytest.mark.parametrize("int8", [False, True], ids=["float32", "int8"])
def test_the_activation_peak_is_the_largest_sum_of_live_tensors(int8):
    """relu, mean, tanh in a chain: the input dies after relu, so the peak is relu's input and output; with the
    input read again by a final add, it stays alive through the mean, whose peak adds the mean's output. An int8
    model's activations are one byte each, a quarter of float32's."""
    itemsize = 1 if int8 else 4
    full = itemsize * int(np.prod(SHAPE))  # the input and relu's output: [1, 32, 24]
    pooled = itemsize * int(np.prod(SHAPE[:2]))  # mean's and tanh's outputs: [1, 32, 1]
    chain, skip = _converted(False, int8=int8), _converted(True, int8=int8)
    names = [op["op_name"] for op in _ops(skip)]
    assert names == ["RELU", "MEAN", "TANH", "ADD"] and [op["op_name"] for op in _ops(chain)] == names[:3]
    activations = {dtype for op in _ops(skip) for dtype in op["dtypes"]} - {np.dtype(np.int32)}  # the mean's axis
    assert activations == {np.dtype(np.int8 if int8 else np.float32)}
    # relu: input + its output; mean: input (skip) + relu's output + mean's; tanh: input (skip) + 2 pooled;
    # add: input + tanh's output + the sum
    assert activation_memory(chain) == {"activation_bytes_peak": 2 * full,
                                        "activation_peak_op": {"index": 0, "name": "RELU"}}
    assert activation_memory(skip) == {"activation_bytes_peak": 2 * full + pooled,
                                       "activation_peak_op": {"index": 1, "name": "MEAN"}}
    # the appended metadata archive changes nothing
    assert activation_memory(embed_metadata(skip, labels=["a"], info=INFO)) == activation_memory(skip)


def test_weights_are_flash_not_activation_memory():
    """A matmul by a [1024, 8] constant: its 32 KB of weights are not counted, only the input and output."""
    import tensorflow as tf

    weights = np.random.default_rng(1).standard_normal((1024, 8)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec((1, 1024), tf.float32)])
    def model(x):  # [1, 1024]
        return tf.matmul(x, weights)  # [1, 8]

    data = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model).convert()
    assert len(data) > weights.nbytes  # the weights are in the file
    assert activation_memory(data) == {"activation_bytes_peak": 4 * (1024 + 8),
                                       "activation_peak_op": {"index": 0, "name": "FULLY_CONNECTED"}}


def test_activation_memory_refuses_what_is_not_a_model_and_needs_no_tensorflow(tmp_path):
    with pytest.raises(ConfigError, match=r"^activation_memory: not a TFLite model \(no TFL3 identifier"):
        activation_memory(b"PK\x03\x04" + bytes(60))
    with pytest.raises(ConfigError, match=r"activation_memory takes the model's bytes, got str"):
        activation_memory(str(tmp_path / "model.tflite"))
    path = tmp_path / "model.tflite"
    path.write_bytes(_converted(True))
    code = ("import sys; from pathlib import Path; from sound_tf.tflite_meta import activation_memory; "
            f"print(activation_memory(Path({str(path)!r}).read_bytes())['activation_bytes_peak'], "
            "'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(activation_memory(path.read_bytes())["activation_bytes_peak"]), "False"]


def test_failed_artefacts_tell_int8_from_int8_features():
    from sound_tf.tflite_meta import failed_artefacts

    names = ["saved_model", "float32", "int8", "int8_features"]
    assert failed_artefacts(names, ["int8 (built-in kernels): top-1 agreement 96.67% < 97.00%"]) == ["int8"]
    assert failed_artefacts(names, ["int8_features: top-1 agreement 96.67% < 97.00%"]) == ["int8_features"]
    assert failed_artefacts(names, ["int8_features (built-in kernels): accuracy drop 3.33 points > 1",
                                    "float32: top-1 agreement 99.00% < 99.50%"]) == ["float32", "int8_features"]
    assert failed_artefacts(names, []) == []
