"""The tf.data pipeline: lengths, crops, sliding windows, batches, determinism and graph purity."""

from __future__ import annotations

import os
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
import keras

from sound_tf import pipeline
from sound_tf.audio import split_windows
from sound_tf.config import Config, apply_overrides
from sound_tf.errors import ConfigError

SR = 8000


def _config(**overrides) -> Config:
    base = {"audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5, "labels": ["a", "b", "c"],
            "train.batch_size": 4, "train.seed": 7, "train.min_steps_per_epoch": 1}  # an epoch: one pass
    return apply_overrides(Config(), {**base, **overrides})


def _write(path, samples) -> str:
    sf.write(path, samples, SR, subtype="PCM_16")
    return str(path)


def test_pad_or_crop_lengths_and_content():
    wave = tf.range(10, dtype=tf.float32)
    np.testing.assert_array_equal(pipeline.pad_or_crop(wave, 4, offset=3).numpy(), [3, 4, 5, 6])
    np.testing.assert_array_equal(pipeline.pad_or_crop(wave, 14).numpy(), list(range(10)) + [0] * 4)
    # an offset past the end is clamped so the window stays full
    np.testing.assert_array_equal(pipeline.pad_or_crop(wave, 4, offset=9).numpy(), [6, 7, 8, 9])


def test_random_pad_or_crop_is_a_slice_or_a_placement_and_seeded():
    long = tf.range(1, 101, dtype=tf.float32)
    short = tf.range(1, 11, dtype=tf.float32)
    starts = set()
    for s in range(20):
        out = pipeline.random_pad_or_crop(long, 30, tf.constant([s, 1])).numpy()
        assert out.shape == (30,)
        np.testing.assert_array_equal(np.diff(out), np.ones(29))  # contiguous slice of the source
        starts.add(out[0])
        placed = pipeline.random_pad_or_crop(short, 30, tf.constant([s, 1])).numpy()
        nonzero = placed[placed != 0]
        np.testing.assert_array_equal(nonzero, short.numpy())  # the whole short clip survives
    assert len(starts) > 5
    a = pipeline.random_pad_or_crop(long, 30, tf.constant([3, 4])).numpy()
    b = pipeline.random_pad_or_crop(long, 30, tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [1, 50, 100, 101, 175, 260])
def test_sliding_windows_cover_the_clip_and_match_the_numpy_twin(n):
    clip, hop = 100, 40
    wave = np.arange(1, n + 1, dtype=np.float32)
    windows = pipeline.sliding_windows(tf.constant(wave), clip, hop).numpy()
    expected_count = 1 + int(np.ceil(max(n - clip, 0) / hop))
    assert windows.shape == (expected_count, clip)
    for k, window in enumerate(windows):
        part = wave[k * hop:k * hop + clip]
        np.testing.assert_array_equal(window[:len(part)], part)
        assert not window[len(part):].any()
    assert windows[-1].max() == n  # the last sample is covered
    np.testing.assert_array_equal(windows, split_windows(wave, clip_samples=clip, hop_samples=hop))


def test_sliding_windows_refuse_a_hop_longer_than_a_window_as_the_numpy_twin_does():
    """Windows of 2 every 5 over 10 samples left 3 of every 5 in none and made a last window of padding only."""
    wave = tf.range(1.0, 11.0)
    np.testing.assert_array_equal(pipeline.sliding_windows(wave, 2, 2).numpy()[:, 0], [1, 3, 5, 7, 9])
    for hop in (5, 0):
        with pytest.raises(ConfigError, match=rf"^sliding_windows: hop_samples={hop} must be in \[1, clip_samples=2\]"):
            pipeline.sliding_windows(wave, 2, hop)
        with pytest.raises(ConfigError, match=r"^split_windows: "):
            split_windows(wave.numpy(), clip_samples=2, hop_samples=hop)


def _labelled_files(tmp_path, n_per_class=4, seconds=0.8):
    """Files whose constant amplitude encodes their class: 0.1 * (label + 1)."""
    paths, labels = [], []
    for label in range(3):
        for i in range(n_per_class):
            samples = np.full(int(SR * seconds) + 37 * i, 0.1 * (label + 1), np.float32)
            paths.append(_write(tmp_path / f"{label}_{i}.wav", samples))
            labels.append(label)
    return paths, labels


def test_training_batches_have_the_right_shape_labels_and_are_seeded(tmp_path):
    config = _config()
    paths, labels = _labelled_files(tmp_path)
    batches = list(pipeline.training_dataset(paths, labels, config))
    assert len(batches) == len(paths) // config.train.batch_size
    assert len(batches) == pipeline.batches_per_epoch(len(paths), config.train.batch_size)
    small = list(pipeline.training_dataset(paths[:5], labels[:5], config))  # under two batches: the remainder stays
    assert [len(w) for w, _ in small] == [4, 1] and pipeline.batches_per_epoch(5, 4) == 2
    for waves, onehot in batches:
        assert waves.shape == (config.train.batch_size, config.audio.clip_samples)
        np.testing.assert_allclose(onehot.numpy().sum(axis=1), 1.0)
        level = np.round(waves.numpy().max(axis=1) * 10) - 1  # the class encoded in the amplitude
        np.testing.assert_array_equal(level, onehot.numpy().argmax(axis=1))
    again = list(pipeline.training_dataset(paths, labels, config))
    np.testing.assert_array_equal(batches[0][0].numpy(), again[0][0].numpy())
    other = list(pipeline.training_dataset(paths, labels, _config(**{"train.seed": 8})))
    assert not np.array_equal(batches[0][0].numpy(), other[0][0].numpy())



