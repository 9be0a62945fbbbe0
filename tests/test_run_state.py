"""sound_tf.run_state: what a run's run_state.json gives when it is missing, damaged or not an object, how a write
merges into it, and when a run's state says its export is pending or its command stopped before training; what
read_history makes of a history.csv cut short, holding cells that are not numbers, or not Keras' at all."""

from __future__ import annotations

import json
import math
import re

import pytest

from sound_tf import run_state
from sound_tf.errors import SoundTFError


def test_a_missing_state_is_empty_and_a_damaged_one_is_an_error_naming_the_file(tmp_path):
    """A run folder without run_state.json (or with a folder of that name) has no state; one that is not JSON, is not
    UTF-8, or holds another JSON value than an object is an error naming the file and what is wrong with it, which
    a command prints as its one line (a SoundTFError)."""
    assert run_state.read_state(tmp_path / "absent") == {}
    assert run_state.read_state(tmp_path) == {}
    (tmp_path / "run_state.json").mkdir()
    assert run_state.read_state(tmp_path) == {}
    (tmp_path / "run_state.json").rmdir()
    path = tmp_path / "run_state.json"
    for text, problem in ((b'{"status": "running", "finger', r"not valid JSON \(Unterminated string starting at: "
                                                               r"line 1 column 23 \(char 22\)\)"),
                          (b'{"status": "d\xff"}', r"not valid JSON \('utf-8' codec can't decode byte 0xff"),
                          (b'["running"]', "holds list, not the JSON object a run's state is"),
                          (b'"done"', "holds str, not the JSON object"),
                          (b"null", "holds NoneType, not the JSON object")):
        path.write_bytes(text)
        with pytest.raises(SoundTFError, match=rf"^{path}: {problem}.*; delete the run folder, or restore the file$"):
            run_state.read_state(tmp_path)


def test_a_write_merges_into_the_state_and_writes_it_as_json(tmp_path):
    """Each write keeps what earlier writes recorded (train records its fingerprint, then status, then seconds) and
    a key written again takes its new value; the file is the run's run_state.json, indented JSON on lines."""
    run_state.write_state(tmp_path, fingerprint="f", export_profile="default", export_done=False)
    run_state.write_state(tmp_path, status="running", export_done=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_state.json"]
    expected = {"fingerprint": "f", "export_profile": "default", "export_done": True, "status": "running"}
    assert (tmp_path / "run_state.json").read_text(encoding="utf-8") == json.dumps(expected, indent=2) + "\n"
    assert run_state.read_state(tmp_path) == expected


@pytest.mark.parametrize("state, pending", [
    ({"status": "done", "export_profile": "default", "export_done": False}, True),
    ({"status": "done", "export_profile": "export/micro.toml"}, True),  # a flag not written yet: not done
    ({"status": "done", "export_profile": "default", "export_done": True}, False),
    ({"status": "running", "export_profile": "default", "export_done": False}, False),  # training not finished
    ({"fingerprint": "f", "export_profile": "default", "export_done": False}, False),  # stopped before training
    ({"status": "done", "export_done": False}, False),  # no export asked for
    ({"status": "done", "export_profile": None, "export_done": False}, False),
    ({"status": "done", "export_profile": "", "export_done": False}, False),
    ({}, False),
])
def test_an_export_is_pending_when_training_finished_and_the_export_asked_for_did_not(state, pending):
    assert run_state.export_pending(state) is pending


@pytest.mark.parametrize("state, stopped", [
    ({"fingerprint": "f"}, True),  # train's first state: its data was decoding
    ({"fingerprint": "f", "export_profile": "default", "export_done": False}, True),  # the same with --export
    ({"fingerprint": "f", "status": "running"}, False),  # training began
    ({"fingerprint": "f", "status": "done"}, False),
    ({"status": "running"}, False),  # an earlier version's state, without the fingerprint
    ({}, False),  # no state at all: no run there
    ({"fingerprint": ""}, False),
])
def test_a_run_stopped_before_training_has_its_fingerprint_and_no_status(state, stopped):
    assert run_state.stopped_before_training(state) is stopped


#: A history.csv as Keras' CSVLogger writes it: the header with epoch 0's row, a row per epoch, each ended by \r\n.
_CSVLOGGER_ROWS = ["epoch,accuracy,learning_rate,loss,val_accuracy,val_loss", "0,0.25,0.001,1.75,0.3125,1.5",
                   "1,0.5,0.001,1.25,0.4375,1.125", "2,0.625,0.0005,0.875,0.5,1.0625"]


def test_a_row_cut_short_by_a_kill_is_no_epoch_and_the_others_read_whole(tmp_path):
    """A run killed while CSVLogger wrote a row leaves it without its line break, cut anywhere: every prefix of a
    three-epoch file gives the epochs whose rows ended, each column a value per epoch. The trainer's reader took
    the cut row's cells (a loss '0.8' for 0.875, no val_loss: its columns one value apart) and compare counted it
    as an epoch; a cut header is no epoch either."""
    text = "".join(row + "\r\n" for row in _CSVLOGGER_ROWS)
    path = tmp_path / "history.csv"
    whole = [[float(cell) for cell in row.split(",")] for row in _CSVLOGGER_ROWS[1:]]
    columns = _CSVLOGGER_ROWS[0].split(",")
    for end in range(len(text) + 1):
        path.write_bytes(text[:end].encode())
        ended = text[:end].count("\r") - 1  # rows whose line ended (the \r is enough), past the header's
        expected = {name: [row[i] for row in whole[:ended]] for i, name in enumerate(columns)} if ended > 0 else {}
        assert run_state.read_history(path) == expected, text[:end]
    path.write_bytes(text[:-len("5\r\n")].encode())  # the last epoch's val_loss cut to 1.062
    assert run_state.read_history(path)["val_loss"] == [1.5, 1.125]


def test_cells_that_are_not_numbers_are_nan_and_every_column_has_a_value_per_epoch(tmp_path):
    """Keras writes NA for a metric an epoch did not log and a quoted list for one that is a list; a hand edit can
    leave a cell empty or a row short. Each is NaN in its place: the trainer's reader raised on NA or a word
    (float('NA')), and left an empty cell out, so that the columns after it named the wrong epoch. NaN and inf
    as Python writes them are numbers; the epoch column is read as the others."""
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss,per_class\r\n0,1.5,NA,\"[0.5, 0.25]\"\r\n1,abc,,0.5\r\n2,nan,inf\r\n"
                    "3,0.75,0.625,0.25\r\n", encoding="utf-8")
    history = run_state.read_history(path)
    assert history["epoch"] == [0.0, 1.0, 2.0, 3.0]
    assert [sorted(history), len(history["loss"]), len(history["val_loss"]), len(history["per_class"])] == \
        [["epoch", "loss", "per_class", "val_loss"], 4, 4, 4]
    assert history["loss"][0] == 1.5 and math.isnan(history["loss"][1]) and math.isnan(history["loss"][2])
    assert math.isnan(history["val_loss"][0]) and math.isnan(history["val_loss"][1])
    assert history["val_loss"][2:] == [math.inf, 0.625]
    assert math.isnan(history["per_class"][0]) and math.isnan(history["per_class"][2])  # a list; a row short
    assert history["per_class"][1::2] == [0.5, 0.25]


