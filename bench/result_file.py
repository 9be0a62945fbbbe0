"""The results file of a bench script, and the rule that keeps earlier results: never overwritten by default.

``bench/results/`` holds the JSON files the README and ``bench/HISTORY.md`` quote, many of them under the
scripts' default names (``pipeline.json``, ``latency.json``, ``fsdd_loso.json``, ...). So every script
that writes there takes ``--tag NAME`` (``<name>_NAME.json`` instead of ``<name>.json``) and ``--force``,
and checks its file before it measures anything: if the file exists, the run is refused with a one-line
message saying so, unless ``--force`` is given. A script that writes its file more than once (the FSDD
sweep, after every run) checks it once, at the start.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def add_flags(parser: argparse.ArgumentParser, default: str, *, tag: bool = True) -> None:
    """``--tag`` (unless the script has its own) and ``--force`` for a script whose results file is ``default``."""
    path = Path(default)
    if tag:
        parser.add_argument("--tag", default="", metavar="NAME",
                            help=f"write {path.stem}_NAME{path.suffix} instead of {path.name} (under bench/results/)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite the results file if it exists; without it, an existing file (such as the "
                             "committed results the README quotes) is kept and the run refused before it starts")


def tagged(name: str | Path, tag: str = "") -> Path:
    """``bench/results/<name>`` (an absolute ``name`` as it is), ``_<tag>`` added to its stem when ``tag`` is set."""
    path = RESULTS / name
    return path.with_name(f"{path.stem}_{tag}{path.suffix}") if tag else path


def shown(path: Path) -> str:
    """``path`` relative to the checkout when it lies inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def refusal(path: Path, what: str = "already exists") -> str:
    return (f"{shown(path)} {what} (earlier results are not overwritten: bench/results/ keeps the committed "
            f"ones the README quotes); choose another name with --tag NAME, or pass --force to overwrite it")


def claim(name: str | Path, tag: str = "", *, force: bool = False) -> Path:
    """The results file to write (:func:`tagged`); ``SystemExit`` if it exists and ``force`` is not set.

    Call it before measuring, so that a refused run costs nothing.
    """
    path = tagged(name, tag)
    if path.exists() and not force:
        raise SystemExit(refusal(path))
    return path