def _seed_marks(seed: tf.Tensor) -> tf.Tensor:
    """A stateless seed as two float samples, ``[2]``, exact in float32: where a test reads which seed a draw got."""
    return tf.cast(tf.cast(seed, tf.int64) % 100003, tf.float32)


def _seed_marking_crop(crop):
    """``crop`` (pipeline.random_pad_or_crop) that writes its seed's :func:`_seed_marks` into samples 0-1."""
    def spied_crop(wave, length, seed):
        return tf.concat([_seed_marks(seed), pipeline.as_float(crop(wave, length, seed))[2:]], 0)

    return spied_crop


def test_crops_and_augmentation_draw_from_seeds_of_their_own(tmp_path, monkeypatch):
    """Each example's crop and its augmentation get separate seeds: one key for both would tie the draws
    together (e.g. the shift applied whenever the crop starts late)."""
    config = _config()
    paths, labels = _labelled_files(tmp_path)
    spied_crop = _seed_marking_crop(pipeline.random_pad_or_crop)

    monkeypatch.setattr(pipeline, "random_pad_or_crop", spied_crop)
    augmenter = lambda wave, seed: tf.concat([wave[:-2], _seed_marks(seed)], 0)  # noqa: E731  (its seed last)
    ds = pipeline.training_dataset(paths, labels, config, waveform_augmenter=augmenter, epochs=1)
    waves = np.concatenate([w.numpy() for w, _ in ds])  # [examples, samples]
    assert len(waves) >= 8
    crop_seeds, augment_seeds = waves[:, :2], waves[:, -2:]
    assert not np.any(np.all(crop_seeds == augment_seeds, axis=1))
    assert len({tuple(row) for row in augment_seeds}) == len(waves)  # and every example its own


@pytest.mark.parametrize("global_seed", [None, 0])  # 0: keras.utils.set_random_seed(0), as train.seed = 0 sets
def test_a_resumed_run_gets_the_epochs_an_uninterrupted_run_gets_not_the_first_again(tmp_path, global_seed):
    from sound_tf import augment

    tf.random.set_seed(global_seed)
    try:
        _check_resumed_epochs(tmp_path, augment)
    finally:
        tf.random.set_seed(None)


def _check_resumed_epochs(tmp_path, augment):
    config = _config(**{"augment.mixup_probability": 0.5, "augment.mixup_domain": "waveform",
                        "augment.shift_probability": 1.0, "augment.gain_probability": 1.0})
    paths, labels = _labelled_files(tmp_path)
    kwargs = dict(waveform_augmenter=augment.make_waveform_augmenter(config), mixup=augment.make_mixup(config))
    per_epoch = len(paths) // config.train.batch_size

    def waves(ds):
        return np.stack([w.numpy() for w, _ in ds])

    uninterrupted = waves(pipeline.training_dataset(paths, labels, config, epochs=3, **kwargs))
    assert len(uninterrupted) == 3 * per_epoch
    epochs = uninterrupted.reshape(3, per_epoch, *uninterrupted.shape[1:])
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    resumed = waves(pipeline.training_dataset(paths, labels, config, first_epoch=1, epochs=2, **kwargs))
    np.testing.assert_array_equal(resumed, uninterrupted[per_epoch:])  # order, crops, mixes and draws
    endless = pipeline.training_dataset(paths, labels, config, first_epoch=2, epochs=None, **kwargs)
    np.testing.assert_array_equal(waves(endless.take(per_epoch)), epochs[2])
    with pytest.raises(ValueError, match="first_epoch"):
        pipeline.training_dataset(paths, labels, config, first_epoch=-1)


def _numbered_files(tmp_path, count: int) -> tuple[list[str], list[int]]:
    """``count`` files whose constant amplitude, 0.01 * (number + 1), says which file a cropped clip came from."""
    paths = [_write(tmp_path / f"clip_{k}.wav", np.full(int(SR * 0.8), 0.01 * (k + 1), np.float32))
             for k in range(count)]
    return paths, [k % 3 for k in range(count)]


def test_a_small_split_is_cycled_so_that_an_epoch_has_min_steps_batches(tmp_path, monkeypatch):
    """12 clips in batches of 4 make 3 batches a pass; with train.min_steps_per_epoch 5 an epoch is 5 whole batches
    of a stream of passes (20 clips: 1 pass and 8 clips of the next), each pass holding every clip once, in an
    order of its own and with draws of its own, and a run resumed at epoch 1 gets the stream from clip 20."""
    config = _config(**{"train.min_steps_per_epoch": 5})
    paths, labels = _numbered_files(tmp_path, 12)
    assert pipeline.cycles_clips(12, 4, 5) and not pipeline.cycles_clips(12, 4, 3)
    assert pipeline.steps_per_epoch(12, 4, 5) == 5 and pipeline.steps_per_epoch(12, 4, 1) == 3
    assert pipeline.steps_per_epoch(100, 4, 16) == 25  # a pass of 25 batches is one epoch
    spied_crop = _seed_marking_crop(pipeline.random_pad_or_crop)  # samples 0-1: the example's crop seed
    monkeypatch.setattr(pipeline, "random_pad_or_crop", spied_crop)

    def stream(first_epoch: int, epochs: int) -> np.ndarray:
        batches = [w.numpy() for w, _ in pipeline.training_dataset(paths, labels, config, first_epoch=first_epoch,
                                                                   epochs=epochs)]
        assert all(len(b) == 4 for b in batches)  # whole batches across the passes' seams
        return np.concatenate(batches)  # [clips, samples]

    three = stream(0, 3)
    assert len(three) == 3 * 5 * 4
    clip = np.round(three[:, 2:].max(axis=1) / 0.01).astype(int) - 1  # which file each example is
    passes = clip[:48].reshape(4, 12)
    for order in passes:
        assert sorted(order) == list(range(12))
    assert len({tuple(order) for order in passes}) == 4  # each pass shuffled afresh
    seeds = {tuple(row) for row in three[:48, :2]}
    assert len(seeds) == 48  # and every example of every pass its own draws
    np.testing.assert_array_equal(stream(1, 2), three[20:])
    endless = pipeline.training_dataset(paths, labels, config, first_epoch=2, epochs=None)
    np.testing.assert_array_equal(np.concatenate([w.numpy() for w, _ in endless.take(5)]), three[40:])


