"""``tf.data`` datasets over the decode cache: training, evaluation and sliding windows.

Every file was decoded and resampled once into a canonical 16-bit PCM WAV (``sound_tf.audio``), so the
per-epoch path is pure TensorFlow: ``read_file -> decode_wav -> pad/crop -> mixup -> augment -> batch``,
with no ``py_function``. Decoded waveforms are cached in memory after the first epoch when they fit the budget
(``SOUND_TF_MEMORY_CACHE_MB``, default 4096 MB), so later epochs skip file reads altogether: as float32 when
they fit that way, else as the 16-bit samples of the WAVs (half the bytes; each example becomes float32,
exactly, after it is cropped to the clip length).

Shapes: a clip is ``[samples]`` float32 in [-1, 1]; batches are ``[batch, clip_samples]``; labels are
one-hot ``[batch, classes]`` (soft after mixup); sample weights ``[batch]`` when class weights are on.
"""

from __future__ import annotations

import math
import os
from collections.abc import KeysView, Mapping, Set
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from .config import Config
from .errors import ConfigError, counted, is_whole

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_MEMORY_CACHE_MB = 4096
#: Batches a training pipeline served from memory keeps ready ahead of the training step.
TRAINING_PREFETCH_BATCHES = 2
#: Second word of the base key that every training epoch's keys are folded from (:func:`epoch_keys`).
EPOCH_KEY_SALT = 0x5EED


# -- single clips -----------------------------------------------------------------------------------
def decode_wav_file(path: tf.Tensor) -> tf.Tensor:
    """Read one cached 16-bit PCM WAV into ``[samples]`` float32 (in-graph)."""
    audio, _ = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1)  # [samples, 1]
    return tf.squeeze(audio, axis=-1)  # [samples]


def _clip_args(where: str, wave: Any, length: Any) -> tf.Tensor:
    """``wave`` as a tensor, after the checks TensorFlow would fail on deep inside (or not at all): a wave of
    one axis (``[samples]``; a rank unknown when traced is left to the shape check at the end), a
    ``length`` that is a whole number >= 1 (0 gave an empty clip, -1 "Paddings must be non-negative")."""
    wave = tf.convert_to_tensor(wave)
    if wave.shape.rank not in (None, 1):
        raise ConfigError(f"{where}: wave must be one clip of shape [samples], got shape {wave.shape.as_list()}")
    if not is_whole(length) or length < 1:
        raise ConfigError(f"{where}: length must be a whole number of samples >= 1, got {length!r}")
    return wave


def pad_or_crop(wave: tf.Tensor, length: int, *, offset: tf.Tensor | int = 0) -> tf.Tensor:
    """Cut ``length`` samples from ``offset`` (or zero-pad at the end when the clip is shorter).

    An ``offset`` past ``samples - length`` is moved back so the window stays full; a negative one is
    refused when the call is traced with it, and moved to 0 when it is only known as the graph runs (it
    sliced from the end and returned zeros).
    """
    wave = _clip_args("pad_or_crop", wave, length)
    known = tf.get_static_value(offset)
    if known is not None and (np.ndim(known) != 0 or np.asarray(known).dtype.kind not in "iu" or known < 0):
        raise ConfigError(f"pad_or_crop: offset must be a whole number of samples >= 0, got {known!r}")
    n = tf.shape(wave)[0]
    offset = tf.clip_by_value(tf.cast(offset, tf.int32), 0, tf.maximum(n - length, 0))
    wave = wave[offset:offset + length]
    wave = tf.pad(wave, [[0, length - tf.shape(wave)[0]]])
    return tf.ensure_shape(wave, [length])  # [length]


def random_pad_or_crop(wave: tf.Tensor, length: int, seed: tf.Tensor) -> tf.Tensor:
    """Random crop of a long clip, or random placement of a short clip inside a zero window."""
    wave = _clip_args("random_pad_or_crop", wave, length)
    n = tf.shape(wave)[0]
    slack = tf.abs(n - length)
    start = tf.random.stateless_uniform([], seed, minval=0, maxval=slack + 1, dtype=tf.int32)
    # One graph for both cases, no tf.cond: a short clip is padded to `length` with `start` zeros first; a
    # long one is not padded (a zero pad, like a full-length slice, forwards its input without a copy)
    # and is cut from `start`.
    short = n < length
    before = tf.where(short, start, 0)
    padded = tf.pad(wave, [[before, tf.maximum(length - n - before, 0)]])  # [max(n, length)]
    offset = tf.where(short, 0, start)
    return tf.ensure_shape(padded[offset:offset + length], [length])  # [length]


