"""The training step's input pipeline yields the CPU to the step (``trainer.InputThreadPriority``)."""

from __future__ import annotations

import os
import re
import sys
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from sound_tf import trainer

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")


def _cpu_ticks(tid: int) -> int:
    """User + system CPU time of one thread of this process, in clock ticks."""
    with open(f"/proc/self/task/{tid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@linux_only
def test_the_input_iterators_threads_get_a_lower_priority_and_do_the_pipelines_work():
    rng = np.random.default_rng(0)
    waves = rng.standard_normal((32, 1 << 15)).astype(np.float32)
    labels = rng.standard_normal((32, 2)).astype(np.float32)

    def heavy(wave, label):  # enough CPU in the pipeline to show up in the threads' clock ticks
        for _ in range(4):
            wave = tf.signal.irfft(tf.signal.rfft(wave))
        return wave[:64], label

    ds = (tf.data.Dataset.from_tensor_slices((waves, labels)).repeat()
          .map(heavy, num_parallel_calls=2).batch(8).prefetch(2))
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    callback = trainer.InputThreadPriority(niceness=7)
    seen: dict[int, tuple[str, int, int]] = {}  # at the end of training: name, niceness, CPU ticks

    class Probe(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            for tid, name in trainer.InputThreadPriority._threads().items():
                try:
                    seen[tid] = (name, os.getpriority(os.PRIO_PROCESS, tid), _cpu_ticks(tid))
                except OSError:  # ended meanwhile
                    continue

    base = os.getpriority(os.PRIO_PROCESS, 0)
    started = {tid: _cpu_ticks(tid) for tid in trainer.InputThreadPriority._threads()}
    model.fit(ds, steps_per_epoch=40, epochs=1, verbose=0, callbacks=[callback, Probe()], shuffle=False)

    lowered = {tid: seen[tid] for tid in callback.lowered if tid in seen}  # alive at the end of training
    assert lowered, "no thread of the input iterator was found"
    assert {nice for _, nice, _ in lowered.values()} == {min(19, base + 7)}
    # Only new, unnamed threads: TensorFlow's compute pools (tf_*) and the training thread keep their priority.
    assert seen[threading.get_native_id()][1] == base
    assert all(nice == base for name, nice, _ in seen.values() if name.startswith("tf_"))
    assert not callback.lowered & set(started)
    # ... and those threads are the ones that ran the pipeline: most of the CPU time of new threads is theirs.
    new_ticks = {tid: ticks for tid, (_, _, ticks) in seen.items() if tid not in started}
    assert sum(new_ticks[tid] for tid in lowered) >= 0.8 * sum(new_ticks.values()) > 0


def test_the_niceness_is_validated():
    with pytest.raises(ValueError, match="niceness"):
        trainer.InputThreadPriority(niceness=-1)


def test_the_niceness_is_a_whole_number_numpy_integers_too_and_never_a_bool():
    """niceness took only ``int``, so ``np.int64(5)`` was refused and ``True`` lowered the threads by 1."""
    callback = trainer.InputThreadPriority(niceness=np.int64(5))
    assert callback.niceness == 5 and type(callback.niceness) is int
    for value in (True, np.True_, 2.0, "2", np.array(2), np.int64(40)):
        with pytest.raises(ValueError, match=rf"^niceness must be an integer in \[0, 39\], got "
                                             rf"{re.escape(repr(value))}$"):
            trainer.InputThreadPriority(niceness=value)