def test_min_steps_per_epoch_is_a_whole_number_of_one_or_more():
    with pytest.raises(ConfigError, match="train.min_steps_per_epoch must be an integer >= 1, got 0"):
        _config(**{"train.min_steps_per_epoch": 0})
    with pytest.raises(ConfigError, match="min_steps must be a whole number >= 1"):
        pipeline.steps_per_epoch(12, 4, 0)


def test_later_epochs_are_served_from_the_memory_cache(tmp_path):
    config = _config()
    paths, labels = _labelled_files(tmp_path)
    ds = pipeline.training_dataset(paths, labels, config, epochs=None)
    per_epoch = len(paths) // config.train.batch_size
    iterator = iter(ds)
    first = [next(iterator) for _ in range(per_epoch)]
    for path in paths:  # the first epoch filled the cache: no file is read again
        os.remove(path)
    later = [next(iterator) for _ in range(2 * per_epoch)]
    assert len(first) == per_epoch and all(w.shape == first[0][0].shape for w, _ in later)
    # and what is served is still each clip under its own label: the level encodes the class
    for epoch in (first, later[:per_epoch], later[per_epoch:]):
        waves = np.concatenate([w.numpy() for w, _ in epoch])
        classes = np.concatenate([y.numpy() for _, y in epoch]).argmax(axis=1)
        np.testing.assert_allclose(waves.min(axis=1), 0.1 * (classes + 1), rtol=1e-3)
        np.testing.assert_allclose(waves.max(axis=1), 0.1 * (classes + 1), rtol=1e-3)
        assert np.bincount(classes, minlength=3).tolist() == np.bincount(labels, minlength=3).tolist()

@pytest.mark.parametrize("cache", ["float32", "int16"])
def test_mixup_partners_come_from_the_training_set_and_labels_follow_the_mix(tmp_path, monkeypatch, cache):
    from sound_tf import augment

    config = _config(**{"augment.mixup_probability": 0.5, "augment.mixup_domain": "waveform"})
    paths, labels = _labelled_files(tmp_path)
    wav_mb = sum(os.path.getsize(p) for p in paths) / 2**20
    monkeypatch.setenv("SOUND_TF_MEMORY_CACHE_MB", str((2.5 if cache == "float32" else 1.5) * wav_mb))
    assert pipeline.memory_cache_format(paths) == cache  # int16: partners are converted when mixed in
    mixup = augment.make_mixup(config)
    batches = list(pipeline.training_dataset(paths, labels, config, mixup=mixup))
    waves = np.concatenate([w.numpy() for w, _ in batches])
    soft = np.concatenate([y.numpy() for _, y in batches])
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(np.count_nonzero(soft, axis=1) <= 2)
    # every clip is a constant 0.1 * (class + 1): a mix of two is the label-weighted sum of the two
    np.testing.assert_allclose(waves.max(axis=1), soft @ (0.1 * np.arange(1, 4)), rtol=1e-3)
    np.testing.assert_allclose(waves.min(axis=1), waves.max(axis=1), rtol=1e-3)
    assert 0 < np.sum(soft.max(axis=1) < 1) < len(soft)  # some mixed, some not
    again = list(pipeline.training_dataset(paths, labels, config, mixup=mixup))
    np.testing.assert_array_equal(np.concatenate([w.numpy() for w, _ in again]), waves)


def test_a_waveform_mixup_partner_that_is_the_clip_itself_is_not_mixed_in(tmp_path):
    """The partner stream is a second shuffle of the same clips, so a clip met itself about once in N and
    was mixed with another crop of itself. With one clip, longer than the clip length and never repeating
    (a ramp), every example must be one plain crop of it: consecutive samples one step apart."""
    from sound_tf import augment

    config = _config(**{"augment.mixup_probability": 1.0, "augment.mixup_domain": "waveform",
                        "train.batch_size": 1})
    ramp = np.arange(int(SR * 1.5), dtype=np.float32) / 2**15  # one 16-bit step per sample
    paths = [_write(tmp_path / "ramp.wav", ramp)]
    mixup = augment.make_mixup(config)
    waves = np.concatenate([w.numpy() for w, _ in pipeline.training_dataset(paths, [0], config, mixup=mixup,
                                                                             epochs=8)])
    assert len(waves) == 8
    steps = np.diff(waves, axis=1) * 2**15
    np.testing.assert_allclose(steps, 1.0, atol=1e-3)  # a mix of two crops w a + (1 - w) b would still step
    # by 1, but start between two crops' values: the first sample is a whole number of steps, too
    starts = waves[:, 0] * 2**15
    np.testing.assert_allclose(starts, np.round(starts), atol=1e-3)
    assert len(set(np.round(starts).astype(int))) > 1  # the crops themselves are drawn