def _check_hop(where: str, clip_samples: Any, hop_samples: Any) -> None:
    """Refuse a known hop outside ``[1, clip_samples]``: 0 divides by zero, a longer hop leaves gaps."""
    if all(isinstance(v, (int, np.integer)) for v in (clip_samples, hop_samples)) and \
            not 1 <= hop_samples <= clip_samples:
        raise ConfigError(f"{where}: hop_samples={hop_samples} must be in [1, clip_samples={clip_samples}]: "
                          f"a longer hop skips the samples between windows")


def num_windows(num_samples: tf.Tensor, clip_samples: int, hop_samples: int) -> tf.Tensor:
    """Windows needed to cover ``num_samples``: ``1 + ceil(max(n - clip, 0) / hop)``.

    As :func:`sliding_windows`, a hop outside ``[1, clip_samples]`` is refused (0 divided by zero inside
    TensorFlow; a longer hop counted windows with gaps between them).
    """
    _check_hop("num_windows", clip_samples, hop_samples)
    extra = tf.maximum(num_samples - clip_samples, 0)
    return 1 + (extra + hop_samples - 1) // hop_samples


def sliding_windows(wave: tf.Tensor, clip_samples: int, hop_samples: int) -> tf.Tensor:
    """Cover a clip with windows of ``clip_samples`` every ``hop_samples``; the tail is zero-padded.

    A clip no longer than one window gives one zero-padded window. Matches
    ``sound_tf.audio.split_windows`` (the TensorFlow-free twin used by the on-device runner and the
    server); a test holds them equal, and as there a hop longer than a window (which would skip the
    samples between windows) is refused.
    """
    _check_hop("sliding_windows", clip_samples, hop_samples)
    n = tf.shape(wave)[0]
    count = num_windows(n, clip_samples, hop_samples)
    total = clip_samples + (count - 1) * hop_samples
    padded = tf.pad(wave, [[0, total - n]])
    return tf.signal.frame(padded, clip_samples, hop_samples)  # [windows, clip_samples]


# -- datasets ---------------------------------------------------------------------------------------
def memory_cache_budget_bytes() -> int:
    """The memory caches' budget, ``SOUND_TF_MEMORY_CACHE_MB`` (default :data:`DEFAULT_MEMORY_CACHE_MB`), in bytes."""
    text = os.environ.get("SOUND_TF_MEMORY_CACHE_MB", str(DEFAULT_MEMORY_CACHE_MB))
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not 0 <= megabytes < math.inf:  # also NaN: "could not convert" / "cannot convert float NaN to integer"
        raise ConfigError(f"SOUND_TF_MEMORY_CACHE_MB={text!r}: must be a number of megabytes >= 0 (0: no memory "
                          f"cache; default {DEFAULT_MEMORY_CACHE_MB})")
    return int(megabytes * 2**20)


def memory_cache_format(paths: Sequence[str], *, budget_bytes: int | None = None) -> str | None:
    """How the decoded waveforms of ``paths`` are kept in memory after the first epoch, or ``None`` (not kept).

    ``"float32"`` when they fit the budget (``budget_bytes``, by default all of ``SOUND_TF_MEMORY_CACHE_MB``)
    as float32; else ``"int16"``, the 16-bit samples as the cached WAVs hold them (half the bytes), when
    those fit; else ``None`` and every epoch reads the WAV files. float32 comes first because converting
    int16 back costs about 0.02 ms of CPU per 5-s clip (``bench/pipeline_ab.py``); int16 doubles the audio
    that can stay in memory.
    """
    return memory_cache_plan(paths, budget_bytes=budget_bytes)[0]


def memory_cache_plan(paths: Sequence[str], *, budget_bytes: int | None = None) -> tuple[str | None, int]:
    """:func:`memory_cache_format` of ``paths`` and about how many bytes of the budget that cache takes."""
    wav_bytes = sum(os.path.getsize(p) for p in paths)  # 16-bit PCM: about 2 bytes per sample
    budget = memory_cache_budget_bytes() if budget_bytes is None else budget_bytes
    if 2 * wav_bytes <= budget:
        return "float32", 2 * wav_bytes
    return ("int16", wav_bytes) if wav_bytes <= budget else (None, 0)


