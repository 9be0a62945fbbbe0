"""A training run's state, ``run_state.json``, and its epochs, ``history.csv``: read, written, and what they say
of the run; no TensorFlow.

``train`` records in it how far a run got (its settings' fingerprint before training, ``status`` while and after
it trains) and, with ``--export``, the export it asked for; ``export`` marks that export done when it writes the
run's own bundle (:func:`sound_tf.export.record_run_export`). Both read it through this module, which imports
neither TensorFlow nor the trainer. Keras' ``CSVLogger`` writes ``history.csv``, a row per epoch; the trainer,
crossval, compare and the report's curves read it through :func:`read_history`, and count its epochs with
:func:`epochs_recorded`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import atomic
from .config import RUN_STATE_FILENAME
from .errors import SoundTFError

__all__ = ["HISTORY_FILE", "STATE_FILE", "HistoryError", "as_number", "epochs_recorded", "export_pending",
           "read_history", "read_state", "stopped_before_training", "write_state"]

STATE_FILE = RUN_STATE_FILENAME
#: Keras' ``CSVLogger`` file in a run folder: a header, then a row per epoch ended.
HISTORY_FILE = "history.csv"
#: The column every ``CSVLogger`` history has first: a file without it is not one.
EPOCH_COLUMN = "epoch"
#: Characters of a header that is not a history's quoted in the error.
HEADER_SHOWN_CHARS = 60


def read_state(run_dir: Path) -> dict[str, Any]:
    """A run's ``run_state.json`` (``{}`` when it has none); one that is not a JSON object (edited by hand, or
    damaged on the disk: it is written whole) is a ``SoundTFError`` naming it."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SoundTFError(f"{path}: not valid JSON ({exc}); delete the run folder, or restore the file") from None
    if not isinstance(state, dict):
        raise SoundTFError(f"{path}: holds {type(state).__name__}, not the JSON object a run's state is; delete "
                           f"the run folder, or restore the file")
    return state


def write_state(run_dir: Path, **state: Any) -> None:
    path = Path(run_dir) / STATE_FILE
    merged = {**read_state(run_dir), **state}
    # Its temporary file, one a kill leaves before the first state exists, is the run's own
    # (sound_tf.locks.abandoned_temporary), not a file of the user's.
    atomic.write_json(path, merged)


def export_pending(state: dict) -> bool:
    """Whether a run's state says it finished training but not the export its command asked for."""
    return state.get("status") == "done" and bool(state.get("export_profile")) and not state.get("export_done")


def stopped_before_training(state: dict) -> bool:
    """Whether a run's state is only what ``train`` records before training (its settings' fingerprint, and with
    ``--export`` the export it asks for): its command ended before training began (while its data decoded)."""
    return bool(state.get("fingerprint")) and not state.get("status")


class HistoryError(SoundTFError, ValueError):
    """A ``history.csv`` that cannot be read, or is not Keras' ``CSVLogger`` file: ``path`` and ``problem``."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(path, problem)  # both in args: it pickles and unpickles whole
        self.path, self.problem = path, problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def read_history(path: Path) -> dict[str, list[float]]:
    """Keras' ``CSVLogger`` file ``path`` (a run's ``history.csv``) as ``{column: a value per epoch}``.

    ``{}`` when it holds no epoch yet: absent, empty (created as training began, the header comes with the first
    epoch's row) or its header alone (a resume's trim). Every column has a value for each epoch: an empty cell,
    one cut short or one that is not a number (Keras' ``NA``) is NaN, and the ``epoch`` column is read as the
    others (0-based floats). A last line without its line break is the row ``CSVLogger`` was writing when the run
    was killed (it ends each row with one): left out.

    Raises
    ------
    HistoryError
        Naming the file: it cannot be read (no permission, a folder), is not UTF-8 text or CSV, or has no
        ``epoch`` column (not a ``CSVLogger`` file).
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise HistoryError(path, f"not a readable CSV file ({exc})") from None
    except OSError as exc:  # no permission, a folder, an I/O error
        raise HistoryError(path, f"cannot be read ({exc.strerror or exc})") from None
    ended = max(text.rfind("\n"), text.rfind("\r")) + 1  # the lines whose writing finished
    try:
        rows = [row for row in csv.reader(io.StringIO(text[:ended], newline="")) if row]
    except csv.Error as exc:
        raise HistoryError(path, f"not a readable CSV file ({exc})") from None
    if not rows:
        return {}
    header, rows = rows[0], rows[1:]
    if EPOCH_COLUMN not in header:
        raise HistoryError(path, f"not the file sound_tf writes there (no column {EPOCH_COLUMN}; its first line: "
                                 f"{','.join(header)[:HEADER_SHOWN_CHARS]!r})")
    if not rows:
        return {}
    return {name: [as_number(row[i]) if i < len(row) else math.nan for row in rows] for i, name in enumerate(header)}


def epochs_recorded(history: Path | Mapping[str, Sequence[float]]) -> int:
    """How many epochs a run's ``history.csv`` records: its rows whose writing ended, as :func:`read_history` reads
    them (0 when it holds none: absent, empty, its header alone; a row a kill cut short is no epoch).

    Parameters
    ----------
    history : Path or mapping
        The ``history.csv`` file, or the columns :func:`read_history` already gave of it (a caller that reads other
        columns too, and so counts the same rows it read).

    Raises
    ------
    HistoryError
        As :func:`read_history`: naming the file, which cannot be read or is not Keras' ``CSVLogger`` file.
    """
    columns = history if isinstance(history, Mapping) else read_history(history)
    return len(columns.get(EPOCH_COLUMN, []))


def as_number(value: Any) -> float:
    """``value`` as a float, NaN when it is none (a history's ``NA``, a word, ``None``): a history's cells, from
    history.csv here or from a dict of lists in :func:`sound_tf.report.load_history`."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