def test_class_weights_yield_sample_weights(tmp_path):
    config = _config()
    paths, labels = _labelled_files(tmp_path)
    paths, labels = paths[:-2], labels[:-2]  # class 2 now rarer
    table = pipeline.class_weight_table(labels, 3)
    counts = np.bincount(labels)
    np.testing.assert_allclose(table, len(labels) / (3 * counts))
    assert np.isclose((table[labels]).mean(), 1.0)
    for waves, onehot, weights in pipeline.training_dataset(paths, labels, config, class_weights=table):
        np.testing.assert_allclose(weights.numpy(), table[onehot.numpy().argmax(axis=1)], rtol=1e-6)


def test_per_epoch_graph_has_no_python_functions(tmp_path):
    config = _config()
    paths, labels = _labelled_files(tmp_path, n_per_class=2)
    ds = pipeline.training_dataset(paths, labels, config)
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(ds._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}
    assert "DecodeWav" in ops
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


class SumModel(keras.Model):
    """logits = [sum(window), -sum(window)]."""

    def call(self, x, training=False):
        s = tf.reduce_sum(x, axis=1, keepdims=True)
        return tf.concat([s, -s], axis=1)


def test_predict_logits_is_the_mean_over_windows(tmp_path):
    config = _config(**{"labels": ["a", "b"], "audio.window_hop_seconds": 0.25})
    clip, hop = config.audio.clip_samples, config.audio.window_hop_samples
    lengths = [clip // 2, clip, clip * 2 + 123]
    paths = []
    waves = []
    for i, n in enumerate(lengths):
        samples = np.linspace(-0.5, 0.9, n).astype(np.float32)
        paths.append(_write(tmp_path / f"{i}.wav", samples))
        waves.append(sf.read(paths[-1], dtype="float32")[0])
    logits = pipeline.predict_logits(SumModel(name="sum_model"), paths, config, batch_size=3)
    for wave, row in zip(waves, logits):
        expected = split_windows(wave, clip_samples=clip, hop_samples=hop).sum(axis=1).mean()
        np.testing.assert_allclose(row, [expected, -expected], rtol=1e-4, atol=1e-3)


def test_memory_cache_is_float32_or_16_bit_and_either_gives_back_the_exact_floats(tmp_path, monkeypatch):
    """float32 when it fits, else int16 (half the bytes), else no memory cache: every batch is the same."""
    config = _config(**{"train.batch_size": 3})
    rng = np.random.default_rng(0)
    clip = config.audio.clip_samples
    samples = [rng.integers(-32768, 32768, clip + 50 * i) for i in range(3)]
    for s in samples:
        s[:2] = -32768, 32767  # both ends of the 16-bit range
    paths = [_write(tmp_path / f"{i}.wav", s / 32768.0) for i, s in enumerate(samples)]
    labels = [0, 1, 2]
    expected = np.stack([sf.read(p, dtype="float32")[0][:clip] for p in paths])
    assert np.unique(expected).size > 1000 and expected.min() == -1.0 and expected.max() == 32767 / 32768

    wav_mb = sum(os.path.getsize(p) for p in paths) / 2**20
    first_batches = {}
    for budget_mb, cache, dtype in ((2.5 * wav_mb, "float32", tf.float32), (1.5 * wav_mb, "int16", tf.int16),
                                    (0.5 * wav_mb, None, tf.float32)):
        monkeypatch.setenv("SOUND_TF_MEMORY_CACHE_MB", str(budget_mb))
        assert pipeline.memory_cache_format(paths) == cache
        assert pipeline.fits_memory_cache(paths) == (cache is not None)
        assert pipeline._decoded(paths, labels, cache).element_spec[0].dtype == dtype
        waves = np.concatenate([w for w, _ in pipeline.evaluation_dataset(paths, labels, config)])
        np.testing.assert_array_equal(waves, expected)  # exact, including both ends of the range
        training = pipeline.training_dataset(paths, labels, config)
        first_batches[cache] = next(iter(training))[0].numpy()
        # Served from memory, the per-example work is fixed and the autotuner is off (one call per core);
        # reading files every epoch, it stays on to size the reads.
        assert (training.options().autotune.enabled is False) == (cache is not None)
        assert (training.options().threading.max_intra_op_parallelism == 1) == (cache is not None)
    np.testing.assert_array_equal(first_batches["float32"], first_batches["int16"])  # same crops, same samples
    np.testing.assert_array_equal(first_batches["float32"], first_batches[None])


def test_a_short_clip_is_placed_at_random_inside_the_zero_window():
    short = tf.range(1, 11, dtype=tf.float32)  # 10 samples in a 30-sample window: 21 possible starts
    starts = []
    for s in range(40):
        placed = pipeline.random_pad_or_crop(short, 30, tf.constant([s, 1])).numpy()
        start = int(np.flatnonzero(placed)[0])
        np.testing.assert_array_equal(placed[start:start + 10], short.numpy())
        assert not placed[:start].any() and not placed[start + 10:].any()
        starts.append(start)
    assert 0 <= min(starts) and max(starts) <= 20
    assert len(set(starts)) >= 10  # 40 draws over 21 starts
    assert max(starts) >= 15 and min(starts) <= 5  # both ends of the window are reached


def _identified_files(tmp_path, count=12, seconds=0.5):
    """Clips of exactly one clip length, each a constant 0.05 * (i + 1): its level names the file."""
    paths = [_write(tmp_path / f"{i}.wav", np.full(int(SR * seconds), 0.05 * (i + 1), np.float32))
             for i in range(count)]
    return paths, [i % 3 for i in range(count)]


def test_every_epoch_is_shuffled_anew(tmp_path):
    config = _config()
    paths, labels = _identified_files(tmp_path)
    waves = np.concatenate([w.numpy() for w, _ in pipeline.training_dataset(paths, labels, config, epochs=3)])
    order = np.round(waves.max(axis=1) / 0.05).astype(int) - 1  # [3 * 12] file index of every example
    epochs = order.reshape(3, 12)
    for epoch in epochs:
        assert sorted(epoch) == list(range(12))  # every file once per epoch
    assert not np.array_equal(epochs[0], np.arange(12))  # shuffled, not the input order
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def test_a_split_in_class_order_larger_than_the_shuffle_buffer_is_mixed_in_every_part_of_the_epoch(tmp_path):
    """A folder tree (or a sorted manifest) lists its files class by class. With a split larger than
    ``train.shuffle_buffer`` (2048 by default: UrbanSound8K's 7,000 training clips as class folders), the
    buffer alone drew each batch from a few neighbouring classes: the first third of an epoch held no clip
    of the last class."""
    config = _config(**{"train.shuffle_buffer": 8})
    paths = [_write(tmp_path / f"{i}.wav", np.full(SR // 2, 0.01 * (i + 1), np.float32)) for i in range(60)]
    labels = [i // 20 for i in range(60)]  # in class order: 20 clips of a, then b, then c
    waves, onehot = [], []
    for w, y in pipeline.training_dataset(paths, labels, config):
        waves.append(w.numpy())
        onehot.append(y.numpy())
    order = np.round(np.concatenate(waves).max(axis=1) / 0.01).astype(int) - 1  # [60] file index per example
    assert sorted(order) == list(range(60))  # every file once per epoch
    drawn = np.concatenate(onehot).argmax(axis=1)  # [60] class per example
    np.testing.assert_array_equal(drawn, np.asarray(labels)[order])  # labels still follow their clips
    for third in drawn.reshape(3, 20):
        counts = np.bincount(third, minlength=3)
        assert counts.min() >= 3, counts  # every class in every third of the epoch (old code: [11, 9, 0] first)


def test_each_example_of_an_epoch_gets_its_own_crop(tmp_path):
    """Crops (like every per-example draw) are seeded per example: equal-length clips are not all cut at one
    offset in an epoch."""
    config = _config()  # 0.5-s clips at 8 kHz: 4000 samples, cut from 8000-sample files
    n, step = 8000, 0.9 / 8000
    ramp = (np.arange(n) * step).astype(np.float32)  # sample k holds k * step: a crop's first sample is its offset
    paths = [_write(tmp_path / f"{i}.wav", ramp) for i in range(8)]
    waves = np.concatenate([w.numpy() for w, _ in pipeline.training_dataset(paths, [i % 3 for i in range(8)], config)])
    offsets = np.round(waves[:, 0] / step).astype(int)  # [8]
    np.testing.assert_allclose(waves, ramp[offsets[:, None] + np.arange(4000)], atol=1 / 32768)
    assert offsets.min() >= 0 and offsets.max() <= n - 4000
    assert len(set(offsets.tolist())) >= 6  # 8 draws over 4001 offsets


def test_every_crop_start_and_placement_can_be_drawn():
    """A long clip's crop may end on its last sample, a short clip may sit flush with the window's end."""
    long, short = tf.range(1, 34, dtype=tf.float32), tf.range(1, 28, dtype=tf.float32)  # 33 and 27 samples, window 30
    crops, placements = set(), set()
    for s in range(100):
        crops.add(int(pipeline.random_pad_or_crop(long, 30, tf.constant([s, 2])).numpy()[0]) - 1)
        placed = pipeline.random_pad_or_crop(short, 30, tf.constant([s, 2])).numpy()
        placements.add(int(np.flatnonzero(placed)[0]))
    assert crops == {0, 1, 2, 3} and placements == {0, 1, 2, 3}


def test_dataset_labels_outside_the_config_classes_or_not_integers_are_refused(tmp_path):
    """tf.one_hot made a label index >= classes (or < 0) an all-zero label, and float labels were cast to
    int (0.7 -> class 0): such examples trained and scored as no class, silently."""
    config = _config()  # 3 labels
    paths, labels = _labelled_files(tmp_path, n_per_class=1)
    good = [w.numpy() for w, _ in pipeline.evaluation_dataset(paths, labels, config)]
    assert np.concatenate(good).shape == (3, config.audio.clip_samples)
    for make in (lambda y: pipeline.training_dataset(paths, y, config),
                 lambda y: pipeline.evaluation_dataset(paths, y, config)):
        with pytest.raises(ConfigError, match=r"label_indices\[2\] is 3, not a class index in \[0, 3\) \(1 such; "
                                              r"the config has 3 labels\)$"):
            make([0, 1, 3])
        with pytest.raises(ConfigError, match=r"label_indices\[0\] is -1, not a class index"):
            make([-1, 1, 2])
        with pytest.raises(ConfigError, match=r"label_indices must be integer class indices, got float64"):
            make([0.7, 1.0, 2.0])
        with pytest.raises(ConfigError, match=r"label_indices has shape \[2\]; expected \[3\], "
                                              r"one class index per path"):
            make([0, 1])


def test_dataset_paths_given_as_one_path_a_set_or_nothing_are_refused(tmp_path):
    """One path string was read letter by letter ('/tmp/x.wav' -> files '/', 't', ...), and an empty list
    failed inside TensorFlow with "Cannot convert ... float32 to string"."""
    config = _config()
    paths, labels = _labelled_files(tmp_path, n_per_class=1)
    with pytest.raises(ConfigError, match=r"^window_dataset: paths is one path \('.*0_0\.wav'\), not a list"):
        pipeline.window_dataset(paths[0], config)
    with pytest.raises(ConfigError, match=r"^predict_logits: paths is one path"):
        pipeline.predict_logits(lambda x: x, tmp_path / "0_0.wav", config)
    with pytest.raises(ConfigError, match=r"^evaluation_dataset: paths must be an ordered sequence .* set"):
        pipeline.evaluation_dataset(set(paths), labels, config)
    with pytest.raises(ConfigError, match=r"^training_dataset: paths is empty"):
        pipeline.training_dataset([], [], config)
    windows = [i.numpy() for _, i in pipeline.window_dataset([tmp_path / "0_0.wav"], config)]  # a Path in a list
    assert np.concatenate(windows).tolist() == [0, 0, 0]  # 6400 samples, windows of 4000 every 2000: three


def test_dataset_paths_given_as_dict_keys_are_taken_in_their_order(tmp_path):
    """A dict's keys (insertion order: the caller's) were taken as paths before the set check, which counted
    the keys view as a set (collections.abc.Set) and refused it; a set is still refused."""
    config = _config()
    paths, labels = _labelled_files(tmp_path, n_per_class=1)
    by_path = dict(zip(reversed(paths), reversed(labels)))
    got = [y.numpy().argmax(axis=1) for _, y in pipeline.evaluation_dataset(by_path.keys(), list(by_path.values()),
                                                                             config)]
    assert np.concatenate(got).tolist() == list(reversed(labels))
    windows = [i.numpy() for _, i in pipeline.window_dataset(by_path.keys(), config)]
    assert np.concatenate(windows).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ConfigError, match=r"paths must be an ordered sequence"):
        pipeline.window_dataset(set(paths), config)


def test_dataset_batch_size_class_weights_and_epochs_are_checked(tmp_path):
    """batch_size=0 fell back to train.batch_size (`batch_size or ...`), -1 failed in BatchDatasetV2,
    class weights of the wrong length failed in MatMul inside a tf.data function, and epochs=True served one
    epoch and epochs=1.5 failed converting to an int64 tensor."""
    config = _config()
    paths, labels = _labelled_files(tmp_path, n_per_class=1)
    assert [len(w) for w, _ in pipeline.evaluation_dataset(paths, labels, config, batch_size=np.int64(2))] == [2, 1]
    for bad in (0, -1, 2.5, True, np.True_):
        with pytest.raises(ConfigError, match=rf"^evaluation_dataset: batch_size must be a whole number >= 1 "
                                              rf".*got {bad!r}"):
            pipeline.evaluation_dataset(paths, labels, config, batch_size=bad)
        with pytest.raises(ConfigError, match=r"^window_dataset: batch_size"):
            pipeline.window_dataset(paths, config, batch_size=bad)
    with pytest.raises(ConfigError, match=r"class_weights has shape \[2\]; expected \[3\]"):
        pipeline.training_dataset(paths, labels, config, class_weights=np.ones(2, np.float32))
    for kwargs in ({"epochs": True}, {"epochs": 1.5}, {"first_epoch": 0.5}):
        with pytest.raises(ConfigError, match=r"first_epoch must be a whole number >= 0 and epochs one >= 1"):
            pipeline.training_dataset(paths, labels, config, **kwargs)


def test_class_weights_are_sklearns_balanced_weights_and_average_one_with_a_class_missing():
    """With a class absent from the split (a cross-validation fold warns of it) the weights were
    n / (classes * count) with classes counting the absent one: [0.556, 0, 0.833] for 3, 0, 2 clips,
    averaging 2/3 over the clips, not the documented 1; a label index past num_classes made the table
    longer than the classes ([1, 1, 0, 0, 0, 1] for num_classes=3)."""
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 2, 2])
    weights = pipeline.class_weight_table(y, 3)
    balanced = compute_class_weight("balanced", classes=np.array([0, 2]), y=y)  # [0.8333, 1.25]
    np.testing.assert_allclose(weights, [balanced[0], 0.0, balanced[1]], rtol=1e-6)
    assert weights[y].mean() == pytest.approx(1.0)
    full = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(pipeline.class_weight_table(full, 3),
                               compute_class_weight("balanced", classes=np.arange(3), y=full), rtol=1e-6)
    with pytest.raises(ConfigError, match=r"^class_weight_table: label_indices\[2\] is 5, "
                                          r"not a class index in \[0, 3\)"):
        pipeline.class_weight_table([0, 1, 5], 3)
    with pytest.raises(ConfigError, match=r"^class_weight_table: label_indices is empty"):
        pipeline.class_weight_table([], 3)


def test_pad_or_crop_refuses_a_negative_offset_a_length_below_one_and_a_wave_of_two_axes():
    """offset=-3 sliced wave[-3:1], empty, and returned [0, 0, 0, 0] for a clip of 10 samples; length=0 gave
    an empty clip and length=-1 or a [channels, samples] wave failed in tf.pad ("Paddings must be ...")."""
    wave = tf.range(1, 11, dtype=tf.float32)
    np.testing.assert_array_equal(pipeline.pad_or_crop(wave, 4, offset=np.int64(3)).numpy(), [4, 5, 6, 7])
    for offset in (-3, tf.constant(-1), 1.5):
        with pytest.raises(ConfigError, match=r"^pad_or_crop: offset must be a whole number of samples >= 0"):
            pipeline.pad_or_crop(wave, 4, offset=offset)
    for crop in (lambda w, n: pipeline.pad_or_crop(w, n), lambda w, n: pipeline.random_pad_or_crop(w, n, [1, 2])):
        for length in (0, -1, 2.5):
            with pytest.raises(ConfigError, match=rf"length must be a whole number of samples >= 1, got {length}"):
                crop(wave, length)
        with pytest.raises(ConfigError, match=r"wave must be one clip of shape \[samples\], got shape \[2, 10\]"):
            crop(tf.stack([wave, wave]), 4)


def test_pad_or_crop_moves_a_negative_offset_known_only_in_the_graph_to_the_start():
    """An offset computed inside a graph cannot be refused as the call is traced: -3 sliced wave[-3:1] and
    gave [0, 0, 0, 0]; it now starts the window at the clip's first sample, as a late offset is moved back."""
    wave = tf.range(1, 11, dtype=tf.float32)
    crop = tf.function(lambda w, o: pipeline.pad_or_crop(w, 4, offset=o),
                       input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)])
    for offset, expected in ((-3, [1, 2, 3, 4]), (-1, [1, 2, 3, 4]), (2, [3, 4, 5, 6]), (9, [7, 8, 9, 10])):
        np.testing.assert_array_equal(crop(wave, tf.constant(offset)).numpy(), expected)
    np.testing.assert_array_equal(crop(wave[:2], tf.constant(-5)).numpy(), [1, 2, 0, 0])


