"""``python -m sound_tf.serve MODEL_DIR``: serve a run folder or an export bundle over HTTP.

Flags override ``SOUND_TF_*`` environment variables, which override the defaults (see
``sound_tf/serve/settings.py`` and the README for the full list).

Examples
--------
    python -m sound_tf.serve export/esc50                       # TFLite from the bundle, 127.0.0.1:8000
    python -m sound_tf.serve runs/20250101-120000 --backend keras --port 9000
    SOUND_TF_API_KEY=secret python -m sound_tf.serve /models --host 0.0.0.0 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from typing import Sequence

from pydantic import ValidationError

from ..errors import run_cli
from ..quiet import quiet_tensorflow
from .logs import configure_logging, logging_config, stderr_as_json
from .settings import BACKENDS, ServeSettings

log = logging.getLogger("sound_tf.serve")
WORKER_HEALTHCHECK_SECONDS = 60


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sound_tf.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", help="run folder or export bundle (or SOUND_TF_MODEL_DIR)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument("--workers", type=int, help="processes, each with its own model and batcher (default 1)")
    parser.add_argument("--backend", choices=BACKENDS, help="model runtime (default auto: TFLite when present)")
    parser.add_argument("--tflite-variant", help="which model_<variant>.tflite to run (default float32 when "
                                                 "present; a variant given here must exist)")
    parser.add_argument("--max-batch-size", type=int, help="most windows per model call (default 32)")
    parser.add_argument("--max-wait-ms", type=float,
                        help="batching wait after the first request (default 5; keras and savedmodel backends: "
                             "TFLite runs each window at once)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Flags given on the command line, then ``SOUND_TF_*`` variables, then defaults."""
    flags = {"model_dir": args.model_dir, "host": args.host, "port": args.port, "workers": args.workers,
             "backend": args.backend, "tflite_variant": args.tflite_variant,
             "max_batch_size": args.max_batch_size, "max_wait_ms": args.max_wait_ms, "log_level": args.log_level}
    return ServeSettings(**{key: value for key, value in flags.items() if value is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        with stderr_as_json():  # a log collector reads these too (a bad SOUND_TF_* variable in a container)
            for err in exc.errors():
                field = ".".join(str(part) for part in err["loc"])
                if field == "model_dir" and err["type"] == "missing":
                    print("error: give MODEL_DIR (a run folder or export bundle) or set SOUND_TF_MODEL_DIR",
                          file=sys.stderr)
                else:
                    print(f"error: {field} (SOUND_TF_{field.upper()}): {err['msg']}, got {err.get('input')!r}",
                          file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    import uvicorn

    from .protocol import HeaderDeadlineProtocol

    common = dict(host=settings.host, port=settings.port, log_config=logging_config(settings.log_level),
                  access_log=False, timeout_keep_alive=settings.keep_alive_seconds, http=HeaderDeadlineProtocol,
                  limit_concurrency=settings.max_concurrency, timeout_graceful_shutdown=settings.shutdown_grace_seconds,
                  server_header=False)

    def work() -> None:
        if settings.workers == 1:
            from .app import create_app

            uvicorn.run(create_app(settings), **common)
        else:  # each worker process builds its app from the same settings, passed as SOUND_TF_* variables
            from .backends import resolve_backend
            from .metrics import multiprocess_dir

            resolve_backend(settings.model_dir, settings.backend, tflite_variant=settings.tflite_variant)
            os.environ.update(settings.to_env())
            # One /metrics for all workers (prometheus_client's multiprocess mode): each worker writes its
            # values into a shared folder, and whichever worker answers /metrics adds them up.
            own_dir = None
            if multiprocess_dir() is None:
                own_dir = tempfile.mkdtemp(prefix="sound_tf_metrics_")
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
            try:
                # Workers import the stack (and TensorFlow, for the keras/savedmodel backends) before they
                # answer the supervisor's health check: allow them more than uvicorn's default 5 s.
                uvicorn.run("sound_tf.serve.app:create_app_from_env", factory=True, workers=settings.workers,
                            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS, **common)
            finally:
                if own_dir is not None:
                    shutil.rmtree(own_dir, ignore_errors=True)

    if settings.workers > 1:
        # multiprocessing's resource tracker, which uvicorn's workers need, outlives this function: started
        # inside the block below it would hold its pipe open, and the end of the block would wait for it
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    # Every line of stderr is JSON from here on: TensorFlow's and the TFLite runtime's native lines (written
    # to descriptor 2 by C++ code as the backend loads, in this process or in the workers, which inherit it),
    # run_cli's "error: ..." and a traceback included.
    with stderr_as_json(settings.log_level):
        try:
            # uvicorn handles SIGTERM and SIGINT itself (a graceful shutdown, then the signal raised again)
            return run_cli(work, stop_signals=())
        except Exception:  # a bug: its traceback as one JSON record, not as plain text after the log
            log.exception("the server stopped on an unexpected error")
            return 1


if __name__ == "__main__":
    sys.exit(main())
