"""``--quiet``'s hold on file descriptor 2: TensorFlow's native INFO and WARNING lines are left out, every other
line (an error, a traceback, a Python warning) is passed on in order, and stderr is given back after the block.
The classifier of native lines (shared with the server's JSON log) gives each its level."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sound_tf.quiet import NativeLine, is_native_noise, native_line, native_logs_held, stderr_through

from conftest import environment_as_a_user_starts_it

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


def test_a_sigterm_in_the_block_ends_the_process_by_it_after_the_lines_in_the_pipe():
    # What uvicorn does on SIGTERM (the server's one process, inside stderr_as_json): it catches the signal with its
    # own handler, shuts down, writes its last lines, puts the previous handler back and raises the signal again.
    # The process ended there with those lines still in the pipe, unwritten (0 of the 2 lines, 3 runs in 3).
    code = ("import os, signal\n"
            "from sound_tf.quiet import native_logs_held\n"
            "with native_logs_held(True):\n"
            "    previous = signal.signal(signal.SIGTERM, lambda *_: None)\n"
            "    os.write(2, b'Application shutdown complete.\\n')\n"
            "    os.write(2, b'Finished server process\\n')\n"
            "    signal.signal(signal.SIGTERM, previous)\n"
            "    signal.raise_signal(signal.SIGTERM)\n"
            "    os.write(2, b'not reached\\n')\n")
    for _ in range(3):
        ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert (ended.returncode, ended.stderr) == (-signal.SIGTERM,
                                                    "Application shutdown complete.\nFinished server process\n")


CHECK_FAILED = "F0000 00:00:1796440878.1    6200 tensor_shape.cc:40] Check failed: d >= 0 (-1 vs. 0)\n"
ERROR_LINE = "error: the model is broken\n"
_DIE = """
import faulthandler, os, signal, sys
from {module} import {function}
faulthandler.enable()
with {function}({argument}):
    os.write(2, {lines!r})
    {end}
    os.write(2, b'not reached\\n')