def test_as_float_gives_float32_or_refuses_integers_it_cannot_scale():
    """An int32 wave (e.g. 24-bit PCM read as int32) came back as it was, integers up to 2**31, and a float64
    one stayed float64, where as_float promises float32 in [-1, 1)."""
    np.testing.assert_array_equal(pipeline.as_float(np.array([16384, -32768], np.int16)).numpy(), [0.5, -1.0])
    doubled = pipeline.as_float(tf.constant([0.25, -0.5], tf.float64))
    assert doubled.dtype == tf.float32 and doubled.numpy().tolist() == [0.25, -0.5]
    for dtype in (tf.int32, tf.uint8, tf.int64):
        with pytest.raises(ConfigError, match=rf"^as_float takes int16 PCM or floating-point samples, "
                                              rf"got a {dtype.name}"):
            pipeline.as_float(tf.constant([1, 2], dtype))


def test_epoch_keys_batches_per_epoch_num_windows_and_the_memory_budget_check_their_arguments(monkeypatch):
    """epoch_keys(7, 1.5) gave epoch 1's keys (the epoch cast to int64); batches_per_epoch(8, 0) was a
    ZeroDivisionError, (8, -2) answered 1 and (8.5, 2) 4.0; num_windows(10, 4, 0) failed dividing by zero
    in TensorFlow and (10, 4, 6) counted windows with gaps; SOUND_TF_MEMORY_CACHE_MB=abc was "could not
    convert string to float: 'abc'" from inside the first dataset."""
    keys = pipeline.epoch_keys(7, 1).numpy()
    np.testing.assert_array_equal(pipeline.epoch_keys(np.int64(7), tf.constant(1, tf.int64)).numpy(), keys)
    assert not np.array_equal(pipeline.epoch_keys(7, 2).numpy(), keys)
    for seed, epoch, name in ((7, 1.5, "epoch"), (7, tf.constant(1.0), "epoch"), (7.0, 1, "seed"), (True, 1, "seed")):
        with pytest.raises(ConfigError, match=rf"^epoch_keys: {name} must be a whole number"):
            pipeline.epoch_keys(seed, epoch)
    assert [pipeline.batches_per_epoch(n, 4) for n in (1, 7, 8, 9, np.int64(12))] == [1, 2, 2, 2, 3]
    for args, name in (((8, 0), "batch_size"), ((8, -2), "batch_size"), ((8.5, 2), "num_clips"), ((0, 4), "num_clips")):
        with pytest.raises(ConfigError, match=rf"^batches_per_epoch: {name} must be a whole number >= 1"):
            pipeline.batches_per_epoch(*args)
    assert [int(pipeline.num_windows(n, 4, 2)) for n in (0, 4, 5, 7)] == [1, 1, 2, 3]
    for hop in (0, 6):
        with pytest.raises(ConfigError, match=rf"^num_windows: hop_samples={hop} must be in \[1, clip_samples=4\]"):
            pipeline.num_windows(10, 4, hop)
    monkeypatch.setenv("SOUND_TF_MEMORY_CACHE_MB", "1.5")
    assert pipeline.memory_cache_budget_bytes() == 3 * 2**19
    for text in ("abc", "-1", "nan", "inf"):
        monkeypatch.setenv("SOUND_TF_MEMORY_CACHE_MB", text)
        with pytest.raises(ConfigError, match=rf"^SOUND_TF_MEMORY_CACHE_MB='{text}': "
                                              rf"must be a number of megabytes >= 0"):
            pipeline.memory_cache_budget_bytes()


