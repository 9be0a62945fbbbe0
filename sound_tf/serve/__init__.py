"""The production HTTP service: ``python -m sound_tf.serve MODEL_DIR``.

``create_app(settings)`` builds the FastAPI app, ``ServeSettings`` holds the settings (flags or
``SOUND_TF_*`` environment variables). Nothing here imports TensorFlow unless the chosen backend needs it.

The names are loaded when first used, so a module of the package that needs none of them (``logs``, which
stderr's forwarder process imports) is imported without FastAPI, pydantic or uvicorn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ServeSettings": "sound_tf.serve.settings",
    "create_app": "sound_tf.serve.app",
    "create_app_from_env": "sound_tf.serve.app",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sound_tf.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