def fits_memory_cache(paths: Sequence[str]) -> bool:
    """Whether the decoded waveforms of ``paths`` stay in memory after the first epoch.

    See :func:`memory_cache_format`.
    """
    return memory_cache_format(paths) is not None


PCM16_SCALE = 32768.0  # decode_wav maps a 16-bit sample k to k / 32768 exactly


def _to_pcm16(wave: tf.Tensor) -> tf.Tensor:
    """float32 samples decoded from 16-bit PCM -> the int16 samples themselves (exact)."""
    return tf.cast(tf.round(wave * PCM16_SCALE), tf.int16)


def as_float(wave: tf.Tensor) -> tf.Tensor:
    """A clip from :func:`_decoded` as float32 in [-1, 1): int16 from the memory cache is scaled back (exact).

    float16 or float64 samples are cast to float32. Other integers are refused (when traced): an int32 or
    uint8 wave, whose full scale is not 32768, was returned as it was, integers up to 2**31.
    """
    wave = tf.convert_to_tensor(wave)
    if wave.dtype == tf.int16:
        return tf.cast(wave, tf.float32) * (1.0 / PCM16_SCALE)
    if not wave.dtype.is_floating:
        raise ConfigError(f"as_float takes int16 PCM or floating-point samples, got a {wave.dtype.name} wave; "
                          f"scale other integer samples to [-1, 1] first")
    return wave if wave.dtype == tf.float32 else tf.cast(wave, tf.float32)


