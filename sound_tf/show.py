"""``python -m sound_tf.show``: draw one file's waveform and log-mel spectrogram (in dB, with a colour bar).

The file is decoded at the config's sample rate and the spectrogram of the whole file is computed by
the model's own frontend layer (:class:`sound_tf.frontend.LogMel`), so the picture shows exactly what a
model with that config sees. The config is a run's (``--run``), a recipe's (``--pipeline``) or the
defaults.

Examples
--------
    python -m sound_tf.show dog.wav
    python -m sound_tf.show street.flac --run runs/esc50 --out street.png
    python -m sound_tf.show siren.ogg --pipeline esc50
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from .audio import load_audio, printable_path
from .config import Config, config_from_recipe
from .errors import ConfigError, run_cli


def load_config(run_dir: str | None = None, pipeline: str | None = None) -> Config:
    """The config of a run folder, of a recipe, or the defaults (give at most one of the two)."""
    if run_dir is not None and pipeline is not None:  # the recipe was ignored without a word
        raise ConfigError(f"load_config takes a run folder or a recipe, not both (run_dir={run_dir!r}, "
                          f"pipeline={pipeline!r})")
    if run_dir is not None:
        return Config.load(run_dir)
    if pipeline is not None:
        from .config import resolve_recipe
        return config_from_recipe(resolve_recipe(pipeline))
    return Config()


def show_file(path: str | Path, out: str | Path, config: Config) -> Path:
    """Write the waveform + log-mel figure of ``path`` to ``out`` (a PNG); returns ``out``.

    Raises
    ------
    ConfigError
        ``out`` does not end in ``.png``, or is the recording itself, or ``config`` is not a Config.
    AudioError
        ``path`` cannot be decoded.
    """
    if not isinstance(config, Config):  # a dict read from config.json failed as "'dict' has no attribute 'audio'"
        raise ConfigError(f"show_file expects a sound_tf Config (e.g. load_config(run_dir)), got "
                          f"{type(config).__name__}")
    from .frontend import log_mel_numpy
    from .report import plot_waveform_and_logmel

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"{out}: the figure is written as a PNG; give --out a name ending in .png")
    if out.exists() and Path(path).exists() and out.resolve() == Path(path).resolve():
        raise ConfigError(f"{out}: this is the recording itself; give --out another name")
    rate = config.audio.sample_rate_hz
    wave = load_audio(path, sample_rate_hz=rate)  # [samples]
    # A file shorter than one STFT frame is zero-padded to one frame so that it still has a column.
    padded = np.pad(wave, (0, max(config.frame_length_samples - wave.size, 0)))  # [samples]
    log_mel = log_mel_numpy(config, padded)  # [frames, mel_bins]
    return plot_waveform_and_logmel(wave if wave.size else padded, log_mel, rate, config.hop_length_samples, out,
                                    frame_length_samples=config.frame_length_samples,
                                    title=f"{printable_path(Path(path).name)} ({config.features.num_mel_bins} "
                                          f"mel bins, "
                                          f"{config.features.frame_length_ms:g} ms / "
                                          f"{config.features.hop_length_ms:g} ms)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sound_tf.show", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE", help="an audio file")
    parser.add_argument("--out", type=os.path.expanduser,  # a quoted ~ too: no folder named '~'
                        help="the PNG to write (default: <file name>.png in the current folder)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", help="use this run folder's config (sample rate and frontend)")
    source.add_argument("--pipeline", help="use this recipe's config (pipelines/<name>.toml or a path)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only errors (not the name of the PNG written, none of TensorFlow's own log lines)")
    args = parser.parse_args(argv)

    from .quiet import native_logs_held, quiet_tensorflow
    quiet_tensorflow()
    out = Path(args.out) if args.out else Path(f"{Path(args.file).stem}.png")

    def work() -> None:
        show_file(args.file, out, load_config(args.run, args.pipeline))
        if not args.quiet:
            print(f"wrote {printable_path(out)}")

    with native_logs_held(args.quiet):  # TensorFlow is imported in work
        return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
