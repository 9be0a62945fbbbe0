# The sound_tf HTTP service. Build from the repository root:
#   docker build -t sound-tf-serve .
# Run with an export bundle (or a run folder) mounted read-only at /models:
#   docker run --rm -p 8000:8000 -v "$PWD/export/my_bundle:/models:ro" sound-tf-serve
# Settings come from SOUND_TF_* variables (e.g. -e SOUND_TF_API_KEY=... -e SOUND_TF_MAX_BATCH_SIZE=64).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SOUND_TF_PORT=8000

WORKDIR /app
# Metadata first, then the package: the dependency layer is rebuilt only when they change.
COPY pyproject.toml setup.cfg README.md ./
COPY sound_tf ./sound_tf
RUN pip install . && rm -rf /app/sound_tf

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
    && mkdir -p /models && chown app /models
USER app
WORKDIR /home/app

# The model folder: mount it (-v ...:/models:ro) or bake it into a derived image (COPY bundle/ /models/).
VOLUME ["/models"]
EXPOSE 8000

# slim has no curl: probe /health with the standard library (non-2xx answers raise, so the check fails).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SOUND_TF_PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "sound_tf.serve", "/models", "--host", "0.0.0.0"]