def _path_list(paths: Any, where: str) -> list[str]:
    """``paths`` as a list of text, refusing what would not line up with the caller's list of files.

    One path given alone is refused (a string is a sequence: it was read letter by letter, a file per
    letter), and so is a set or a mapping (no fixed order: the rows would not follow the caller's).
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise ConfigError(f"{where}: paths is one path ({os.fsdecode(paths)!r}), not a list of paths; pass [path]")
    if isinstance(paths, (Set, Mapping)) and not isinstance(paths, KeysView):  # dict.keys() keeps its order
        raise ConfigError(f"{where}: paths must be an ordered sequence (list, tuple, array), got a "
                          f"{type(paths).__name__}, whose order is not the caller's")
    listed = [str(path) for path in paths]
    if not listed:
        raise ConfigError(f"{where}: paths is empty; give at least one file")
    return listed


def _class_indices(label_indices: Any, num_classes: int, where: str, *, count: int | None = None) -> np.ndarray:
    """``label_indices`` as ``[examples]`` int32, each a class index in ``[0, num_classes)``.

    ``tf.one_hot`` makes an index outside that range an all-zero label (an example that weighs nothing in
    the loss and is scored as no class), and an array cast to int would truncate 0.7 to class 0: both
    are refused here, once, before any example is read.
    """
    if isinstance(label_indices, (str, bytes, Set, Mapping)):
        raise ConfigError(f"{where}: label_indices must be a sequence of class indices (list, tuple, array), got "
                          f"{type(label_indices).__name__}")
    y = np.asarray(label_indices)
    if y.ndim != 1 or (count is not None and y.shape[0] != count):
        expected = f"[{count}], one class index per path" if count is not None else "one class index per example"
        raise ConfigError(f"{where}: label_indices has shape {list(y.shape)}; expected {expected}")
    if y.size and y.dtype.kind not in "iu":
        raise ConfigError(f"{where}: label_indices must be integer class indices, got {y.dtype} values "
                          f"(first: {y[0].item()!r})")
    outside = np.flatnonzero((y < 0) | (y >= num_classes))
    if outside.size:
        first = int(outside[0])
        raise ConfigError(f"{where}: label_indices[{first}] is {y[first]}, not a class index in [0, {num_classes}) "
                          f"({outside.size} such; the config has {counted(num_classes, 'labels')})")
    return y.astype(np.int32)


def _batch_size(batch_size: Any, config: Config, where: str) -> int:
    """``batch_size`` (``None``: ``train.batch_size``), a whole number >= 1."""
    if batch_size is None:
        return config.train.batch_size
    if not is_whole(batch_size) or batch_size < 1:
        raise ConfigError(f"{where}: batch_size must be a whole number >= 1 (or None for train.batch_size), "
                          f"got {batch_size!r}")
    return int(batch_size)


def _decoded(paths: Sequence[str], labels: Sequence[int], cache: str | None) -> tf.data.Dataset:
    """``(wave [samples], label)`` per file, memory-cached as ``cache`` (:func:`memory_cache_format`) says.

    ``wave`` is int16 when the cache keeps 16-bit samples, else float32; :func:`as_float` gives float32
    either way, exactly.
    """
    ds = tf.data.Dataset.from_tensor_slices((list(map(str, paths)), np.asarray(labels, np.int32)))
    ds = ds.map(lambda p, y: (decode_wav_file(p), y), num_parallel_calls=AUTOTUNE)
    if cache == "int16":
        ds = ds.map(lambda w, y: (_to_pcm16(w), y), num_parallel_calls=AUTOTUNE)
    return ds.cache() if cache else ds


def class_weight_table(label_indices: Sequence[int], num_classes: int) -> np.ndarray:
    """Inverse-frequency class weights normalised to mean 1 over the examples (``[classes]``).

    ``n / (present * count)`` for each class with examples (``present`` of them), as scikit-learn's
    ``compute_class_weight("balanced")`` gives over those classes; 0 for a class without any.
    """
    y = _class_indices(label_indices, num_classes, "class_weight_table")
    if not y.size:
        raise ConfigError("class_weight_table: label_indices is empty; class weights need examples")
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = np.count_nonzero(counts)
    weights = np.where(counts > 0, counts.sum() / (present * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def drops_remainder(num_clips: int, batch_size: int) -> bool:
    """Whether a training epoch drops its last, partial batch: it does on splits of two batches or more."""
    return num_clips >= 2 * batch_size


def batches_per_epoch(num_clips: int, batch_size: int) -> int:
    """Batches in one epoch of :func:`training_dataset` over ``num_clips`` clips (at least 1)."""
    for name, value in (("num_clips", num_clips), ("batch_size", batch_size)):
        if not is_whole(value) or value < 1:
            raise ConfigError(f"batches_per_epoch: {name} must be a whole number >= 1, got {value!r}")
    whole = num_clips // batch_size if drops_remainder(num_clips, batch_size) else math.ceil(num_clips / batch_size)
    return max(1, whole)


def steps_per_epoch(num_clips: int, batch_size: int, min_steps: int = 1) -> int:
    """Batches in one epoch of :func:`training_dataset`: a pass's (:func:`batches_per_epoch`), or ``min_steps``
    (``train.min_steps_per_epoch``) when a pass has fewer, as the clips are then cycled through."""
    if not is_whole(min_steps) or min_steps < 1:
        raise ConfigError(f"steps_per_epoch: min_steps must be a whole number >= 1, got {min_steps!r}")
    return max(batches_per_epoch(num_clips, batch_size), int(min_steps))


def cycles_clips(num_clips: int, batch_size: int, min_steps: int) -> bool:
    """Whether a training epoch cycles through the clips: one pass has fewer than ``min_steps`` batches."""
    return batches_per_epoch(num_clips, batch_size) < min_steps


def _seeded_shuffle(ds: tf.data.Dataset, buffer: int, seed: tf.Tensor) -> tf.data.Dataset:
    """``ds.shuffle(buffer, seed)`` with a seed tensor, built inside a ``tf.data`` function.

    ``tf.data`` accepts a tensor seed, but TensorFlow's ``random_seed.get_seed`` compares the seed pair to
    ``(0, 0)`` in Python, which fails on a tensor when the global seed is 0 (``keras.utils.set_random_seed(0)``,
    the default ``train.seed``). The op seed alone decides the order, so the global seed is left out here.
    """
    graph = tf.compat.v1.get_default_graph()
    kept, graph.seed = graph.seed, None
    try:
        return ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
    finally:
        graph.seed = kept


def epoch_keys(seed: int, epoch: int | tf.Tensor) -> tf.Tensor:
    """``[3, 2]`` int64 stateless keys of training epoch ``epoch``: its shuffle, its mixup partners' shuffle and
    its per-example draws (crop, mixup, waveform augmentation). They depend on ``seed`` and ``epoch`` only.

    Both are whole numbers (an epoch of 1.5 was cast to 1 and got epoch 1's keys)."""
    for name, value in (("seed", seed), ("epoch", epoch)):
        dtype = value.dtype if isinstance(value, (tf.Tensor, tf.Variable, np.ndarray, np.generic)) else type(value)
        if isinstance(value, bool) or not (tf.as_dtype(dtype).is_integer if not isinstance(dtype, type)
                                           else issubclass(dtype, int)):
            raise ConfigError(f"epoch_keys: {name} must be a whole number, got {value!r}")
    base = tf.constant([seed, EPOCH_KEY_SALT], tf.int64)
    return tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64)), num=3)  # [3, 2]


