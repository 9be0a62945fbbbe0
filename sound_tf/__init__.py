"""sound_tf: from labelled recordings to a trained, measured, deployable sound classifier.

The public API is re-exported here lazily, so ``import sound_tf`` (and the on-device runner, which
imports ``sound_tf.audio``) never pulls in TensorFlow unless a TensorFlow-backed name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "sound_tf.config",
    "config_from_recipe": "sound_tf.config",
    "apply_overrides": "sound_tf.config",
    "SoundTFError": "sound_tf.errors",
    "AudioError": "sound_tf.errors",
    "ConfigError": "sound_tf.errors",
    "DatasetError": "sound_tf.errors",
    "load_audio": "sound_tf.audio",
    "decode_bytes": "sound_tf.audio",
    "split_windows": "sound_tf.audio",
    "DecodeCache": "sound_tf.audio",
    "load_examples": "sound_tf.datasets",
    "prepare_dataset": "sound_tf.datasets",
    "build_model": "sound_tf.models",
    "LogMel": "sound_tf.frontend",
    "SpecAugment": "sound_tf.augment",
    "make_waveform_augmenter": "sound_tf.augment",
    "train_run": "sound_tf.trainer",
    "evaluate_run": "sound_tf.evaluate",
    "load_run": "sound_tf.evaluation",
    "run_crossval": "sound_tf.crossval",
    "compute_metrics": "sound_tf.metrics",
    "write_report_html": "sound_tf.report",
    "SoundHyperModel": "sound_tf.hypermodel",
    "run_search": "sound_tf.tune",
    "export_run": "sound_tf.export",
    "LiteClassifier": "sound_tf.lite",
    "create_app": "sound_tf.serve.app",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sound_tf' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
