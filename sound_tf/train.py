"""``python -m sound_tf.train``: labelled recordings in, an evaluated model in a run folder out.

With no arguments it trains on the built-in synthetic demo dataset; ``--data`` alone gives a folder-per-class
tree, an ESC-50, UrbanSound8K or Speech Commands folder its recipe (``pipelines/folder.toml``, ``esc50.toml``,
``urbansound8k.toml``, ``speech_commands.toml``) and a CSV manifest the built-in defaults. Running the same
command again after the run was killed resumes it (the latest unfinished run under ``runs/`` with the same
settings, or the folder given with ``--out``).

Examples
--------
    python -m sound_tf.train
    python -m sound_tf.train --data ~/ESC-50 --test-fold 5
    python -m sound_tf.train --data ~/speech_commands_v0.02 --pipeline speech_commands_12
    python -m sound_tf.train --data my_sounds/ --model seed_cnn --epochs 30 --out runs/seed
    python -m sound_tf.train --data clips.csv --set train.label_smoothing=0.1 --set augment.enabled=false
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .c_source import c_source_note
from .config import (ABSOLUTE_KEYS, DATA_FORMATS, PATH_KEYS, REPO_PIPELINES, Config, DataConfig,
                     absolute_if_changed, absolute_path, apply_overrides, config_from_recipe, parse_set_flags,
                     resolve_recipe)
from .errors import ConfigError, SoundTFError, Stopped, is_stop_code, log_in_files, run_cli, stop_line
from .quiet import native_logs_held, quiet_tensorflow
from .run_state import export_pending, stopped_before_training

log = logging.getLogger("sound_tf")

#: ``--val-from``'s choices: ``data.val_from``'s values.
VAL_FROM = DataConfig.VAL_FROM


def sample_rate_hz(text: str) -> int:
    """``--sample-rate``'s type: a whole number of Hz. ``44.1k`` or ``44.1`` is refused with what to type, where
    argparse said only ``invalid int value: '44.1k'``."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of Hz: write the rate in Hz, e.g. 16000, 22050 or 44100 (not 44.1k); "
            f"recordings of any rate are resampled to it") from None


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every config-driven command shares (train, crossval, tune)."""
    parser.add_argument("--data", help="dataset root, class folder tree or CSV manifest (default: the demo)")
    parser.add_argument("--format", choices=DATA_FORMATS,
                        help="force the dataset format instead of detecting it")
    shipped = sorted(path.stem for path in REPO_PIPELINES.glob("*.toml"))
    parser.add_argument("--pipeline",
                        help="a recipe: a .toml file, or the bare name of one in pipelines/ ("
                             + ", ".join(shipped or ["esc50"]) + "); speech_commands_12 is Speech Commands as a "
                             "12-class keyword spotter (10 words, _unknown_, _silence_; data.keep_labels chooses "
                             "the words)")
    parser.add_argument("--model", choices=["default", "seed_cnn"], help="architecture")
    parser.add_argument("--epochs", type=int,
                        help="the most epochs, each a pass over the training clips or, for a split that makes "
                             "fewer than train.min_steps_per_epoch batches, that many batches of its passes (default: "
                             "the recipe's; 60 for a folder of recordings); early stopping ends training sooner, "
                             "once the validation loss has not improved for train.early_stopping_patience epochs, so "
                             "a larger number seldom trains longer")
    parser.add_argument("--batch-size", type=int,
                        help="clips per update of the model (default: the recipe's; 32 for a folder of recordings); "
                             "a few dozen training clips learn better with a small one, e.g. 4")
    parser.add_argument("--learning-rate", type=float,
                        help="the size of each update (default: the recipe's; 0.003 for a folder of recordings)")
    parser.add_argument("--sample-rate", type=sample_rate_hz, metavar="HZ",
                        help="the rate in Hz, a whole number, that every recording is resampled to (default: the "
                             "recipe's; 16000 for a folder of recordings, which keeps sound up to 8 kHz); it need "
                             "not be your recordings' rate: 22050 or 44100 for birds and other high-pitched sounds")
    parser.add_argument("--clip-seconds", type=float,
                        help="the length in seconds of the clips the model hears (default: the recipe's; 2 for a "
                             "folder of recordings); longer recordings are cropped in training and scored over "
                             "sliding windows")
    parser.add_argument("--test-fold", type=int,
                        help="with folds (a manifest's fold column, ESC-50, UrbanSound8K, Speech Commands' "
                             "lists: 2 is validation_list.txt, 3 testing_list.txt): the fold held out as the test "
                             "set (default: the last)")
    parser.add_argument("--val-fold", type=int,
                        help="with folds: the fold held out for validation (default: the one before --test-fold); "
                             "--val-from training validates on a data.val_fraction of the training folds instead")
    parser.add_argument("--val-from", choices=VAL_FROM,
                        help="with folds, validate on a whole fold (fold, the default) or on data.val_fraction of "
                             "the training folds (training: each model trains on one fold more)")
    parser.add_argument("--seed", type=int,
                        help="draws the split, the model's starting weights and the augmentation (default 0): "
                             "the same seed and data train the same model on the same machine")
    parser.add_argument("--cache-dir", help="decode cache folder (default: $SOUND_TF_CACHE or ~/.cache/sound_tf)")
    parser.add_argument("--strict", action="store_true", default=None,
                        help="stop at the first unreadable file instead of skipping it")
    parser.add_argument("--no-augment", action="store_true", help="turn every augmentation off")
    parser.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=None,
                        help="weigh each training example by n / (classes * its class's count), or not "
                             "(--no-class-weights; default: the recipe's, else off)")
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config value, e.g. --set features.num_mel_bins=96 (repeatable)")


# The config keys the flags set (by argparse dest; the flag is --<dest with dashes>), as given; --data and
# --no-augment are changed first (an absolute path; enabled=false).
FLAG_DESTS = {"data.format": "format", "data.test_fold": "test_fold", "data.val_fold": "val_fold",
              "data.val_from": "val_from",
              "data.cache_dir": "cache_dir", "data.strict": "strict", "model.name": "model", "train.epochs": "epochs",
              "train.batch_size": "batch_size", "train.learning_rate": "learning_rate", "train.seed": "seed",
              "train.class_weights": "class_weights", "train.label_smoothing": "label_smoothing",
              "audio.sample_rate_hz": "sample_rate", "audio.clip_seconds": "clip_seconds"}


def flag_given(message: str, args: argparse.Namespace, set_overrides: dict[str, Any], *,
               flag_dests: Mapping[str, str] = FLAG_DESTS) -> str:
    """``"--set KEY=VALUE: "`` or ``"--flag VALUE: "`` when the config error ``message`` is about a value a flag
    gave (it begins with the key), as a recipe's errors begin with its path; else ``""``. ``flag_dests``: the flags
    that set a config key, as :data:`FLAG_DESTS` (none for a command whose flags of those names set no config
    value, as the preview's ``--seed``). A ``--set`` key that names no setting is refused before, with its flag
    (:func:`sound_tf.config.parse_set_flags`, every such flag at once)."""
    for item in reversed(args.set):  # the last --set of a key is the one kept
        key = item.partition("=")[0].strip()
        if key in set_overrides and message.startswith(f"{key} "):
            return f"--set {item.strip()}: "
    for key, dest in flag_dests.items():
        value = getattr(args, dest, None)
        if value is not None and key not in set_overrides and message.startswith(f"{key} "):
            return f"--{dest.replace('_', '-')} {value}: "
    return ""


def config_from_args(args: argparse.Namespace, *, notices: list[logging.LogRecord] | None = None,
                     say_demo: bool = False) -> Config:
    """Defaults <- recipe <- flags <- ``--set`` overrides.

    With neither ``--data`` (nor ``--set data.path=...`` or ``data.split_file=...``) nor ``--pipeline`` the
    demo recipe is used, so a bare command trains the demo. With ``--data`` but no ``--pipeline``, data in a
    layout that has a recipe of its own (a folder-per-class tree, ESC-50, UrbanSound8K, Speech Commands:
    detected, or named by ``--format``) gets that recipe (its folds, sample rate and clip length), and a line
    on stderr says so; a CSV manifest gets the built-in defaults. Speech Commands data also gets its
    ``_background_noise_`` folder as ``augment.noise_dir`` when none is given (:func:`layout_noise_dir`).
    ``data.path``, ``data.split_file``, ``augment.noise_dir`` and ``data.cache_dir`` are made absolute however
    they are given (a recipe's relative paths too, from the current folder, as the flags'); an empty one is an
    error, but for an empty ``data.cache_dir``, which is the default cache.

    The lines on stderr are printed at once (no log is open yet); with ``notices`` each is also appended to it as
    a log record of that moment, for the command's log once it is open (:func:`setup_logging`'s ``earlier``).
    An augmentation range that reads as given in another unit (``augment.gain_min_db = 0.5``, ``gain_max_db = 2.0``
    as linear factors) is one of them (:meth:`~sound_tf.config.AugmentConfig.range_warnings`).
    With ``say_demo`` (``train``), a bare command's demo is one of them (``--data`` may have been forgotten);
    ``--format demo`` asks for it and gets none.
    """
    set_overrides = parse_set_flags(args.set)
    if args.data is not None and not args.data.strip():  # e.g. an unset $DATASET: not the demo
        raise ConfigError("--data is empty: give the dataset's folder or CSV file")
    for key in PATH_KEYS:
        if isinstance(set_overrides.get(key), str) and not set_overrides[key].strip():
            raise ConfigError(f"--set {key}= is empty: give a path, or null to unset it")
    if args.data is not None and "data.path" in set_overrides:  # the recipe was chosen from one, the other read
        raise ConfigError(f"--data {args.data} and --set data.path={set_overrides['data.path']} both name the data: "
                          "give one of them")
    if args.val_from is not None and set_overrides.get("data.val_from", args.val_from) != args.val_from:
        set_item = next(item.strip() for item in reversed(args.set)
                        if item.partition("=")[0].strip() == "data.val_from")
        raise ConfigError(f"--val-from {args.val_from} and --set {set_item} disagree on where validation comes from: "
                          f"give one of them")
    given_path = args.data if args.data is not None else set_overrides.get("data.path")
    split_file = set_overrides.get("data.split_file")  # it lists the data: not the demo's recipe
    if (args.pipeline is None and given_path is None and split_file is None
            and (REPO_PIPELINES / "demo.toml").is_file()):
        args.pipeline = str(REPO_PIPELINES / "demo.toml")
        if say_demo and set_overrides.get("data.format", args.format) in (None, "auto"):  # --data forgotten?
            from .demo_sounds import DEMO_CLASSES

            notice(f"sound_tf: no --data given: using the built-in demo dataset ({len(DEMO_CLASSES)} classes of "
                   f"generated sounds, not recordings of yours; pipelines/demo.toml); --data FOLDER reads a "
                   f"folder with one subfolder of recordings per class", notices)
    elif args.pipeline is None and isinstance(given_path, str):
        args.pipeline = layout_recipe(given_path, set_overrides.get("data.format", args.format), notices=notices)
    overrides: dict[str, Any] = {key: getattr(args, dest) for key, dest in FLAG_DESTS.items()}
    # Absolute, so that a resumed run is recognised from another folder or spelling of the same path.
    overrides["data.path"] = absolute_path(args.data) if args.data else None
    overrides["augment.enabled"] = False if args.no_augment else None
    overrides.update(set_overrides)
    recipe = resolve_recipe(args.pipeline)
    try:
        config = config_from_recipe(recipe, overrides)
    except ConfigError as exc:  # "train.epochs must be an integer >= 1, got 0": from --epochs 0, or the recipe?
        raise ConfigError(f"{flag_given(str(exc), args, set_overrides)}{exc}") from None
    # Paths from --set or a recipe are read from the current folder (as --data's), and kept absolute: a run
    # is found again from any spelling of them.
    values = {key: getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) for key in ABSOLUTE_KEYS}
    empty = [key for key in PATH_KEYS if isinstance(values[key], str) and not values[key].strip()]
    if empty:  # a recipe's (the flags' were refused above); made absolute, it was the current folder
        raise ConfigError(f"{empty[0]} is empty in the pipeline recipe {args.pipeline}: give a path, or leave it out")
    respelt = {key: absolute for key, value in values.items() if (absolute := absolute_if_changed(value))}
    config = apply_overrides(config, respelt) if respelt else config
    for line in config.augment.range_warnings():  # accepted, but read as given in another unit (dB as factors)
        notice(line, notices)
    if "augment.noise_dir" in set_overrides:  # given, if only as null (generated noise)
        check_noise_dir(config, "--set ")
        return config
    if config.augment.noise_dir is not None:  # the recipe's
        check_noise_dir(config, f"{recipe}: ")
        return config
    noise_dir = layout_noise_dir(config, notices=notices)  # picked only when it holds audio files
    return config if noise_dir is None else apply_overrides(config, {"augment.noise_dir": noise_dir})


def check_noise_dir(config: Config, source: str) -> None:
    """Refuse ``augment.noise_dir`` when training would read it (augmentation and noise on) and it is missing, a
    file, or holds no audio files, in a message that begins with ``source``, where the value came from (``"<the
    recipe's path>: "``, ``"--set "``), as the recipe's other errors begin with its path. The noise bank, built
    later (:func:`sound_tf.augment.load_noise_bank`), knows only the key and the folder."""
    from .audio import list_audio_folder

    aug = config.augment
    if not aug.reads_noise_dir:
        return
    _, problem = list_audio_folder(aug.noise_dir)
    if problem is not None:
        raise ConfigError(f"{source}augment.noise_dir={aug.noise_dir}: {problem}")


#: Dataset layouts with a recipe of their own in pipelines/, which ``--data`` alone picks (with the words the
#: line that says so names the layout in). A CSV manifest has none: its recordings could be anything.
LAYOUT_RECIPES = {"folder": "a folder-per-class", "esc50": "an ESC-50", "urbansound8k": "an UrbanSound8K",
                  "speech_commands": "a Speech Commands"}


def layout_recipe(path: str, data_format: str | None, *,
                  notices: list[logging.LogRecord] | None = None) -> str | None:
    """The recipe name for data at ``path`` in a layout that has one (``format``, else detected), or None.

    Undetectable data gives None: loading it later reports what is wrong, naming the path. The line saying which
    recipe is used goes to stderr (and ``notices``: see :func:`notice`).
    """
    from .datasets import detect_format
    from .errors import DatasetError

    detected = data_format in (None, "auto")
    if detected:
        try:
            data_format = detect_format(path)
        except DatasetError:
            return None
    if data_format not in LAYOUT_RECIPES or not (REPO_PIPELINES / f"{data_format}.toml").is_file():
        return None
    # A format given is not checked here: loading the data reports a folder that does not match it.
    source = f"{path} is {LAYOUT_RECIPES[data_format]} dataset" if detected else f"--format {data_format}"
    notice(f"sound_tf: {source}: using the {data_format} recipe (pipelines/{data_format}.toml; --pipeline NAME "
           f"chooses another)", notices)
    return data_format


def layout_noise_dir(config: Config, *, notices: list[logging.LogRecord] | None = None) -> str | None:
    """The noise folder of ``config``'s data when its layout has one and nothing else was chosen, else None.

    A Speech Commands folder (detected, or named by ``data.format``) holds ``_background_noise_``: minutes of
    everyday noise (dishes, a running tap, an exercise bike) and of white and pink noise, there to be mixed
    into its words. With noise
    augmentation on and no ``augment.noise_dir`` set, that folder is the one to use (a line on stderr, and in
    ``notices``, says so: see :func:`notice`; the run's config.json keeps it), rather than generated coloured noise.
    A ``_background_noise_`` holding no audio files is not picked (generated noise, without a line): the run is not
    refused for a folder it was never told to read.
    """
    from .audio import list_audio_folder
    from .datasets import SPEECH_COMMANDS_NOISE, detect_format
    from .errors import DatasetError

    data, aug = config.data, config.augment
    if (aug.noise_dir is not None or not aug.mixes_noise or data.path is None
            or data.format not in ("auto", "speech_commands")):
        return None
    folder = Path(data.path) / SPEECH_COMMANDS_NOISE
    if list_audio_folder(folder)[1] is not None:  # missing, or no recordings (a copy's, or one's own in its layout,
        return None  # beside an empty folder): generated noise, as for other data, not a run refused for it
    if data.format == "auto":
        try:
            if detect_format(data.path) != "speech_commands":
                return None
        except DatasetError:
            return None
    notice(f"sound_tf: augment.noise_dir: the dataset's background noise, {folder} (--set augment.noise_dir=DIR "
           f"mixes in other recordings, =null generated noise)", notices)
    return str(folder)


def notice(message: str, notices: list[logging.LogRecord] | None) -> None:
    """Print ``message`` on stderr now, while the settings are worked out and no log is open yet, and append it to
    ``notices`` (when given) as a log record of this moment: the command writes it into its log file once that is
    open (:func:`setup_logging`'s ``earlier``), so a run's ``train.log`` says which recipe and noise folder it got."""
    print(message, file=sys.stderr)
    if notices is not None:
        notices.append(log.makeRecord(log.name, logging.INFO, __file__, 0, message, None, None))


def log_earlier(handler: logging.Handler, earlier: Sequence[logging.LogRecord]) -> None:
    """Write ``earlier`` (:func:`notice`'s records, already shown on stderr) through ``handler`` (a log file's),
    each with the time it was made."""
    for record in earlier:
        handler.handle(record)


def _runs_newest_first(root: Path) -> list[Path]:
    """The run folders under ``root`` (``runs/``), newest first (their names are timestamps)."""
    return sorted((p for p in root.iterdir() if p.is_dir()), reverse=True) if root.is_dir() else []


def _state_matches(run: Path, config: Config, wanted: Callable[[dict], bool]) -> bool:
    """Whether ``run``'s state is ``wanted`` and its settings are ``config``'s; a run whose state is damaged
    is another run's problem, not this command's (it is passed over, and does not stop the command)."""
    from .trainer import read_state, same_settings

    try:
        state = read_state(run)
    except SoundTFError:
        return False
    return wanted(state) and same_settings(run, state, config)


def find_resumable_run(root: Path, config: Config, *, exporting: bool = False) -> Path | None:
    """The newest unfinished run under ``root`` trained with the same settings (one whose command was stopped
    before it trained too; with ``exporting``, also a finished one whose export was stopped or failed) that no other
    process holds, claimed for this process (:func:`sound_tf.locks.claim_folder`; give it back with
    ``release_folder``)."""
    from .locks import claim_folder, release_folder

    def resumable(run: Path) -> bool:
        return _state_matches(run, config, lambda state: state.get("status") == "running"
                              or stopped_before_training(state) or (exporting and export_pending(state)))

    for run in _runs_newest_first(root):
        if resumable(run) and claim_folder(run) is None:  # held elsewhere: another process is training it
            if resumable(run):  # (it may have finished while we looked)
                return run
            release_folder(run)
    return None


def finished_twin(root: Path, config: Config, *, besides: Path) -> Path | None:
    """The newest finished run under ``root``, other than ``besides``, trained with ``config``'s settings."""
    return next((run for run in _runs_newest_first(root) if run != besides
                 and _state_matches(run, config, lambda state: state.get("status") == "done")), None)


def resolve_run_dir(out: str | None, config: Config, *, overwrite: bool = False, exporting: bool = False) -> Path:
    """``--out`` (resumed if unfinished), else a resumable run under runs/, else runs/<timestamp>.

    With ``exporting`` (``--export``), a finished run whose export was stopped or failed is resumed too: only its
    export runs again. The folder returned is claimed for this process (:mod:`sound_tf.locks`; give it
    back with ``release_folder`` when the work is done): a folder another process is training in is
    refused as ``--out`` and passed over as a resumable run.
    """
    from .locks import (claim_folder, claim_or_refuse, empty_folder, refuse_emptying, refuse_foreign_folder,
                        release_folder)
    from .trainer import RUN_STARTUP_FILES, STATE_FILE, read_state, same_settings, setting_differences

    if out:
        run_dir = Path(out)
        # A folder of the user's own (or the dataset) is never written into or emptied by --overwrite.
        refuse_foreign_folder(run_dir, marker=STATE_FILE, what="training run", startup=RUN_STARTUP_FILES)
        if overwrite:
            refuse_emptying(run_dir, config.input_paths())
        claim_or_refuse(run_dir, "training or exporting this run")  # before --overwrite deletes anything
        try:
            state = read_state(run_dir)
            if overwrite:
                empty_folder(run_dir)
            elif exporting and export_pending(state) and same_settings(run_dir, state, config):
                pass
            elif state.get("status") == "done":
                raise ConfigError(f"{run_dir}: holds a finished run; pass --overwrite or choose another --out")
            elif state and not same_settings(run_dir, state, config):
                raise ConfigError(f"{run_dir}: holds an unfinished run with different settings"
                                  f"{setting_differences(run_dir, config)}; pass --overwrite to start over or use "
                                  f"the same settings to resume")
        except BaseException:
            release_folder(run_dir)
            raise
        return run_dir
    root = Path("runs")
    resumable = None if overwrite else find_resumable_run(root, config, exporting=exporting)  # --overwrite: start over
    if resumable is not None:
        return resumable
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):  # two commands started in the same second get two folders
        run_dir = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            run_dir.mkdir(parents=True)
        except FileExistsError:
            continue
        if claim_folder(run_dir) is None:  # a new folder of its own: nobody else claims it
            return run_dir
    raise ConfigError(f"{root}: could not create a new run folder named {stamp}-N; pass --out")


#: Functions TensorFlow's retracing warning names when it counts the tf.functions made afresh for each fold,
#: trial or evaluation as one function traced again and again: Keras' step functions (a fresh model), the
#: frontend that computes a fold's feature statistics (frontend.compute_feature_stats) and the model call that
#: scores its clips (pipeline.predict_logits).
FRESH_PER_RUN_FUNCTIONS = ("TensorFlowTrainer._make_function", "LogMel.call", "predict_logits.<locals>")


class PerRunRetracing(logging.Filter):
    """Drops TensorFlow's retracing warning about the functions made anew for each run (FRESH_PER_RUN_FUNCTIONS).

    ``crossval`` and ``tune`` build a fresh model for each fold or trial, each with new step functions, and
    compute its feature statistics and score its clips through a ``tf.function`` made for that call.
    TensorFlow's detector keys its count by the Python code wrapped, so it counts those as one function traced
    again and again ("5 out of the last 9 calls to <function TensorFlowTrainer._make_function.<locals>.
    multi_step_on_iterator> triggered tf.function retracing", and the same of ``<bound method LogMel.call>``
    and ``<function predict_logits.<locals>.<lambda>>`` from the third fold of a cross-validation on).
    Other retracing warnings (of a pipeline's or the user's own functions) still show.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message
                    and any(name in message for name in FRESH_PER_RUN_FUNCTIONS))


LOG_FORMAT, LOG_DATE_FORMAT = "%(asctime)s %(message)s", "%H:%M:%S"


def log_file_handler(path: Path) -> logging.FileHandler:
    """A handler appending the log to ``path`` in the console's format, without the per-run retracing warnings."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt=LOG_DATE_FORMAT))
    handler.addFilter(PerRunRetracing())
    return handler


@contextlib.contextmanager
def run_log(run_dir: Path) -> Iterator[None]:
    """While it lasts, the log also goes to ``run_dir/train.log`` (appended, as ``train`` writes it): a
    cross-validation's fold folders and a search's ``best_run`` are run folders too. A stop (Ctrl-C, SIGTERM,
    SIGHUP) that ends the block is the log's last line, as the command's (:func:`sound_tf.errors.run_cli`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = log_file_handler(run_dir / "train.log")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    except KeyboardInterrupt as exc:  # Ctrl-C or a stop signal: this log says why it ends here, as the command's
        log_in_files(stop_line(exc), [handler])
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


#: The run folder's log (console lines as well).
LOG_FILE = "train.log"


def __getattr__(name: str) -> Any:
    """``RUN_STARTUP_FILES``, which moved to :mod:`sound_tf.trainer` (``train_run`` refuses a folder by it too),
    is still importable from here, where it was: read when asked for, as this module does not import TensorFlow."""
    if name == "RUN_STARTUP_FILES":
        from .trainer import RUN_STARTUP_FILES
        return RUN_STARTUP_FILES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def setup_logging(run_dir: Path | None = None, *, earlier: Sequence[logging.LogRecord] = ()) -> None:
    """Console logging plus ``train.log`` in the run folder, which begins with ``earlier``: the lines printed on
    stderr before it was open (:func:`notice`), written into the file only."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(run_dir / LOG_FILE))
    for handler in handlers:
        handler.addFilter(PerRunRetracing())
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT, handlers=handlers, force=True)
    if run_dir is not None:
        log_earlier(handlers[-1], earlier)
    # TensorFlow gives its logger a stderr handler of its own when it is imported before logging is set up
    # (as tune imports it); its records reach these handlers anyway, so each would show twice.
    tf_logger = logging.getLogger("tensorflow")
    if tf_logger.propagate:
        for handler in tf_logger.handlers[:]:
            tf_logger.removeHandler(handler)


def progress_bars(quiet: bool) -> int | str:
    """Keras's ``verbose`` for ``train`` and ``crossval``: progress bars on a terminal only.

    Keras redraws its bar with carriage returns and backspaces on any POSIX stdout, so a redirected one (a
    file, a pipe, ``nohup``) got about 270 bytes per training step in one line per epoch; the log's line per
    epoch (:class:`sound_tf.trainer.EpochLog`) says what those bars would have ended on. ``--quiet``: none.
    """
    isatty = getattr(sys.stdout, "isatty", None)
    return "auto" if not quiet and callable(isatty) and isatty() else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sound_tf.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.add_argument("--out", type=os.path.expanduser,  # a quoted ~ too: no folder named '~' is made
                        help="run folder (default: runs/<timestamp>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over: empty an existing --out folder (without --out: a new run folder, instead "
                             "of resuming an unfinished run)")
    parser.add_argument("--quiet", action="store_true",
                        help="no Keras progress bars (shown only when stdout is a terminal) and none of "
                             "TensorFlow's own log lines")
    parser.add_argument("--export", nargs="?", const="default", metavar="PROFILE",
                        help="when training ends, export the run (python -m sound_tf.export) with this "
                             "profile (default: export/default.toml)")
    args = parser.parse_args(argv)
    quiet_tensorflow()

    def work() -> int:
        from .datasets import check_source

        notices: list[logging.LogRecord] = []  # shown on stderr as the settings are worked out; train.log's too
        config = config_from_args(args, notices=notices, say_demo=True)
        check_source(config)  # before TensorFlow loads (resolve_run_dir imports it)
        if args.export:  # a typo in the profile's name is reported now, not after training
            from .export import load_profile
            load_profile(args.export)
        from .locks import release_folder
        existed = args.out is not None and Path(args.out).exists()
        run_dir = resolve_run_dir(args.out, config, overwrite=args.overwrite, exporting=bool(args.export))
        try:
            return train_and_export(args, config, run_dir, notices=notices)
        finally:  # the folder is free again once its work is done, even in a process that goes on
            release_folder(run_dir)
            if not existed:
                remove_if_unstarted(run_dir)

    with native_logs_held(args.quiet):  # TensorFlow is imported in work, and the export child writes here too
        return run_cli(work)


def remove_if_unstarted(run_dir: Path) -> None:
    """Remove a run folder this command created when it holds only its lock and log (and the state recorded before
    training, :func:`stopped_before_training`): the run stopped before keeping anything
    (a missing --data, a bad noise folder, a Ctrl-C or SIGTERM while its data decoded, ...), and an empty folder
    named by the time would be left behind each time the command is tried. Its log file is closed first."""
    from .locks import LOCK_FILE, remove_if_holding_only

    def close_log_file() -> None:
        root = logging.getLogger()
        for handler in root.handlers[:]:
            if Path(getattr(handler, "baseFilename", "/")).parent == run_dir.resolve():
                root.removeHandler(handler)
                handler.close()

    from .trainer import STATE_FILE, read_state

    kept = {LOCK_FILE, LOG_FILE}
    try:
        if stopped_before_training(read_state(run_dir)):  # train's first state: no training in it
            kept.add(STATE_FILE)
    except SoundTFError:  # damaged: not this command's to remove
        pass
    remove_if_holding_only(run_dir, kept, before_removal=close_log_file)


#: After a Ctrl-C or a stop signal, how long ``train --export`` waits for its export child to end.
CHILD_STOP_SECONDS = 10.0


def call_child(command: Sequence[str], *, stop_seconds: float = CHILD_STOP_SECONDS, **popen_args: Any) -> int:
    """Run ``command`` and return its exit code, as ``subprocess.call`` does, except when this command is stopped.

    A Ctrl-C reaches the child too (a terminal, or ``timeout``, signals the whole process group), and the
    export removes its half-built bundle before it ends; ``subprocess.call`` killed the child at once, so
    its ``.export.building-*`` folder stayed until the next export. A SIGTERM or SIGHUP that stopped this
    command (:class:`sound_tf.errors.Stopped`) may have been sent to it alone (``kill PID``, ``docker stop``): it
    is passed on to the child, which ignores it when it got one already. The child gets ``stop_seconds`` to end,
    then is killed (one that never got the signal); the stop goes on either way, marked ``shown`` when the child
    ended as a stopped command does (it printed the stop line: this command does not print it again)."""
    process = subprocess.Popen(command, **popen_args)
    try:
        return process.wait()
    except KeyboardInterrupt as exc:
        if isinstance(exc, Stopped):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(exc.signum)
        try:
            code = process.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        else:
            exc.shown = is_stop_code(code)
        raise


def export_done_line(bundle: Path) -> str:
    """The line ``train --export`` logs when its export child succeeded: the bundle and its models' sizes (KB of 1,024
    bytes, as export's log counts them), from its ``export.json``, with a TFLite model's flatbuffer beside its file
    (``flatbuffer_bytes``: the file less its appended archive, what a microcontroller's flash holds, as export's log
    gives it). Under ``--quiet`` the export prints only errors, and ``train.log`` never held export's lines, so a
    successful ``train --export micro --quiet`` ended its output and its log with ``exporting: python -m
    sound_tf.export ...`` and no word of what came of it. A bundle with C source (a profile's ``c_source``) has its
    files named after a semicolon, in export's words (:func:`sound_tf.c_source.c_source_note`)."""
    import json

    def size(entry: dict[str, Any]) -> str:
        flat = entry.get("flatbuffer_bytes")
        return f"{entry['size_bytes'] / 1024:.1f} KB" + (f" (flatbuffer {flat / 1024:.1f} KB)" if flat else "")

    sizes, sources = "", None
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
        artefacts = json.loads((bundle / "export.json").read_text(encoding="utf-8"))["artefacts"]
        sizes = ", ".join(f"{name} {size(entry)}" for name, entry in artefacts.items()
                          if name != "keras" and isinstance(entry, dict) and "size_bytes" in entry)
        sources = c_source_note(artefacts)  # as export's own last line names them
    held = f" holds {sizes}" if sizes else ""
    return (f"the export passed its checks: {bundle}{held} (its export.json gives each model's latency and agreement "
            f"with Keras)" + (f"; {sources}" if sources else ""))


def train_and_export(args: argparse.Namespace, config: Config, run_dir: Path, *,
                     notices: Sequence[logging.LogRecord] = ()) -> int:
    """The work of one ``train`` command in its claimed ``run_dir``: train (or resume), then export. ``notices``
    (:func:`notice`) begin this command's part of the run's ``train.log``."""
    setup_logging(run_dir, earlier=notices)
    from .evaluation import train_class_counts
    from .metrics import summary_lines
    from .datasets import SPLIT_CSV
    from .trainer import STATE_FILE, noise_changes, read_state, train_run, write_state
    state = read_state(run_dir)
    if export_pending(state):
        log.info(f"{run_dir}: training had finished and its export did not (it was stopped or failed); "
                 f"exporting it again")
    else:
        if stopped_before_training(state):  # killed while its data decoded: split.csv may be kept, nothing else
            log.info(f"resuming the run in {run_dir}: its command was stopped before training began")
        new_run = not state or stopped_before_training(state)
        if args.out is None and new_run and (twin := finished_twin(run_dir.parent, config,
                                                                   besides=run_dir)) is not None:
            # The settings name the data's path, not its files: recordings added since make another model.
            if changed := noise_changes(twin, config):  # its noise.json tells the noise files it mixed in
                log.info(f"{twin} finished with these settings, but augment.noise_dir={config.augment.noise_dir} has "
                         f"changed since it trained ({changed}): this new run mixes in its recordings as they are now")
            else:
                log.info(f"{twin} finished with these settings; unless its data changed since, this new run repeats "
                         f"it (the same seed and data give the same model on the same machine): `python -m "
                         f"sound_tf.evaluate {twin}` or `python -m sound_tf.export {twin}` use it, --set "
                         f"train.seed=N trains another")
        if args.export:  # recorded before training ends, so a run stopped after it still exports when resumed
            write_state(run_dir, fingerprint=config.fingerprint(), export_profile=args.export, export_done=False)
        elif not state:  # recorded before the data is read, so a run killed before training began is resumed
            write_state(run_dir, fingerprint=config.fingerprint())
        try:
            result = train_run(config, run_dir, log=log.info, verbose=progress_bars(args.quiet))
        except BaseException as exc:
            # A start that ended before training began takes back the state it recorded, after an error (a bad noise
            # folder, unreadable data, a file error) or a stop (Ctrl-C, SIGTERM) while its data decoded: kept in an
            # --out folder that was there before, it had the corrected command refused as a run "with different
            # settings" (naming none: no config.json yet). A stop after split.csv was kept leaves it: the same
            # command resumes that split, and another one is not handed it.
            kept_split = isinstance(exc, KeyboardInterrupt) and (run_dir / SPLIT_CSV).is_file()
            if not state and not kept_split and stopped_before_training(read_state(run_dir)):
                (run_dir / STATE_FILE).unlink(missing_ok=True)
            raise
        for line in summary_lines(result.metrics, class_counts=train_class_counts(result.data),
                                  validation=result.validation):
            log.info(line)
        log.info(f"run folder: {run_dir}")
    if not args.export:
        return 0
    # A fresh process: export measures single-thread latency, which TensorFlow fixes at start-up.
    command = [sys.executable, "-m", "sound_tf.export", str(run_dir), "--profile", args.export,
               *["--quiet"] * args.quiet]
    log.info("exporting: python " + " ".join(command[1:]))  # the command a user can type again
    # The child holds the run folder's lock too (it claims it as its own: locks.inherit_lock), and ends with this
    # command (even a SIGKILLed one): no export runs on alone beside a re-run, which exports again.
    from .locks import PARENT_ENV, inherited_env, lock_descriptor

    held = lock_descriptor(run_dir)
    code = call_child(command, pass_fds=() if held is None else (held,),
                      env={**os.environ, **inherited_env(run_dir),
                           PARENT_ENV: str(os.getpid())})  # see locks.end_with_parent
    if code == 0:
        write_state(run_dir, export_done=True)
        log.info(export_done_line(run_dir / "export"))
    elif code == 1:  # export's own failure (ExportError), whose "pass --allow-degraded" names a flag of export's
        log.info(f"the export failed (its error is above); the trained run is kept. `python -m sound_tf.export "
                 f"{run_dir} --profile {args.export} --allow-degraded` accepts an export that missed its parity "
                 f"thresholds (train has no --allow-degraded) and marks this run's export done; this command run "
                 f"again exports again")
    return code


if __name__ == "__main__":
    sys.exit(main())