def training_dataset(
    paths: Sequence[str],
    label_indices: Sequence[int],
    config: Config,
    *,
    waveform_augmenter: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
    mixup: Callable[..., tuple[tf.Tensor, tf.Tensor]] | None = None,
    class_weights: np.ndarray | None = None,
    first_epoch: int = 0,
    epochs: int | None = 1,
) -> tf.data.Dataset:
    """Shuffled, randomly cropped, mixed, augmented, batched training data: ``epochs`` epochs from ``first_epoch``.

    Epoch ``e``'s order, crops and augmentation draws depend only on ``train.seed`` and ``e``
    (:func:`epoch_keys`), so a run resumed at epoch ``e`` (``first_epoch=e``) sees the data an
    uninterrupted run would have seen there, instead of the first epoch's again, and iterating the
    dataset twice gives the same batches. ``epochs=None`` streams epochs endlessly (train with
    ``fit(..., steps_per_epoch=...)``; each epoch is ``sound_tf.trainer.steps_per_epoch`` batches).

    An epoch is one pass over the clips, unless a pass has fewer than ``train.min_steps_per_epoch`` batches
    (:func:`cycles_clips`): the clips then form an endless stream of passes, pass ``p`` shuffled, cropped
    and augmented by keys of ``p``, and epoch ``e`` is that stream's batches ``e * steps`` to
    ``(e + 1) * steps - 1`` (:func:`steps_per_epoch`), batches running on from one pass into the next.

    When the clips fit the memory cache, the dataset runs without tf.data's autotuner and with one
    intra-op thread per example (one call per core; :func:`training_options`), and keeps
    :data:`TRAINING_PREFETCH_BATCHES` batches ready; otherwise tf.data's defaults apply.

    Parameters
    ----------
    paths, label_indices
        Cached WAV files and their class indices.
    config
        Sample rate, clip length, batch size, shuffle buffer and seed come from here.
    waveform_augmenter
        ``f(wave [samples], seed [2]) -> wave [samples]`` applied per example (``sound_tf.augment``).
    mixup
        ``f(wave, label, partner_wave, partner_label, seed [2]) -> (wave, label)`` (one-hot / soft labels
        ``[classes]``), see :func:`sound_tf.augment.make_mixup`. Partners come from a second shuffle of
        the same (cached) clips, randomly cropped like the examples; mixing comes before the waveform
        augmenter, so a mixed clip is shifted, scaled and noised as one.
    class_weights
        ``[classes]`` weights; when given the dataset yields ``(waves, labels, sample_weights)``.
    first_epoch, epochs
        The epoch numbers served: ``first_epoch, first_epoch + 1, ...``, ``epochs`` of them (``None``: no end).
    """
    length, classes, seed = config.audio.clip_samples, config.num_classes, config.train.seed
    whole = [is_whole(n) for n in (first_epoch, epochs)]
    if not whole[0] or first_epoch < 0 or (epochs is not None and (not whole[1] or epochs < 1)):
        raise ConfigError(f"training_dataset: first_epoch must be a whole number >= 0 and epochs one >= 1 or None, "
                          f"got {first_epoch!r} and {epochs!r}")
    paths = _path_list(paths, "training_dataset")
    label_indices = list(_class_indices(label_indices, classes, "training_dataset", count=len(paths)))
    buffer = min(config.train.shuffle_buffer, len(paths))
    if buffer < len(paths):
        # A folder tree or a sorted manifest lists its files class by class: put them in one seeded random
        # order first, or a buffer smaller than the split draws every batch from a few neighbouring classes.
        order = np.random.default_rng(seed).permutation(len(paths))
        paths, label_indices = [paths[i] for i in order], [label_indices[i] for i in order]
    cache = memory_cache_format(paths)
    decoded = _decoded(paths, label_indices, cache)
    # With mixup each clip carries its number in ``paths``: a partner from the second shuffle may be the clip itself.
    source = decoded if mixup is None else tf.data.Dataset.zip((decoded, tf.data.Dataset.range(len(paths))))
    drop_remainder = drops_remainder(len(paths), config.train.batch_size)
    if class_weights is not None and np.shape(class_weights) != (classes,):
        raise ConfigError(f"training_dataset: class_weights has shape {list(np.shape(class_weights))}; expected "
                          f"[{classes}], one weight per class of the config")
    table = None if class_weights is None else tf.constant(class_weights, tf.float32)

    def one_pass(number: tf.Tensor) -> tf.data.Dataset:
        """Pass ``number``'s examples, unbatched: an epoch's, or with cycled clips a pass's of the stream."""
        keys = epoch_keys(seed, number)  # [3, 2]: shuffle, partners, draws
        # Example i's seed is (this epoch's draw word, i): like stateless_fold_in(keys[2], i), the word drawn once.
        draw_word = tf.random.stateless_uniform([], seed=keys[2], minval=0, maxval=2**31 - 1, dtype=tf.int32)
        streams = (_seeded_shuffle(source, buffer, keys[0, 0]).enumerate(),)
        if mixup is not None:  # partners: the same cached clips in another order
            streams += (_seeded_shuffle(source, buffer, keys[1, 0]),)

        def per_example(indexed: tuple[tf.Tensor, Any], partner: Any = None) -> tuple[tf.Tensor, tf.Tensor]:
            # indexed: (index, (wave, label)), or with mixup (index, ((wave, label), clip)); partner alike
            index, example = indexed
            (wave, label), clip = example if partner is not None else (example, None)
            pair = tf.stack([draw_word, tf.cast(index, tf.int32)])  # [2]
            # One split gives every consumer its own seed (every op in a tf.data function costs about 1 us per example).
            crop_seed, aug_seed, partner_seed, mix_seed = tf.unstack(
                tf.random.experimental.stateless_split(pair, num=4))
            wave = as_float(random_pad_or_crop(wave, length, crop_seed))  # [length]
            label = tf.one_hot(label, classes)  # [classes]
            if partner is not None:
                (partner_wave, partner_label), partner_clip = partner
                partner_wave = random_pad_or_crop(partner_wave, length, partner_seed)  # [length], converted if mixed in
                wave, label = mixup(wave, label, partner_wave, tf.one_hot(partner_label, classes), mix_seed,
                                    same_clip=tf.equal(clip, partner_clip))
            if waveform_augmenter is not None:
                wave = waveform_augmenter(wave, aug_seed)
            return tf.ensure_shape(wave, [length]), label  # [length], [classes]

        return tf.data.Dataset.zip(streams).map(per_example, num_parallel_calls=AUTOTUNE)

    batch, min_steps = config.train.batch_size, config.train.min_steps_per_epoch
    if not cycles_clips(len(paths), batch, min_steps):  # an epoch is one pass, its last partial batch dropped
        numbers = (tf.data.Dataset.counter(first_epoch) if epochs is None
                   else tf.data.Dataset.range(first_epoch, first_epoch + epochs))
        ds = numbers.flat_map(lambda epoch: one_pass(epoch).batch(batch, drop_remainder=drop_remainder))
    else:  # an epoch is min_steps batches of an endless stream of passes, whole batches across their seams
        first_clip = first_epoch * min_steps * batch  # where epoch first_epoch starts in the stream
        ds = tf.data.Dataset.counter(first_clip // len(paths)).flat_map(one_pass).skip(first_clip % len(paths))
        ds = ds.batch(batch, drop_remainder=True)
        if epochs is not None:
            ds = ds.take(epochs * min_steps)
    if table is not None:
        ds = ds.map(lambda x, y: (x, y, tf.linalg.matvec(y, table)))  # soft labels -> mixed weights
    if cache is None:  # files read every epoch: leave the parallel reads to the autotuner
        return ds.prefetch(AUTOTUNE)
    return ds.prefetch(TRAINING_PREFETCH_BATCHES).with_options(training_options())


def training_options() -> tf.data.Options:
    """Options of a training pipeline served from memory: no autotuner, one thread per example's ops.

    - The autotuner times every op of every call to model the pipeline (``clock_gettime`` alone took 4%
      of the pipeline's CPU in ``perf``). Served from the memory cache, the per-example map is a fixed
      amount of CPU work, and one call per core is what it needs. Off, the pipeline with the default
      augmentation took about 8% less CPU per clip here.
    - An op over one 5-s clip is too small to split across threads: split, each op handed part of its
      work to another thread and waited for it. With one intra-op thread (the examples still run in
      parallel, one call per core) it took about 3% less CPU per clip again.

    On a small machine the training step shares that CPU. When the clips do not fit in memory, every
    epoch reads files, and these options stay at tf.data's defaults so the autotuner sizes the reads.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.max_intra_op_parallelism = 1
    return options


def evaluation_dataset(paths: Sequence[str], label_indices: Sequence[int], config: Config,
                       *, batch_size: int | None = None, memory_cache: bool = True,
                       memory_budget_bytes: int | None = None) -> tf.data.Dataset:
    """Deterministic first-window batches ``(waves [batch, samples], one-hot labels)`` for validation.

    ``memory_cache=False`` for a single pass (the normalisation statistics): the decoded clips are not kept
    in memory after it. ``memory_budget_bytes``: what is left of the memory cache's budget for them
    (default: all of it; see :func:`memory_cache_format`).
    """
    length, classes = config.audio.clip_samples, config.num_classes
    paths = _path_list(paths, "evaluation_dataset")
    label_indices = _class_indices(label_indices, classes, "evaluation_dataset", count=len(paths))
    batch_size = _batch_size(batch_size, config, "evaluation_dataset")
    cache = memory_cache_format(paths, budget_bytes=memory_budget_bytes) if memory_cache else None
    ds = _decoded(paths, label_indices, cache)
    ds = ds.map(lambda w, y: (as_float(pad_or_crop(w, length)), tf.one_hot(y, classes)), num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def window_dataset(paths: Sequence[str], config: Config, *, batch_size: int | None = None) -> tf.data.Dataset:
    """Batches of ``(windows [batch, samples], clip_index [batch])`` covering every clip entirely."""
    length, hop = config.audio.clip_samples, config.audio.window_hop_samples
    paths = _path_list(paths, "window_dataset")
    batch_size = _batch_size(batch_size, config, "window_dataset")
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.range(len(paths), dtype=tf.int32)))

    def to_windows(path: tf.Tensor, index: tf.Tensor) -> tf.data.Dataset:
        windows = sliding_windows(decode_wav_file(path), length, hop)  # [windows, length]
        return tf.data.Dataset.from_tensor_slices((windows, tf.fill([tf.shape(windows)[0]], index)))

    ds = ds.interleave(to_windows, cycle_length=1, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def predict_logits(model: "tf.keras.Model", paths: Sequence[str], config: Config,
                   *, batch_size: int | None = None) -> np.ndarray:
    """Per-clip logits ``[clips, classes]``: the mean of the logits of every window of each clip."""
    paths = _path_list(paths, "predict_logits")
    infer = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    sums = np.zeros((len(paths), config.num_classes), np.float64)
    counts = np.zeros(len(paths), np.int64)
    for windows, index in window_dataset(paths, config, batch_size=batch_size):
        logits = infer(windows).numpy()  # [batch, classes]
        if logits.shape[1:] != sums.shape[1:]:
            raise ConfigError(f"predict_logits: the model gives logits of shape {list(logits.shape[1:])} per window; "
                              f"the config has {counted(config.num_classes, 'labels')} ({', '.join(config.labels)})")
        np.add.at(sums, index.numpy(), logits)
        np.add.at(counts, index.numpy(), 1)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def in_memory_copy(ds: tf.data.Dataset, steps: int) -> tf.data.Dataset:
    """The first ``steps`` batches of ``ds``, materialised once and then served from memory."""
    cached = ds.take(steps).cache()
    for _ in cached:  # fill the cache
        pass
    return cached


def label_arrays(items: Sequence[object]) -> tuple[list[str], list[int]]:
    """``(cached_paths, label_indices)`` from ``datasets.Item`` rows."""
    return [str(i.cached) for i in items], [int(i.label_index) for i in items]


__all__ = [
    "decode_wav_file", "pad_or_crop", "random_pad_or_crop", "sliding_windows", "num_windows",
    "training_dataset", "epoch_keys", "batches_per_epoch", "steps_per_epoch", "cycles_clips", "drops_remainder",
    "evaluation_dataset", "window_dataset",
    "predict_logits", "class_weight_table",
    "fits_memory_cache", "memory_cache_format", "memory_cache_plan", "memory_cache_budget_bytes", "as_float",
    "label_arrays", "training_options",
]
