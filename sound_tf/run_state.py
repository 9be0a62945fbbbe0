"""A training run's state, ``run_state.json``: read, written, and what it says of the run; no TensorFlow.

``train`` records in it how far a run got (its settings' fingerprint before training, ``status`` while and after
it trains) and, with ``--export``, the export it asked for; ``export`` marks that export done when it writes the
run's own bundle (:func:`sound_tf.export.record_run_export`). Both read it through this module, which imports
neither TensorFlow nor the trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import atomic
from .config import RUN_STATE_FILENAME
from .errors import SoundTFError

__all__ = ["STATE_FILE", "export_pending", "read_state", "stopped_before_training", "write_state"]

STATE_FILE = RUN_STATE_FILENAME


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