def test_predict_logits_is_the_mean_of_the_models_window_logits_and_checks_the_class_count(tmp_path):
    """A model of 5 outputs under a config of 3 labels failed in np.add.at with "array is not broadcastable
    to correct shape", naming neither the model nor the labels."""
    config = _config()
    paths, _ = _labelled_files(tmp_path, n_per_class=1, seconds=1.1)  # 8800+ samples: 4 windows of 4000 every 2000
    inputs = keras.Input((config.audio.clip_samples,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    expected = np.stack([model(split_windows(pipeline.as_float(pipeline.decode_wav_file(p)).numpy(),
                                             clip_samples=4000, hop_samples=2000)).numpy().mean(axis=0) for p in paths])
    np.testing.assert_allclose(pipeline.predict_logits(model, paths, config, batch_size=3), expected, atol=1e-5)
    five = keras.Model(inputs, keras.layers.Dense(5)(inputs))
    with pytest.raises(ConfigError, match=r"^predict_logits: the model gives logits of shape \[5\] per window; the "
                                          r"config has 3 labels \(a, b, c\)"):
        pipeline.predict_logits(five, paths, config)


def test_an_epoch_of_two_batches_or_more_drops_its_partial_batch_as_batches_per_epoch_counts(tmp_path):
    """Fit reads batches_per_epoch batches an epoch from an endless stream: a partial batch served as well
    would shift every later epoch's batches across the epochs' boundaries."""
    config = _config()  # batch of 4
    paths, labels = _identified_files(tmp_path, count=11)
    per_epoch = pipeline.batches_per_epoch(len(paths), config.train.batch_size)
    assert per_epoch == len(paths) // config.train.batch_size  # 2: three clips left out each epoch
    batches = [w.numpy() for w, _ in pipeline.training_dataset(paths, labels, config, epochs=3)]
    assert [len(b) for b in batches] == [config.train.batch_size] * (3 * per_epoch)
    order = np.round(np.concatenate(batches).max(axis=1) / 0.05).astype(int) - 1  # file index of every example
    for epoch in order.reshape(3, per_epoch * config.train.batch_size):
        assert len(set(epoch.tolist())) == len(epoch)  # no file twice in an epoch
    endless = pipeline.training_dataset(paths, labels, config, first_epoch=1, epochs=None)
    np.testing.assert_array_equal(np.concatenate([w.numpy() for w, _ in endless.take(2 * per_epoch)]),
                                  np.concatenate(batches[per_epoch:]))


def test_the_sample_weight_of_a_mixed_clip_is_its_soft_labels_mix_of_the_class_weights(tmp_path):
    from sound_tf import augment

    config = _config(**{"augment.mixup_probability": 0.5, "augment.mixup_domain": "waveform"})
    paths, labels = _labelled_files(tmp_path)
    paths, labels = paths[:-3], labels[:-3]  # 4, 4 and 1 clips
    table = pipeline.class_weight_table(labels, 3)
    ds = pipeline.training_dataset(paths, labels, config, mixup=augment.make_mixup(config), class_weights=table,
                                   epochs=3)
    soft = np.concatenate([y.numpy() for _, y, _ in ds])
    weights = np.concatenate([w.numpy() for _, _, w in ds])
    mixed = (soft > 0).sum(axis=1) == 2  # rows of two classes
    assert mixed.sum() >= 3
    np.testing.assert_allclose(weights, soft @ table, rtol=1e-6)
    assert not np.allclose(weights[mixed], table[soft[mixed].argmax(axis=1)])  # not the larger share's class


def test_a_mixup_partner_is_cropped_with_a_seed_of_its_own(tmp_path, monkeypatch):
    """The example's crop and its partner's get separate seeds: one seed for both cut the partner at the
    example's offset whenever the two are as long."""
    config = _config()
    paths, labels = _labelled_files(tmp_path)
    spied_crop = _seed_marking_crop(pipeline.random_pad_or_crop)

    def mixup(wave, label, partner_wave, partner_label, seed, same_clip):  # both crops' seeds: samples 0-3
        return tf.concat([wave[:2], partner_wave[:2], wave[4:]], 0), label

    monkeypatch.setattr(pipeline, "random_pad_or_crop", spied_crop)
    waves = np.concatenate([w.numpy() for w, _ in pipeline.training_dataset(paths, labels, config, mixup=mixup)])
    assert len(waves) == 12
    assert not np.any(np.all(waves[:, :2] == waves[:, 2:4], axis=1))
    assert len({tuple(row) for row in waves[:, 2:4]}) == len(waves)


def test_the_order_a_split_larger_than_the_shuffle_buffer_is_put_in_first_follows_the_seed(tmp_path):
    """The seeded order a split larger than the buffer is put in before the buffer shuffles it: were it the
    same for every train.seed, every seed's first batch would come from the same buffer + batch - 1 files."""
    buffer, batch = 8, 4
    paths = [_write(tmp_path / f"{i}.wav", np.full(SR // 2, 0.01 * (i + 1), np.float32)) for i in range(60)]
    labels = [i // 20 for i in range(60)]
    first = set()
    for seed in range(6):
        config = _config(**{"train.shuffle_buffer": buffer, "train.batch_size": batch, "train.seed": seed})
        waves, _ = next(iter(pipeline.training_dataset(paths, labels, config)))
        first |= set((np.round(waves.numpy().max(axis=1) / 0.01).astype(int) - 1).tolist())
    assert len(first) > buffer + batch - 1
