"""The production HTTP service: ``python -m sound_tf.serve MODEL_DIR``.

``create_app(settings)`` builds the FastAPI app, ``ServeSettings`` holds the settings (flags or
``SOUND_TF_*`` environment variables). Nothing here imports TensorFlow unless the chosen backend needs it.
"""

from __future__ import annotations

from .app import create_app, create_app_from_env
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "create_app_from_env"]