def test_a_history_without_epochs_is_empty_and_one_that_cannot_be_read_is_an_error_naming_it(tmp_path):
    """No file, an empty one (CSVLogger creates it as training begins) and its header alone (a resume's trim) hold
    no epoch: {}. A folder in its place, bytes that are not UTF-8, or a file without the epoch column every
    CSVLogger file has is a HistoryError (a SoundTFError) naming the file and the problem, which compare prints
    as it leaves the run out; the report's reader drew a file of another kind as empty panels."""
    path = tmp_path / "history.csv"
    assert run_state.read_history(path) == {}
    for text in ("", "\r\n", _CSVLOGGER_ROWS[0] + "\r\n"):
        path.write_text(text, encoding="utf-8")
        assert run_state.read_history(path) == {}
    for data, problem in ((b"epoch,loss\r\n0,1.\xe9\r\n", "not a readable CSV file ('utf-8' codec can't decode byte "
                                                          "0xe9 in position 16: invalid continuation byte)"),
                          (b"path,label\r\na.wav,dog\r\n", "not the file sound_tf writes there (no column epoch; its "
                                                          "first line: 'path,label')"),
                          (b'{"loss": [1.5]}\n', "not the file sound_tf writes there (no column epoch; its first "
                                               "line: '{\"loss\": [1.5]}')")):
        path.write_bytes(data)
        with pytest.raises(SoundTFError, match=rf"^{re.escape(f'{path}: {problem}')}$") as caught:
            run_state.read_history(path)
        assert isinstance(caught.value, run_state.HistoryError) and caught.value.path == path
    path.unlink()
    path.mkdir()
    with pytest.raises(run_state.HistoryError, match=rf"^{re.escape(str(path))}: cannot be read \(Is a directory\)$"):
        run_state.read_history(path)


def test_the_epochs_a_history_records_are_its_rows_that_ended(tmp_path):
    """crossval's epochs column, compare's and bench/tune_fsdd.py's each counted read_history's epoch column by hand:
    one count for all. Three rows that ended and a fourth a kill cut short are 3 epochs, the same from the file or
    from the columns read_history gave of it; no file, or its header alone, is 0; a file that is not Keras' is the
    HistoryError read_history raises, naming it."""
    path = tmp_path / "history.csv"
    assert run_state.epochs_recorded(path) == 0  # absent: no epoch yet, as read_history's {}
    path.write_text(_CSVLOGGER_ROWS[0] + "\r\n", encoding="utf-8")
    assert run_state.epochs_recorded(path) == 0
    path.write_text("".join(row + "\r\n" for row in _CSVLOGGER_ROWS) + "3,0.75,0.0005,0.6", encoding="utf-8")
    assert run_state.epochs_recorded(path) == len(_CSVLOGGER_ROWS) - 1 == 3
    assert run_state.epochs_recorded(run_state.read_history(path)) == 3
    path.write_text("path,label\r\na.wav,dog\r\n", encoding="utf-8")
    with pytest.raises(run_state.HistoryError, match=rf"^{re.escape(str(path))}: not the file sound_tf writes there"):
        run_state.epochs_recorded(path)