"""
SINKS = {"quiet": ("sound_tf.quiet", "native_logs_held", "True"),
         "json": ("sound_tf.serve.logs", "stderr_as_json", "'info'")}
ENDS = {"abort": ("os.abort()", -signal.SIGABRT), "exit": ("os._exit(3)", 3),
        "sigkill": ("os.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL),
        "segfault": ("faulthandler._sigsegv()", -signal.SIGSEGV)}
#: What faulthandler writes first when the process dies by a signal it watches (SIGKILL cannot be watched).
DUMPS = {"abort": "Fatal Python error: Aborted\n", "segfault": "Fatal Python error: Segmentation fault\n"}


@pytest.mark.parametrize("end", sorted(ENDS))
@pytest.mark.parametrize("sink", sorted(SINKS))
def test_a_process_that_dies_abruptly_in_the_block_still_shows_its_last_lines(sink, end, tmp_path):
    """A native abort() after absl's "F... Check failed" line, os._exit, a SIGKILL and a segfault (with
    faulthandler's dumps) ended the process with its last lines still in the pipe, read by a thread that died with
    it: stderr was empty (--quiet), or held no record (the server's JSON). They reach stderr now, as the block's
    sink makes them (--quiet passes fatal and error lines; the server turns them into JSON records)."""
    module, function, argument = SINKS[sink]
    statement, code = ENDS[end]
    script = _DIE.format(module=module, function=function, argument=argument, end=statement,
                         lines=(CHECK_FAILED + ERROR_LINE).encode())
    ended = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (ended.returncode, ended.stdout) == (code, ""), ended.stderr
    if sink == "quiet":
        assert ended.stderr.startswith(CHECK_FAILED + ERROR_LINE), ended.stderr
        rest = ended.stderr[len(CHECK_FAILED + ERROR_LINE):]
        if end in DUMPS:
            assert rest.startswith(DUMPS[end]), rest
            assert 'File "<string>", line 7 in <module>' in rest, rest
        else:
            assert rest == ""
        return
    records = [json.loads(line) for line in ended.stderr.splitlines()]
    assert [(r["level"], r["logger"]) for r in records] == [("critical", "sound_tf.serve.native"),
                                                            ("error", "sound_tf.serve.stderr")], records
    assert records[0]["message"] == "Check failed: d >= 0 (-1 vs. 0)" and records[0]["source"] == "tensor_shape.cc:40"
    if end in DUMPS:  # the error line and the dump are one block of text
        assert records[1]["message"].startswith(ERROR_LINE + DUMPS[end])
        assert 'File "<string>", line 7 in <module>' in records[1]["message"]
    else:
        assert records[1]["message"] == ERROR_LINE.strip()


def test_the_forwarder_ignores_the_current_folders_modules(tmp_path):
    """A script run from a folder holding a ``sound_tf`` folder of its own (an old checkout) or a ``select.py``:
    the script imports neither (its sys.path starts at its own folder), and its forwarder must not either."""
    work, scripts = tmp_path / "work", tmp_path / "scripts"
    (work / "sound_tf").mkdir(parents=True)
    scripts.mkdir()
    (work / "sound_tf" / "__init__.py").write_text("raise SystemExit('imported the folder sound_tf')\n")
    (work / "select.py").write_text("raise SystemExit('imported the folder select.py')\n")
    script = scripts / "held.py"
    script.write_text("import os, sys\nfrom sound_tf.quiet import native_logs_held\n"
                      f"with native_logs_held(True):\n    os.write(2, {(NOISE + ERROR + KEPT[0]).encode()!r})\n")
    ended = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (ended.returncode, ended.stderr) == (0, ERROR + KEPT[0])


class _Unimportable:
    """A sink the forwarder process cannot build: its module does not exist there."""

    __module__ = "sound_tf.no_such_module"

    def line(self, line):
        return b""

    def idle(self):
        return b""

    def arguments(self):
        return []


def test_when_the_forwarder_cannot_start_the_block_runs_with_its_lines_unchanged(capfd, monkeypatch):
    """No Python to start (an embedded interpreter's empty sys.executable) or a sink the forwarder fails to build:
    the command runs on, its stderr unfiltered, rather than failing or writing into a pipe no one reads."""
    before = os.fstat(2)
    with stderr_through(_Unimportable()):
        _write_all(NOISE + ERROR)
        assert os.fstat(2).st_ino == before.st_ino
    err = capfd.readouterr().err
    assert "ModuleNotFoundError: No module named 'sound_tf.no_such_module'" in err and err.endswith(NOISE + ERROR)
    monkeypatch.setattr(sys, "executable", "")
    with native_logs_held(True):
        _write_all(NOISE + ERROR)
        assert os.fstat(2).st_ino == before.st_ino
    assert capfd.readouterr().err == NOISE + ERROR


def test_the_block_leaves_sigterms_handler_as_it_is():
    """A caller's handler and the default action alike: the forwarder process, not a handler, writes the lines a
    SIGTERM leaves in the pipe."""

    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, own)
    try:
        with native_logs_held(True):
            assert signal.getsignal(signal.SIGTERM) is own
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)
    with native_logs_held(True):
        assert signal.getsignal(signal.SIGTERM) is previous
    assert signal.getsignal(signal.SIGTERM) is previous


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


REPO = Path(__file__).resolve().parents[1]
# The commands that gained --quiet, each with arguments that get as far as TensorFlow's import (lite: as far as
# its error on a missing model; it never imports TensorFlow). {run} passes the run-folder checks made before it.
QUIET_CLIS = {"sound_tf.evaluate": ["{run}"], "sound_tf.predict": ["{run}", "{wav}"],
              "sound_tf.show": ["{wav}", "--out", "{tmp}/x.png"],
              "sound_tf.augment_cli": ["{wav}", "--out", "{tmp}/aug"], "sound_tf.lite": ["{tmp}/no.tflite", "{wav}"],
              "sound_tf.export": ["{run}"], "sound_tf.tune": ["--out", "{tmp}/search"]}
_IMPORT_WATCH = """
import importlib, json, os, sys
level_at_import = []
class _NoTensorFlow:  # records TF_CPP_MIN_LOG_LEVEL when TensorFlow (or Keras, which imports it) is imported
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "keras"):
            level_at_import.append(os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
            raise ImportError(f"{name} is left out by the test")
        return None
sys.meta_path.insert(0, _NoTensorFlow)
module = importlib.import_module(sys.argv[1])
calls = []
for extra in ([], ["--quiet"]):
    os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    level_at_import.clear()
    try:
        outcome = module.main(sys.argv[2:] + extra)
    except SystemExit as exc:  # argparse refused the arguments
        outcome = f"exit {exc.code}"
    except ImportError:
        outcome = "import"
    calls.append({"outcome": outcome, "level_at_import": list(level_at_import)})
print(json.dumps(calls))
"""


def _tone(path: Path, rate_hz: int = 8000) -> Path:
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(0.6 * rate_hz)) / rate_hz), rate_hz, subtype="PCM_16")
    return path


def _run_folder(folder: Path) -> Path:
    """A folder with what config.load_run_config checks before TensorFlow loads (config.json with labels, a
    model.keras file; not a model), so evaluate, predict and export go on to TensorFlow's import."""
    from sound_tf.config import Config, apply_overrides

    folder.mkdir(parents=True)
    apply_overrides(Config(), {"labels": ["low", "high"]}).save(folder)
    (folder / "model.keras").write_bytes(b"")
    return folder


def _environment() -> dict[str, str]:
    """This process's environment without TF_CPP_MIN_LOG_LEVEL (the conftest sets it for the tests), TensorFlow's
    oneDNN notice written on any x86 CPU (:func:`conftest.environment_as_a_user_starts_it`)."""
    return environment_as_a_user_starts_it()


@pytest.mark.parametrize("module", sorted(QUIET_CLIS))
def test_every_command_takes_quiet_and_sets_tensorflows_log_level_before_importing_it(module, tmp_path):
    """evaluate, predict, show, augment, export and tune set TF_CPP_MIN_LOG_LEVEL=2 before TensorFlow is imported,
    with or without --quiet (augment never set it: TensorFlow's INFO lines, such as cpu_feature_guard's, were
    printed; export and tune imported TensorFlow as they loaded, before main), and every parser takes --quiet; lite
    takes it and still never imports TensorFlow."""
    wav, run = _tone(tmp_path / "tone.wav"), _run_folder(tmp_path / "run")
    argv = [arg.format(tmp=tmp_path, wav=wav, run=run) for arg in QUIET_CLIS[module]]
    done = subprocess.run([sys.executable, "-c", _IMPORT_WATCH, module, *argv], cwd=REPO, env=_environment(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    calls = json.loads(done.stdout.strip().splitlines()[-1])
    if module == "sound_tf.lite":
        assert calls == [{"outcome": 2, "level_at_import": []}] * 2, calls  # error: the missing model
    else:
        assert calls == [{"outcome": "import", "level_at_import": ["2"]}] * 2, calls


@pytest.mark.parametrize("case", ["augment", "show", "show_unreadable"])
def test_quiet_commands_print_only_their_errors(case, tmp_path):
    """With --quiet (TF_CPP_MIN_LOG_LEVEL unset), augment and show print nothing but errors: no progress or
    "wrote" lines, none of TensorFlow's start-up lines (absl's notice and the oneDNN one, twice)."""
    wav, png, out = _tone(tmp_path / "tone.wav"), tmp_path / "tone.png", tmp_path / "aug"
    unreadable = tmp_path / "broken.wav"
    unreadable.write_bytes(b"RIFF\x00\x00not really a wave file")
    command, code, written = {
        "augment": (["sound_tf.augment", str(wav), "--out", str(out), "--count", "1"], 0,
                    [out / "original.wav", out / "params.json", out / "spectrograms.png"]),
        "show": (["sound_tf.show", str(wav), "--out", str(png)], 0, [png]),
        "show_unreadable": (["sound_tf.show", str(unreadable), "--out", str(png)], 2, []),
    }[case]
    done = subprocess.run([sys.executable, "-m", *command, "--quiet"], cwd=REPO, env=_environment(),
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (code, ""), done.stderr[-2000:]
    if code == 0:
        assert done.stderr == ""
        assert all(path.is_file() and path.stat().st_size > 0 for path in written)
    else:
        assert done.stderr.startswith(f"error: {unreadable}: ") and done.stderr.count("\n") == 1, done.stderr
        assert not png.exists()


@pytest.mark.parametrize("module, args", [("sound_tf.export", ["{run}"]),
                                          ("sound_tf.tune", ["--out", "{tmp}/search"])])
def test_a_ctrl_c_while_tensorflow_starts_ends_the_command_with_one_line(module, args, tmp_path):
    """export and tune import TensorFlow in main's work (held by --quiet): a Ctrl-C in those seconds (a stand-in
    tensorflow whose import is interrupted here) printed the import's traceback and ended by SIGINT, where a
    Ctrl-C anywhere later prints run_cli's one line and exits with 130."""
    stand_in = tmp_path / "site" / "tensorflow"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {**_environment(), "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(REPO)])}
    run = _run_folder(tmp_path / "run")
    for quiet in ([], ["--quiet"]):
        done = subprocess.run([sys.executable, "-m", module, *(arg.format(tmp=tmp_path, run=run) for arg in args),
                               *quiet],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stdout) == (130, ""), done.stderr[-2000:]
        assert done.stderr.splitlines() == ["interrupted (Ctrl-C); finished work is kept (train, crossval and tune "
                                            "resume from it when the same command runs again)"], done.stderr[-2000:]


def _forwarder_pids() -> list[int]:
    """The pids of this process's stderr forwarders (its children running sound_tf.stderr_forwarder)."""
    found = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"sound_tf.stderr_forwarder" in handle.read():
                    found.append(int(pid))
    return found


def test_the_forwarder_outlives_the_signals_sent_to_every_process_of_the_command(capfd):
    """systemd stops a service by sending SIGTERM (or its KillSignal, SIGINT) to every process of its cgroup, and
    `pkill -HUP` reaches every process named: the forwarder must outlive them and still pass on what the command
    writes while it shuts down. A forwarder ended by one left the pipe without a reader (BrokenPipeError)."""
    with native_logs_held(True):
        forwarders = _forwarder_pids()
        assert len(forwarders) == 1
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(forwarders[0], number)
        _write_all(NOISE)
        subprocess.run(["sleep", "0.3"])  # the signals are handled by now
        _write_all(ERROR + KEPT[0])
    assert capfd.readouterr() == ("", ERROR + KEPT[0])


def test_a_last_line_without_its_line_break_is_passed_on(capfd):
    """The last words of a block often lack the final newline (a prompt, a message written in pieces, a native
    abort message): they were read into the forwarder's partial line and never written."""
    with native_logs_held(True):
        _write_all(NOISE + "error: cut short")
    assert capfd.readouterr().err == "error: cut short"


def test_text_written_before_the_block_comes_out_before_the_blocks_lines():
    """A sys.stderr that buffers (a program that reopened it, ``open(2, "w")``: 8 KiB buffered; Python's own writes
    through) holds text until flushed; flushed only at the end of the block, it went into the pipe after everything
    the block wrote ('E0000 ... loading model: ')."""
    code = ("import os, sys\nfrom sound_tf.quiet import native_logs_held\n"
            "sys.stderr = open(2, 'w', closefd=False)\n"
            "sys.stderr.write('loading model: ')\n"
            "with native_logs_held(True):\n"
            f"    os.write(2, {(NOISE + ERROR).encode()!r})\n"
            "sys.stderr.write('done\\n')\n")
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (ended.returncode, ended.stderr) == (0, "loading model: " + ERROR + "done\n")


def test_the_block_ends_after_drain_seconds_when_a_child_holds_the_pipe_and_the_childs_lines_still_come(tmp_path):
    """A child process started in the block (a server's worker, a converter) keeps the pipe open after it: the
    block's end waits for the forwarder DRAIN_SECONDS at most (1.0 here), not until the child ends (3 s), and the
    forwarder, not waited for, still passes on the child's later lines."""
    child = tmp_path / "child.py"
    child.write_text(f"import os, time\ntime.sleep(3)\nos.write(2, {(NOISE + ERROR).encode()!r})\n")
    code = ("import subprocess, sys, time\nfrom sound_tf import quiet\nquiet.DRAIN_SECONDS = 1.0\n"
            "start = time.monotonic()\n"
            "with quiet.native_logs_held(True):\n"
            f"    subprocess.Popen([sys.executable, {str(child)!r}])\n"
            "print(f'{time.monotonic() - start:.2f}')\n")
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (ended.returncode, ended.stderr) == (0, ERROR)
    assert 1.0 <= float(ended.stdout) < 2.5, ended.stdout


def test_the_commands_process_group_killed_at_once_still_shows_its_last_lines():
    """`kill -9 -- -PGID` (timeout's --kill-after, a job scheduler ending a job) kills every process of the
    command's group at once: the forwarder, in a group of its own, still writes what the command left in the
    pipe; in the command's group it died with it, and the error line was lost."""
    code = ("import os, signal\nfrom sound_tf.quiet import native_logs_held\n"
            "with native_logs_held(True):\n"
            f"    os.write(2, {(NOISE + CHECK_FAILED).encode()!r})\n"
            "    os.killpg(0, signal.SIGKILL)\n")
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (ended.returncode, ended.stderr) == (-signal.SIGKILL, CHECK_FAILED)


def test_the_servers_traceback_is_one_record_as_soon_as_the_writer_pauses(capfd):
    """The server's JSON sink gathers a traceback's lines into one record, written when the lines pause (0.2 s):
    without that pause a traceback of a failed request came out only with the next native line, or at shutdown."""
    from sound_tf.serve.logs import stderr_as_json

    traceback = 'Traceback (most recent call last):\n  File "app.py", line 3, in <module>\nValueError: bad clip\n'
    with stderr_as_json("info"):
        _write_all(traceback)
        subprocess.run(["sleep", "1"])
        seen = capfd.readouterr().err
        _write_all("after\n")
    records = [json.loads(line) for line in seen.splitlines()]
    assert [(r["level"], r["message"]) for r in records] == [("error", traceback.strip())], seen
    assert [json.loads(line)["message"] for line in capfd.readouterr().err.splitlines()] == ["after"]


def test_a_line_that_reaches_the_forwarder_in_two_reads_is_one_line(capfd):
    """C++ code writes a line in pieces (absl's prefix, then the message); read 0.3 s apart, the first piece was
    dropped and the second judged alone: an INFO line passed as its tail, and an error lost its prefix."""
    with native_logs_held(True):
        for line in (NOISE.splitlines(keepends=True)[1], ERROR):
            _write_all(line[:30])
            subprocess.run(["sleep", "0.3"])
            _write_all(line[30:])
    assert capfd.readouterr().err == ERROR
