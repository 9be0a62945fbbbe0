"""Shared fixtures: seeded synthetic signals and the optional real dataset in ../shared/datasets."""

from __future__ import annotations

import collections
import configparser
import contextlib
import importlib.metadata
import logging
import os
import re
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
FSDD_ENV = "SOUND_TF_FSDD"  # as bench/fsdd.py reads it: the dataset's folder, which holds recordings/
FSDD_DIR = REPO.parent / "shared" / "datasets" / "fsdd" / "recordings"


def environment_as_a_user_starts_it() -> dict[str, str]:
    """This process's environment for a command whose stderr a test reads: without TF_CPP_MIN_LOG_LEVEL (set above
    for the tests; a user has none), and with TensorFlow's oneDNN operations on. TensorFlow turns them on by itself
    only on some CPUs (Intel's with AVX-512 VNNI or AMX: the machines these tests were written on) and prints its
    oneDNN notice then; on others (an AMD EPYC) it prints none, and the tests of what a command writes on stderr
    would find, or hide, nothing to check. TF_ENABLE_ONEDNN_OPTS=1 writes the notice on every x86 machine."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return env


def fsdd_recordings() -> Path:
    """Where the Free Spoken Digit recordings are looked for: ``$SOUND_TF_FSDD``'s ``recordings/`` (or the folder
    itself, when the WAVs lie in it), as the bench scripts read the variable, else :data:`FSDD_DIR` beside the
    checkout. A clone outside /work found no dataset at all while the variable named one."""
    given = os.environ.get(FSDD_ENV)
    if not given:
        return FSDD_DIR
    folder = Path(given).expanduser()
    return folder / "recordings" if (folder / "recordings").is_dir() else folder


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def fsdd_dir() -> Path:
    """The real Free Spoken Digit recordings (:func:`fsdd_recordings`); only tests that need them skip when they are
    absent."""
    folder = fsdd_recordings()
    if not any(folder.glob("*.wav")):
        pytest.skip(f"real dataset not present at {folder} (set ${FSDD_ENV} to the FSDD folder; only this real-data "
                    f"check is skipped)")
    return folder


@pytest.fixture
def folder_walks(monkeypatch) -> collections.Counter:
    """How many times each folder of a folder dataset was walked to its end (by name): a class folder's files are
    listed once per walk, a glance at its first file (format detection) is no walk."""
    from sound_tf import datasets

    walks: collections.Counter = collections.Counter()
    iterate = datasets._iter_audio_files

    def walk(folder, **kwargs):
        yield from iterate(folder, **kwargs)
        walks[Path(folder).name] += 1

    monkeypatch.setattr(datasets, "_iter_audio_files", walk)
    return walks


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's decode cache out of the user's home folder."""
    monkeypatch.setenv("SOUND_TF_CACHE", str(tmp_path_factory.getbasetemp() / "sound_tf_cache"))


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """Give the root logger, and the loggers the server's logging configuration sets, back their handlers, level
    and propagation after each test. A command run in a test (``train.main``) points the root logger at that
    test's captured stdout (capsys), which is closed when the test ends; a later test's log records then printed
    "--- Logging error ---" into its own stderr. The server's configuration (:func:`sound_tf.serve.logs
    .configure_logging`, run by a test_serve test) stops ``sound_tf.audio`` propagating: a later test that reads
    its warnings with caplog (test_evaluate's skipped files, run after test_serve) saw none."""
    from sound_tf.serve.logs import logging_config

    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in logging_config()["loggers"]]
    saved = [(logger.handlers[:], logger.level, logger.propagate, logger.disabled) for logger in loggers]
    yield
    for logger, (handlers, level, propagate, disabled) in zip(loggers, saved):
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


