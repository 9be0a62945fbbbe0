"""Python heap probe for ``bench/serve.py --soak --python-heap`` (put on the server's ``PYTHONPATH``).

When ``SOUND_TF_BENCH_HEAP_FILE`` is set, the process traces its Python allocations (``tracemalloc``) and
appends the bytes traced so far to that file at each ``SIGUSR1``. Without it, this module does nothing.
"""

import os
import signal
import tracemalloc

_HEAP_FILE = os.environ.get("SOUND_TF_BENCH_HEAP_FILE")

if _HEAP_FILE:
    tracemalloc.start()

    def _write_traced_bytes(signum, frame):
        with open(_HEAP_FILE, "a", encoding="utf-8") as out:
            out.write(f"{tracemalloc.get_traced_memory()[0]}\n")

    signal.signal(signal.SIGUSR1, _write_traced_bytes)
