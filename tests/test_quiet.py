"""``--quiet``'s hold on file descriptor 2: TensorFlow's native INFO and WARNING lines are left out, every other
line (an error, a traceback, a Python warning) is passed on in order, and stderr is given back after the block.
The classifier of native lines (shared with the server's JSON log) gives each its level."""

from __future__ import annotations

import os

import pytest

from sound_tf.quiet import NativeLine, is_native_noise, native_line, native_logs_held, quiet_requested

# Lines TensorFlow 2.21 wrote during `python -m sound_tf.export` (TF_CPP_MIN_LOG_LEVEL unset), and three others.
NOISE = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         "I0000 00:00:1796440872.369982    6200 port.cc:153] oneDNN custom operations are on.\n"
         "W0000 00:00:1796440877.037000    6200 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\n"
         "I0000 00:00:1796440878.890784    6200 flatbuffer_export.cc:4302] Estimated count of arithmetic ops: 0.051 M\n"
         "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
         "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8\n")
ERROR = "E0000 00:00:1796440878.1    6200 loader.cc:9] could not read /tmp/x/saved_model.pb\n"
KEPT = ("Traceback (most recent call last):\n", "UserWarning: a Python warning\n", "INFO without its colon\n")


def _write_all(text: str) -> None:
    data = text.encode()
    while data:
        data = data[os.write(2, data):]


def test_a_held_block_leaves_out_tensorflows_native_lines_and_passes_on_the_rest_in_order(capfd):
    with native_logs_held(True):
        _write_all(NOISE[:100])  # a line written in two pieces is still one line
        _write_all(NOISE[100:] + ERROR + KEPT[0])
        _write_all(KEPT[1] + KEPT[2])
    assert capfd.readouterr() == ("", ERROR + "".join(KEPT))


def test_without_quiet_every_line_is_shown(capfd):
    with native_logs_held(False):
        _write_all(NOISE + ERROR)
    assert capfd.readouterr().err == NOISE + ERROR


def test_an_exception_leaves_the_block_with_stderr_given_back(capfd):
    before = os.fstat(2)
    with pytest.raises(ValueError, match="^the problem$"), native_logs_held(True):
        _write_all(NOISE)
        raise ValueError("the problem")
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    _write_all("after the block\n")
    assert capfd.readouterr().err == "after the block\n"


@pytest.mark.parametrize("argv, quiet", [(["run", "--quiet"], True), (["--qui", "run"], True),
                                         (["run", "--profile", "micro"], False), (["run", "--quietly"], False)])
def test_quiet_is_read_from_a_command_line_before_its_parser(argv, quiet):
    assert quiet_requested(argv) is quiet


@pytest.mark.parametrize("line, expected", [
    ("I0000 00:00:1796440872.369982    6200 port.cc:153] oneDNN custom operations are on.\n",
     NativeLine("info", "oneDNN custom operations are on.", "port.cc:153")),
    ("W0000 00:00:1796440877.037000    6200 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.",
     NativeLine("warning", "Ignored output_format.", "tf_tfl_flatbuffer_helpers.cc:364")),
    (ERROR, NativeLine("error", "could not read /tmp/x/saved_model.pb", "loader.cc:9")),
    ("F1205 03:41:34.746348   27998 tensor_shape.cc:40] Check failed: d >= 0 (-1 vs. 0)\n",
     NativeLine("critical", "Check failed: d >= 0 (-1 vs. 0)", "tensor_shape.cc:40")),
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
     NativeLine("info", "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")),
    ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
     NativeLine("info", "Created TensorFlow Lite XNNPACK delegate for CPU.")),
    ("WARNING: Attempting to use a delegate that only supports static-sized tensors",
     NativeLine("warning", "Attempting to use a delegate that only supports static-sized tensors")),
    ("ERROR: Didn't find op for builtin opcode 'CONV_2D' version '9'\n",
     NativeLine("error", "Didn't find op for builtin opcode 'CONV_2D' version '9'")),
    ("fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8\n",
     NativeLine("info", "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, "
                        "output_inference_type: INT8")),
])
def test_native_lines_are_told_apart_with_their_level_and_source(line, expected):
    assert native_line(line) == expected
    assert is_native_noise(line) is (expected.level in ("info", "warning"))


@pytest.mark.parametrize("line", [*KEPT, "WARNING:tensorflow:5 out of the last 5 calls triggered retracing\n",
                                  '{"level": "info", "message": "INFO: x"}\n', "error: no such bundle\n", "",
                                  "  File \"/x/app.py\", line 3, in <module>\n"])
def test_other_text_is_not_a_native_line(line):
    assert native_line(line) is None and not is_native_noise(line)