def hold_folder(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock (:mod:`sound_tf.locks`) until it is killed."""
    holder = subprocess.Popen([sys.executable, "-c", "import time\nfrom sound_tf.locks import claim_folder\n"
                               f"assert claim_folder({str(folder)!r}) is None\nprint('held', flush=True)\n"
                               "time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def claimable(folder: Path) -> bool:
    """Whether another process can claim ``folder`` now."""
    code = f"from sound_tf.locks import claim_folder\nraise SystemExit(claim_folder({str(folder)!r}) is not None)"
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


@contextlib.contextmanager
def disk_full_after(limit_bytes: int):
    """Within the block, a write past byte ``limit_bytes`` of any file fails (``OSError`` EFBIG, as a full disk
    fails it with ENOSPC): the write stops half way, what came before the limit written."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    before = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not the signal that ends the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, before)


def killed_mid_write(setup: str, write: str, limit_bytes: int, cwd: Path) -> None:
    """Run ``setup`` then ``write`` (Python) in a new process that the system ends with SIGXFSZ when ``write``
    writes past byte ``limit_bytes`` of a file: unhandled, it ends the process at once, no ``except`` or
    ``finally`` run, as SIGKILL does. A process killed half way through a write; fails when it was not."""
    code = (f"{textwrap.dedent(setup)}\nimport resource, signal\nresource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python starts with it ignored\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))"
            f"\n{textwrap.dedent(write)}\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == -signal.SIGXFSZ, (done.returncode, done.stderr[-2000:])


def sine(freq_hz: float, seconds: float, sample_rate_hz: int, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine wave."""
    t = np.arange(int(round(seconds * sample_rate_hz))) / sample_rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


# -- a mini Speech Commands tree -----------------------------------------------------------------------------
#: Its words, each a tone (a classifier can learn them), and speakers: four for training, then the one
#: validation_list.txt names and the one testing_list.txt names.
SPEECH_WORDS_HZ = {"yes": 300.0, "no": 900.0, "up": 2200.0}
SPEECH_SPEAKERS = ("0a7c2a8d", "1b4c9b89", "2c8d1f3e", "3d9e2a4f", "4eaf3b5a", "5fb04c6b")


def make_speech_commands(root: Path, *, lists: bool = True, takes: int = 2, rate_hz: int = 16000) -> Path:
    """A Speech Commands tree in little: ``<word>/<speaker>_nohash_<take>.wav`` (0.5-s tones at ``rate_hz``, a
    little higher for each speaker), ``validation_list.txt`` naming the fifth speaker's files and
    ``testing_list.txt`` the sixth's (with ``lists``), ``_background_noise_/`` with two seeded 2-s noise
    recordings and a README.md, and a README.md at the root, as the real dataset has."""
    import soundfile as sf

    rng = np.random.default_rng(7)
    named: dict[str, list[str]] = {"validation_list.txt": [], "testing_list.txt": []}
    for word, freq_hz in SPEECH_WORDS_HZ.items():
        for s, speaker in enumerate(SPEECH_SPEAKERS):
            for take in range(takes):
                relative = f"{word}/{speaker}_nohash_{take}.wav"
                (root / word).mkdir(parents=True, exist_ok=True)
                wave = sine(freq_hz * (1 + 0.02 * s), 0.5, rate_hz, amplitude=0.3) + 0.01 * rng.standard_normal(
                    rate_hz // 2).astype(np.float32)
                sf.write(root / relative, wave, rate_hz, subtype="PCM_16")
                if s == 4:
                    named["validation_list.txt"].append(relative)
                elif s == 5:
                    named["testing_list.txt"].append(relative)
    noise = root / "_background_noise_"
    noise.mkdir(parents=True)
    for name in ("white_noise.wav", "running_tap.wav"):
        sf.write(noise / name, (0.1 * rng.standard_normal(2 * rate_hz)).astype(np.float32), rate_hz, subtype="PCM_16")
    (noise / "README.md").write_text("background noise to mix in\n")
    (root / "README.md").write_text("Speech Commands, in little\n")
    if lists:
        for name, lines in named.items():
            (root / name).write_text("".join(f"{line}\n" for line in sorted(lines)))
    return root


# -- a device without TensorFlow -------------------------------------------------------------------------
def _pins(text: str) -> dict[str, str]:
    """``name==version`` requirements in ``text`` (markers ignored), by canonical name."""
    found = re.findall(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;,\\]+)", text)
    return {_canonical(name): version for name, version in found}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def device_pins() -> dict[str, str]:
    """What the README's "On a device without TensorFlow" block installs beside the package."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**On a device without TensorFlow.**"):]
    block = section[section.index("```bash"):section.index("```", section.index("```bash") + 3)]
    return _pins("\n".join(line for line in block.splitlines() if "--no-deps" not in line))


def package_pins() -> dict[str, str]:
    """setup.cfg's ``install_requires`` pins."""
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    return _pins(setup["options"]["install_requires"])


def device_blocker(*also_allowed_modules: str) -> str:
    """Python source that makes every installed third-party module unimportable except those of the
    README's device packages, what they require, and ``also_allowed_modules``' distributions (a test
    harness): run first in a subprocess, it is the device the README describes, with TensorFlow and the
    other training requirements installed but out of reach. Each refused import is recorded in
    ``_device_refused`` (an optional ``try: import tensorflow`` would otherwise go unseen)."""
    from packaging.requirements import Requirement

    owners = importlib.metadata.packages_distributions()
    todo = list(device_pins()) + [dist for module in also_allowed_modules for dist in owners.get(module, [])]
    allowed = {"sound-tf"}
    while todo:
        name = _canonical(todo.pop())
        if name in allowed:
            continue
        allowed.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in map(Requirement, requires):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    blocked = sorted(module for module, dists in owners.items()
                     if module not in sys.stdlib_module_names and not any(_canonical(d) in allowed for d in dists))
    return ("import sys\n"
            "class _Device:\n"
            f"    blocked = set({blocked!r})\n"
            "    @classmethod\n"
            "    def find_spec(cls, name, path=None, target=None):\n"
            "        if name.partition('.')[0] in cls.blocked:\n"
            "            _device_refused.append(name)\n"
            "            raise ModuleNotFoundError(f'No module named {name!r} (not on the device)', name=name)\n"
            "        return None\n"
            "_device_refused = []  # every import of a blocked module, even one whose ImportError was caught\n"
            "sys.meta_path.insert(0, _Device)\n")

