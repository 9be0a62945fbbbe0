"""Micro-batching: concurrent requests share one model call, and the event loop never waits on the model.

Requests :meth:`MicroBatcher.submit` their windows (``[n, clip_samples]``) and await a future. One
worker task takes the oldest waiting request and, while other requests are announced as on their way
(:meth:`MicroBatcher.incoming`, held while an upload is decoded), waits up to ``max_wait_ms`` for them
(or until ``max_batch_size`` windows are waiting); it then concatenates whole requests up to
``max_batch_size`` windows, runs the model in a single background thread, and hands each request its
rows of the result. While a call runs, new requests queue up and form the next batch, so under load
batches grow by themselves and throughput grows with concurrency, while a lone request never waits.
A request larger than ``max_batch_size`` runs alone, in chunks.

Waiting requests live in a deque and the worker sleeps on an :class:`asyncio.Event`, so a timed-out
wait can never lose a request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import numpy as np

from ..errors import SoundTFError, is_whole

__all__ = ["BatcherClosed", "MicroBatcher", "QueueFull"]

log = logging.getLogger("sound_tf.serve")


class QueueFull(SoundTFError):
    """More windows are waiting than ``max_queue_windows`` allows."""


class BatcherClosed(SoundTFError):
    """The batcher is not running (not started yet, or shut down)."""


@dataclass
class _Job:
    windows: np.ndarray  # [n, clip_samples]
    future: asyncio.Future


class MicroBatcher:
    """Group the windows of concurrent requests into model calls of at most ``max_batch_size`` rows.

    Parameters
    ----------
    predict : callable
        ``predict(windows [n, clip_samples] float32) -> {name: [n, ...]}`` (e.g. probabilities and
        logits); called from one background thread only, so it need not be thread-safe.
    max_batch_size : int
        Most windows per call.
    max_wait_ms : float
        After the first request of a batch arrives, wait at most this long for announced others
        (0: take what is there).
    max_queue_windows : int
        Windows allowed to wait; :meth:`submit` raises :class:`QueueFull` beyond it (except for a
        request that finds the queue empty).
    on_batch : callable, optional
        ``on_batch(windows_in_call, seconds)`` after every model call (metrics).
    on_queue : callable, optional
        ``on_queue(windows_waiting)`` whenever the queue changes (metrics).
    """

    def __init__(self, predict: Callable[[np.ndarray], Mapping[str, np.ndarray]], *, max_batch_size: int,
                 max_wait_ms: float, max_queue_windows: int, on_batch: Callable[[int, float], None] | None = None,
                 on_queue: Callable[[int], None] | None = None):
        if not is_whole(max_batch_size) or max_batch_size < 1:
            raise ValueError(f"max_batch_size must be an integer >= 1, got {max_batch_size!r}")
        if not max_wait_ms >= 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms!r}")
        if max_queue_windows < 1:
            raise ValueError(f"max_queue_windows must be >= 1, got {max_queue_windows!r}")
        self._predict = predict
        self.max_batch_size = int(max_batch_size)
        self.max_wait_seconds = max_wait_ms / 1000.0
        self.max_queue_windows = max_queue_windows
        self._on_batch = on_batch
        self._on_queue = on_queue
        self._jobs: collections.deque[_Job] = collections.deque()
        self._waiting_windows = 0
        self._incoming = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def waiting_windows(self) -> int:
        """Windows submitted and not yet taken into a model call."""
        return self._waiting_windows

    @contextlib.contextmanager
    def incoming(self) -> Iterator[None]:
        """Announce a request that is on its way (being decoded) for as long as the block runs.

        The worker waits up to ``max_wait_ms`` for more requests only while some are announced, so a
        lone request is never delayed, and under load the requests being decoded join the next batch.
        """
        self._incoming += 1
        try:
            yield
        finally:
            self._incoming -= 1
            if self._wakeup is not None:
                self._wakeup.set()

    def start(self) -> None:
        """Start the worker task on the running event loop."""
        if self.running:
            return
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sound_tf-inference")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sound_tf-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still waiting fail with :class:`BatcherClosed`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        while self._jobs:
            job = self._jobs.popleft()
            if not job.future.done():
                job.future.set_exception(BatcherClosed("the server is shutting down"))
        self._set_waiting(0)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    # -- requests -------------------------------------------------------------------------------------
    async def submit(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Queue ``windows`` ``[n, clip_samples]`` and return the model's outputs for them (``[n, ...]`` each).

        Raises
        ------
        QueueFull
            Others are waiting and accepting these would exceed ``max_queue_windows`` (a request
            alone is always accepted: its size is bounded by the duration limit).
        BatcherClosed
            The batcher is not running.
        """
        if not self.running or self._wakeup is None:
            raise BatcherClosed("the model is not running")
        count = int(windows.shape[0])
        if count < 1:
            raise ValueError("submit() needs at least one window")
        if self._waiting_windows and self._waiting_windows + count > self.max_queue_windows:
            raise QueueFull(f"{self._waiting_windows} windows are already waiting for the model "
                            f"(limit {self.max_queue_windows}); try again shortly")
        future = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(windows, future))
        self._set_waiting(self._waiting_windows + count)
        self._wakeup.set()
        return await future

    # -- worker ---------------------------------------------------------------------------------------
    def _set_waiting(self, value: int) -> None:
        self._waiting_windows = value
        if self._on_queue is not None:
            self._on_queue(value)

    def _drop_cancelled(self) -> None:
        """Forget requests whose caller gave up (timeout, disconnect) before the model saw them."""
        if any(job.future.done() for job in self._jobs):
            kept = [job for job in self._jobs if not job.future.done()]
            self._jobs = collections.deque(kept)
            self._set_waiting(sum(int(job.windows.shape[0]) for job in kept))

    async def _gather(self) -> list[_Job]:
        """Wait for a first request, then up to ``max_wait`` for more; pop whole requests that fit."""
        if self._wakeup is None:
            raise BatcherClosed("the batcher was not started")
        while True:
            self._drop_cancelled()
            if self._jobs:
                break
            self._wakeup.clear()
            await self._wakeup.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_seconds
        while self._waiting_windows < self.max_batch_size and self._incoming > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
        self._drop_cancelled()
        batch: list[_Job] = []
        size = 0
        while self._jobs:
            rows = int(self._jobs[0].windows.shape[0])
            if batch and size + rows > self.max_batch_size:
                break
            batch.append(self._jobs.popleft())
            size += rows
        self._set_waiting(self._waiting_windows - size)
        return batch

    def _call_model(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model over ``windows`` in chunks of ``max_batch_size`` rows (background thread)."""
        parts: list[Mapping[str, np.ndarray]] = []
        for start in range(0, windows.shape[0], self.max_batch_size):
            chunk = windows[start:start + self.max_batch_size]  # [<= max_batch_size, clip_samples]
            began = time.perf_counter()
            outputs = self._predict(chunk)  # {name: [chunk, classes]}
            if self._on_batch is not None:
                self._on_batch(int(chunk.shape[0]), time.perf_counter() - began)
            for name, value in outputs.items():
                if np.ndim(value) < 1 or np.shape(value)[0] != chunk.shape[0]:
                    raise RuntimeError(f"the model's output {name!r} has shape {np.shape(value)} "
                                       f"for {chunk.shape[0]} windows")
            parts.append(outputs)
        if len(parts) == 1:
            return dict(parts[0])
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            windows = batch[0].windows if len(batch) == 1 else np.concatenate([j.windows for j in batch])
            try:
                outputs = await loop.run_in_executor(self._executor, self._call_model, windows)
            except asyncio.CancelledError:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(BatcherClosed("the server is shutting down"))
                raise
            except Exception as exc:  # the model failed: every request of this call gets the error
                log.exception("model call failed", extra={"fields": {"windows": int(windows.shape[0])}})
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            start = 0
            for job in batch:
                rows = int(job.windows.shape[0])
                if not job.future.done():
                    job.future.set_result({name: value[start:start + rows] for name, value in outputs.items()})
                start += rows
