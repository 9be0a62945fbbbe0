"""audio.py: decoding every supported format, downmix, resampling, errors, canonical WAVs, the decode cache."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import stat
import struct
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sound_tf.audio import (CACHE_ENV_VAR, DecodeCache, count_windows, decode_bytes, default_cache_dir, load_audio,
                            split_windows, wav_codec_problem, write_wav)
from sound_tf.errors import AudioError, ConfigError

from conftest import sine

RATE_HZ = 16000
TONE_HZ = 440.0


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SNR of ``estimate`` against ``reference`` over the reference's length."""
    n = len(reference)
    error = estimate[:n] - reference
    return float(10 * np.log10(np.sum(reference ** 2) / max(np.sum(error ** 2), 1e-30)))


def peak_hz(samples: np.ndarray, sample_rate_hz: int) -> float:
    """Frequency of the largest bin of a Hann-windowed spectrum."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * sample_rate_hz / len(samples))


# (container, subtype, minimum SNR in dB against the written float sine)
FORMATS = [
    ("WAV", "PCM_U8", 35.0),
    ("WAV", "PCM_16", 80.0),
    ("WAV", "PCM_24", 120.0),
    ("WAV", "PCM_32", 130.0),
    ("WAV", "FLOAT", 130.0),
    ("WAV", "DOUBLE", 130.0),
    ("WAV", "ULAW", 33.0),
    ("WAV", "ALAW", 33.0),
    ("WAV", "IMA_ADPCM", 25.0),
    ("FLAC", "PCM_16", 80.0),
    ("FLAC", "PCM_24", 120.0),
    ("OGG", "VORBIS", 30.0),
    ("OGG", "OPUS", 25.0),
    ("MP3", "MPEG_LAYER_III", 30.0),
    ("AIFF", "PCM_16", 80.0),
    ("AU", "PCM_16", 80.0),
]
LOSSLESS_SUBTYPES = {"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}


@pytest.mark.parametrize("container, subtype, min_snr_db", FORMATS, ids=[f"{c}-{s}" for c, s, _ in FORMATS])
def test_decodes_every_format_to_the_written_sine(tmp_path, container, subtype, min_snr_db):
    if container not in sf.available_formats() or subtype not in sf.available_subtypes(container):
        pytest.fail(f"libsndfile {sf.__libsndfile_version__} lacks {container}/{subtype}")
    original = sine(TONE_HZ, 0.5, RATE_HZ)
    path = tmp_path / f"tone_{subtype}.{container.lower()}"
    sf.write(path, original, RATE_HZ, format=container, subtype=subtype)

    decoded = load_audio(path, sample_rate_hz=RATE_HZ)

    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert np.max(np.abs(decoded)) <= 1.0
    # ADPCM pads the last block; every other codec gives back exactly the written length.
    if subtype == "IMA_ADPCM":
        assert len(original) <= len(decoded) < len(original) + 512
    else:
        assert len(decoded) == len(original)
    assert snr_db(original, decoded) >= min_snr_db
    assert peak_hz(decoded[: len(original)], RATE_HZ) == pytest.approx(TONE_HZ, abs=2.0)
    if subtype in LOSSLESS_SUBTYPES and container in ("WAV", "FLAC"):
        tolerance = 1.0 / 32768 if subtype == "PCM_16" else 1e-6
        np.testing.assert_allclose(decoded, original, atol=tolerance)


def test_mp3_is_available_in_this_libsndfile():
    assert "MP3" in sf.available_formats(), sf.__libsndfile_version__


def test_decode_bytes_matches_load_audio(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, sine(TONE_HZ, 0.3, 22050), 22050)
    from_file = load_audio(path, sample_rate_hz=RATE_HZ)
    from_bytes = decode_bytes(path.read_bytes(), sample_rate_hz=RATE_HZ, name="tone.flac")
    np.testing.assert_array_equal(from_bytes, from_file)


def test_stereo_downmix_is_the_channel_mean(tmp_path):
    left, right = sine(300.0, 0.25, RATE_HZ, 0.6), sine(1000.0, 0.25, RATE_HZ, 0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), RATE_HZ, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, sample_rate_hz=RATE_HZ), (left + right) / 2, atol=1e-7)


def test_six_channel_downmix_is_the_channel_mean(tmp_path):
    base = sine(500.0, 0.25, RATE_HZ, 0.9)
    weights = np.array([1.0, -0.5, 0.25, 0.0, 0.75, -1.0], dtype=np.float32)
    path = tmp_path / "surround.wav"
    sf.write(path, base[:, None] * weights[None, :], RATE_HZ, subtype="FLOAT")
    decoded = load_audio(path, sample_rate_hz=RATE_HZ)
    np.testing.assert_allclose(decoded, base * weights.mean(), atol=1e-6)
    # Opposite channels cancel: a silent mean proves averaging, not picking the first channel.
    path_cancel = tmp_path / "cancel.wav"
    sf.write(path_cancel, np.stack([base, -base], axis=1), RATE_HZ, subtype="FLOAT")
    assert np.max(np.abs(load_audio(path_cancel, sample_rate_hz=RATE_HZ))) < 1e-7


def test_channels_that_cancel_when_averaged_are_warned_of_naming_the_file_and_the_db(tmp_path, caplog):
    """Averaged to mono, a stereo file whose right channel is minus the left is silence: it trained as silence
    and nothing said so. Channels that do not cancel (another signal, a silent one, a copy, a part-cancelled
    mix 19 dB down) and silent or -90 dBFS channels are not warned of; every file is still decoded to the mix."""
    base = sine(TONE_HZ, 0.5, RATE_HZ, 0.5)  # a mean power of 0.125: -9.0 dBFS
    cases = {  # name: (channels [frames, channels], subtype)
        "opposite.wav": (np.stack([base, -base], axis=1), "FLOAT"),  # the mix is exactly 0
        "opposite_pcm16.wav": (np.stack([base, -base], axis=1), "PCM_16"),  # +-half a step apart after rounding
        "nine_tenths.flac": (np.stack([base, -0.9 * base], axis=1), "PCM_24"),  # mix 0.05 x base: 25.6 dB down
        "four_channels.wav": (np.stack([base, base, -base, -base], axis=1), "FLOAT"),
        "two_tones.wav": (np.stack([base, sine(1000.0, 0.5, RATE_HZ, 0.2)], axis=1), "FLOAT"),
        "one_silent.wav": (np.stack([base, np.zeros_like(base)], axis=1), "FLOAT"),  # 3.0 dB down
        "copies.wav": (np.stack([base, base], axis=1), "FLOAT"),
        "eight_tenths.wav": (np.stack([base, -0.8 * base], axis=1), "FLOAT"),  # 10 log10(0.82 / 0.01): 19.1 dB
        "silent.wav": (np.zeros((RATE_HZ // 2, 2), np.float32), "FLOAT"),
        "quiet_opposite.wav": (np.stack([base, -base], axis=1) * 10 ** (-81 / 20), "FLOAT"),  # -90 dBFS
    }
    for name, (channels, subtype) in cases.items():
        sf.write(tmp_path / name, channels, RATE_HZ, subtype=subtype)
    decoded = {}
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        for name in cases:
            decoded[name] = load_audio(tmp_path / name, sample_rate_hz=RATE_HZ)
    said = {r.fields["file"]: r for r in caplog.records if r.name == "sound_tf.audio"}
    warned = {Path(file).name: record for file, record in said.items()}
    assert sorted(warned) == ["four_channels.wav", "nine_tenths.flac", "opposite.wav", "opposite_pcm16.wav"]
    expected_db = 10 * np.log10(((1 + 0.81) / 2) / 0.05 ** 2)
    assert round(expected_db, 1) == 25.6
    assert warned["nine_tenths.flac"].getMessage() == (
        f"{tmp_path / 'nine_tenths.flac'}: its 2 channels cancel out when averaged to mono: the mix is 25.6 dB below "
        "the channels' mean level of -9.5 dBFS. Are they in opposite phase? The file is used as that near-silent mix; "
        "keep one channel (e.g. ffmpeg -i IN -af 'pan=mono|c0=c0' OUT.wav) or invert one")
    assert warned["nine_tenths.flac"].fields["cancelled_db"] == 25.6
    assert "the mix is silent while the channels are at -9.0 dBFS" in warned["opposite.wav"].getMessage()
    assert warned["opposite.wav"].fields["cancelled_db"] is None
    assert "its 4 channels cancel out" in warned["four_channels.wav"].getMessage()
    assert warned["opposite_pcm16.wav"].fields["cancelled_db"] > 80  # 16-bit rounding leaves -96 dBFS of the tone
    # Still decoded, as the mean of the channels: a quiet, partly cancelled mix is a recording like another.
    np.testing.assert_allclose(decoded["nine_tenths.flac"], 0.05 * base, atol=1e-6)
    np.testing.assert_allclose(decoded["eight_tenths.wav"], 0.1 * base, atol=1e-7)
    assert np.max(np.abs(decoded["opposite.wav"])) == 0.0
    # An upload is named as the server names it; the decode cache warns when it decodes the file, and keeps it.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        decode_bytes((tmp_path / "opposite.wav").read_bytes(), sample_rate_hz=RATE_HZ, name="phone.wav")
        result = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ).build([tmp_path / "opposite.wav",
                                                                                 tmp_path / "two_tones.wav"])
    assert ([r.getMessage().split(":")[0] for r in caplog.records]
            == ["phone.wav"] + [str(tmp_path / "opposite.wav")] * 2)
    assert "silent: every sample is zero" in caplog.records[-1].getMessage()  # the mix it caches
    assert len(result.cached) == 2 and result.skipped == []


def test_the_decode_cache_warns_about_a_silent_file_and_keeps_it(tmp_path, caplog):
    """An all-zero recording (a failed recording in a class folder) was trained on as that class without a word."""
    sf.write(tmp_path / "zeros.wav", np.zeros(RATE_HZ // 4, np.float32), RATE_HZ, subtype="PCM_16")
    sf.write(tmp_path / "below_a_step.wav", np.full(RATE_HZ // 4, 1e-6, np.float32), RATE_HZ, subtype="FLOAT")
    sf.write(tmp_path / "one_step.wav", np.full(RATE_HZ // 4, 1 / 32768, np.float32), RATE_HZ, subtype="FLOAT")
    sources = [tmp_path / name for name in ("zeros.wav", "below_a_step.wav", "one_step.wav")]
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ)
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        result = cache.build(sources)
    assert len(result.cached) == 3 and result.skipped == []  # used, as before
    assert sorted(r.getMessage() for r in caplog.records[:-1]) == [
        f"{tmp_path / name}: silent: every sample is zero (in 16-bit PCM) over its 0.25 s; it is used as silence "
        f"labelled as its class: remove it if it is a failed recording" for name in ("below_a_step.wav", "zeros.wav")]
    # one step of 16-bit PCM is not silence: a very quiet recording, named after them all
    assert caplog.records[-1].getMessage() == (
        f"1 recording is very quiet (peak below -40 dBFS, not silent): {tmp_path / 'one_step.wav'} (-90.3 dBFS); they "
        f"are used as they are: check the recording level if they are not meant to be faint")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        cache.build(sources)  # once, when it is decoded
    assert not caplog.records


def _peaking_at(peak: float, samples: int, seed: int) -> np.ndarray:
    wave = np.random.default_rng(seed).uniform(-1.0, 1.0, samples)
    return (wave / np.abs(wave).max() * peak).astype(np.float32)  # its peak is exactly ``peak``


def test_the_decode_cache_names_quiet_and_clipped_recordings_once_a_build(tmp_path, caplog):
    """A recording far below full scale (a phone's gain left low) or clipped (a microphone overdriven) was decoded
    without a word. One warning a build names up to 3 of each kind and counts them all; a recording that only peaks
    at full scale (a 100 Hz tone at 0 dBFS, sampled at 16 kHz) or stays just below it is neither, and a second build
    (reading the cache) says nothing."""
    from sound_tf.audio import level_problem

    seconds = np.arange(RATE_HZ) / RATE_HZ
    quiet = []
    for i, dbfs in enumerate((-45.0, -50.0, -55.0, -60.0, -70.0)):
        quiet.append(tmp_path / f"quiet_{i}.wav")
        sf.write(quiet[-1], _peaking_at(10 ** (dbfs / 20), RATE_HZ, i), RATE_HZ, subtype="FLOAT")
    src_rate = 44100  # clipped at 44.1 kHz, decoded at 16 kHz: resampling smooths the plateau, which stays
    clipped = tmp_path / "clipped.wav"
    sf.write(clipped, np.clip(3 * np.sin(2 * np.pi * 220 * np.arange(src_rate) / src_rate), -1, 1), src_rate,
             subtype="PCM_16")
    full = tmp_path / "full_scale_tone.wav"
    sf.write(full, np.sin(2 * np.pi * 100 * seconds), RATE_HZ, subtype="PCM_16")  # peaks at 32767: no run of 5
    below = tmp_path / "below_full_scale.wav"
    sf.write(below, 0.98 * np.sin(2 * np.pi * 30 * seconds), RATE_HZ, subtype="PCM_16")
    at_40 = tmp_path / "at_minus_40.wav"  # at the line: not quiet
    sf.write(at_40, _peaking_at(0.0101, RATE_HZ, 9), RATE_HZ, subtype="FLOAT")
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ)
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        result = cache.build([*quiet, clipped, full, below, at_40])
    assert len(result.cached) == 9 and result.skipped == []  # all used
    run = int(level_problem(load_audio(clipped, sample_rate_hz=RATE_HZ))[1].split()[0])
    assert run >= 20  # 220 Hz clipped 3x: about a third of each half period
    assert [r.getMessage() for r in caplog.records] == [
        f"5 recordings are very quiet (peak below -40 dBFS, not silent): {quiet[0]} (-45.0 dBFS), {quiet[1]} (-50.0 "
        f"dBFS), {quiet[2]} (-55.0 dBFS), ...; they are used as they are: check the recording level if they are not "
        f"meant to be faint",
        f"1 recording is clipped (5 or more samples in a row at full scale): {clipped} ({run} samples in a row at full "
        f"scale); the distortion is learned as part of their class: record at a lower gain if you can"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        assert cache.build([*quiet, clipped]).reused == 6
    assert not caplog.records
    assert level_problem(np.zeros(100, np.float32)) is None  # silence is silent_note's
    assert level_problem(np.array([0.0, 1.0, 1.0, 1.0, 1.0, 0.0], np.float32)) is None  # 4 in a row
    assert level_problem(np.array([0.0, -1.0, -1.0, -1.0, -0.9995, -1.0], np.float32)) == (
        "clipped", "5 samples in a row at full scale")


def test_silent_note_is_the_decode_caches_rule_for_what_classifiers_are_given():
    """Silent: every sample rounds to 0 in 16-bit PCM (under half a step); the note gives the length at the rate."""
    from sound_tf.audio import is_silent, silent_note

    half_step = np.float32(0.5 / 32768)
    below = np.nextafter(half_step, np.float32(0.0))
    for peak, silent in ((0.0, True), (below, True), (-below, True), (half_step, False), (-half_step, False)):
        wave = np.zeros(RATE_HZ // 2, np.float32)
        wave[7] = peak
        assert is_silent(wave) is silent
    assert silent_note(np.zeros(RATE_HZ * 3 // 2, np.float32), RATE_HZ) == (
        "silent: every sample is zero (in 16-bit PCM) over its 1.50 s; its classes are the model's answer to silence, "
        "not to a sound")
    assert silent_note(np.full(10, 0.01, np.float32), RATE_HZ) is None
    assert not is_silent(np.zeros(0, np.float32))  # no samples: nothing to call silent (check_wave refuses it)


@pytest.mark.parametrize("source_hz, target_hz, tone_hz", [(44100, 16000, 1000.0), (8000, 22050, 440.0)])
def test_resampling_keeps_frequency_and_duration(tmp_path, source_hz, target_hz, tone_hz):
    seconds = 1.0
    path = tmp_path / f"tone_{source_hz}.wav"
    sf.write(path, sine(tone_hz, seconds, source_hz), source_hz, subtype="FLOAT")

    decoded = load_audio(path, sample_rate_hz=target_hz)

    assert len(decoded) == int(round(seconds * target_hz))
    resolution_hz = target_hz / len(decoded)
    assert peak_hz(decoded, target_hz) == pytest.approx(tone_hz, abs=resolution_hz)
    # Away from the edges the resampled sine is the ideal sine at the new rate (soxr HQ).
    reference = sine(tone_hz, seconds, target_hz)
    middle = slice(target_hz // 10, -target_hz // 10)
    assert snr_db(reference[middle], decoded[middle]) > 60.0


def test_full_scale_float_overshoot_is_clipped(tmp_path):
    path = tmp_path / "hot.wav"
    sf.write(path, np.array([0.0, 1.5, -3.0, 0.25], dtype=np.float32), RATE_HZ, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, sample_rate_hz=RATE_HZ), [0.0, 1.0, -1.0, 0.25])


def test_integer_pcm_stored_as_floats_is_refused_not_clipped_to_a_square_wave(tmp_path):
    """A float WAV holding int16 values (whole numbers, or samples scaled by 32767 and not rounded) was
    clipped to +-1 without a word: a square wave that training, predict, lite and the server used as the
    recording. Overshoot a little beyond full scale is still clipped (above)."""
    wave = sine(TONE_HZ, 0.1, RATE_HZ, 0.5)
    cases = {"whole.wav": (np.round(wave * 32767), "that are whole numbers up to 16384"),
             "scaled.wav": (wave * 30000, "up to 15000"),
             "negative.wav": (np.minimum(np.round(wave * 8), 0.0), "that are whole numbers up to 4")}
    for name, (samples, words) in cases.items():
        path = tmp_path / name
        sf.write(path, samples, RATE_HZ, subtype="FLOAT")
        with pytest.raises(AudioError) as caught:
            load_audio(path, sample_rate_hz=RATE_HZ)
        assert str(caught.value).startswith(f"{path}: holds float samples {words}, where full scale is 1.0: integer "
                                            f"PCM stored as floats?"), str(caught.value)
        with pytest.raises(AudioError, match=rf"^up\.wav: holds float samples {words}"):
            decode_bytes(path.read_bytes(), sample_rate_hz=RATE_HZ, name="up.wav")
    result = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ).build([str(tmp_path / "whole.wav")])
    assert not result.cached and "integer PCM stored as floats" in result.skipped[0][1]
    loud = tmp_path / "loud.wav"  # +6 dB over full scale, not whole numbers: clipped as before
    sf.write(loud, wave * 4, RATE_HZ, subtype="DOUBLE")
    assert np.abs(load_audio(loud, sample_rate_hz=RATE_HZ)).max() == 1.0


def _corrupt_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Bad files and a fragment of the reason each must give."""
    good = tmp_path / "good.wav"
    sf.write(good, sine(TONE_HZ, 0.1, RATE_HZ), RATE_HZ, subtype="PCM_16")
    files = {
        "missing": (tmp_path / "missing.wav", "file not found"),
        "empty": (tmp_path / "empty.wav", "empty file (0 bytes)"),
        "random": (tmp_path / "random.wav", "not a readable audio file (libsndfile: Format not recognised); it reads "
                                            "WAV, FLAC"),
        "truncated": (tmp_path / "truncated.wav", "not a readable audio file"),
        "text": (tmp_path / "notes.mp3", "not a readable audio file (libsndfile: no format it reads matches the file's "
                                         "content); it reads WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF or AU: "
                                         "convert a recording to one of them"),
        # a phone's AAC, named in a manifest or on predict's command line: the ffmpeg line a data folder's warning gives
        "m4a": (tmp_path / "door bell.m4a", "not a readable audio file (libsndfile: Format not recognised); it reads "
                                           "WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF or AU: convert it to FLAC or "
                                           f"WAV, e.g. ffmpeg -i '{tmp_path}/door bell.m4a' "
                                           f"'{tmp_path}/door bell.flac'"),
        "no_frames": (tmp_path / "no_frames.wav", f"contains no audio frames (0 frames, 1 channel at {RATE_HZ} Hz)"),
        "nan": (tmp_path / "nan.wav", "contains 2 NaN or infinite sample values"),
        "one_nan": (tmp_path / "one_nan.wav", "contains 1 NaN or infinite sample value"),
        # resampled to 16 kHz, a 1-Hz header would make 80 KB of samples into 2.5 GB
        "one_hertz": (tmp_path / "one_hertz.wav", "its header gives a sample rate of 1 Hz"),
        "broken_link": (tmp_path / "moved.wav", "broken symbolic link"),
        "link_loop": (tmp_path / "loop.wav", "broken symbolic link"),  # the cache's key used to raise RuntimeError
    }
    files["broken_link"][0].symlink_to(tmp_path / "elsewhere.wav")
    files["link_loop"][0].symlink_to(files["link_loop"][0])
    files["empty"][0].write_bytes(b"")
    files["random"][0].write_bytes(np.random.default_rng(7).bytes(4096))
    files["truncated"][0].write_bytes(good.read_bytes()[:30])  # cut inside the RIFF header
    files["text"][0].write_text("not audio at all\n" * 20)
    files["m4a"][0].write_bytes(b"\0\0\0\x20ftypM4A " + b"\0" * 64)
    sf.write(files["no_frames"][0], np.zeros(0, np.float32), RATE_HZ)
    sf.write(files["nan"][0], np.array([0.0, np.nan, 0.5, np.inf], np.float32), RATE_HZ, subtype="FLOAT")
    sf.write(files["one_nan"][0], np.array([0.0, 0.25, np.nan], np.float32), RATE_HZ, subtype="FLOAT")
    sf.write(files["one_hertz"][0], np.zeros(40_000, np.float32), 1, subtype="PCM_16")
    return files


BAD_FILES = ["missing", "empty", "random", "truncated", "text", "m4a", "no_frames", "nan", "one_nan", "one_hertz",
             "broken_link", "link_loop"]


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_raise_audio_error_naming_the_file(tmp_path, case):
    path, reason = _corrupt_files(tmp_path)[case]
    with pytest.raises(AudioError) as info:
        load_audio(path, sample_rate_hz=RATE_HZ)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert reason in info.value.reason


def test_a_file_that_cannot_be_opened_says_why(tmp_path, monkeypatch):
    path = _corrupt_files(tmp_path)["random"][0]
    real_open = Path.open

    def no_access(self, *args, **kwargs):  # as chmod 000 does for a user without root's capabilities
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", no_access)
    with pytest.raises(AudioError, match=r"random.wav: cannot be opened \(Permission denied\)"):
        load_audio(path, sample_rate_hz=RATE_HZ)  # libsndfile used to say only "System error"


def test_libsndfile_reason_is_passed_on(tmp_path):
    path = _corrupt_files(tmp_path)["truncated"][0]
    with pytest.raises(AudioError, match="libsndfile: .*data"):
        load_audio(path, sample_rate_hz=RATE_HZ)


_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_* after the tag


def _wav_with_tag(tag: int, *, extensible_sub: int | None = None, endian: str = "<") -> bytes:
    """A well-formed 1-s 8-kHz WAV whose ``fmt `` chunk names ``tag`` (0xFFFE: ``extensible_sub``)."""
    fmt = struct.pack(endian + "HHIIHH", tag, 1, 8000, 16000, 2, 16)
    if extensible_sub is not None:
        fmt += struct.pack(endian + "HHIH", 22, 16, 4, extensible_sub) + _GUID_TAIL
    else:
        fmt += struct.pack(endian + "H", 0)
    body = (b"WAVE" + b"LIST" + struct.pack(endian + "I", 3) + b"abc\0"  # an odd chunk before fmt: padded
            + b"fmt " + struct.pack(endian + "I", len(fmt)) + fmt
            + b"data" + struct.pack(endian + "I", 16000) + bytes(16000))
    return (b"RIFF" if endian == "<" else b"RIFX") + struct.pack(endian + "I", len(body)) + body


@pytest.mark.parametrize("container, subtype", [(c, s) for c in ("WAV", "WAVEX", "RF64")
                                                for s in sf.available_subtypes(c) if s != "MPEG_LAYER_III"])
def test_every_wav_codec_libsndfile_writes_is_one_it_decodes(tmp_path, container, subtype):
    path = tmp_path / "tone.wav"
    sf.write(path, sine(TONE_HZ, 0.2, RATE_HZ, 0.5), RATE_HZ, format=container, subtype=subtype)
    assert wav_codec_problem(path.read_bytes()) is None
    assert load_audio(path, sample_rate_hz=RATE_HZ).size >= 0.2 * RATE_HZ


def test_wav_codecs_libsndfile_lacks_are_exactly_the_ones_it_calls_malformed():
    """Over all 65,536 format tags, libsndfile's "malformed 'fmt ' chunk" (plain WAV) and "unimplemented
    format" (WAVE_FORMAT_EXTENSIBLE) come for exactly the codecs ``wav_codec_problem`` names; every other
    tag reaches a decoder. MP3 (0x0055) needs its 12-byte extension, and 0xFFFE its sub-format, so bare
    ones are malformed chunks, left to libsndfile's words."""
    def libsndfile_lacks(data: bytes) -> bool:
        try:
            sf.info(io.BytesIO(data))
        except sf.LibsndfileError as exc:
            return "Malformed 'fmt ' chunk" in exc.error_string or "unimplemented format" in exc.error_string
        return False

    for extensible in (False, True):
        lacks, named = set(), set()
        for tag in range(0x10000):
            data = _wav_with_tag(0xFFFE, extensible_sub=tag) if extensible else _wav_with_tag(tag)
            lacks |= {tag} if libsndfile_lacks(data) else set()
            named |= {tag} if wav_codec_problem(data) else set()
        # a bare 0xFFFE lacks the sub-format, so it is a malformed chunk that libsndfile calls unimplemented
        assert lacks - named == (set() if extensible else {0x0055, 0xFFFE}), sorted(lacks - named)
        assert named - lacks == set(), sorted(named - lacks)
        assert len(named) > 65000


def test_a_wav_in_a_codec_libsndfile_lacks_names_the_codec(tmp_path):
    path = tmp_path / "meeting.wav"
    path.write_bytes(_wav_with_tag(0x0161))
    with pytest.raises(AudioError) as caught:
        load_audio(path, sample_rate_hz=RATE_HZ)
    assert str(caught.value).startswith(f"{path}: a WAV file whose audio is in a codec libsndfile does not decode "
                                        "(WAVE format tag 0x0161, Windows Media Audio); convert it to PCM WAV")
    with pytest.raises(AudioError, match=r"^up\.wav: .*\(WAVE_FORMAT_EXTENSIBLE sub-format 0x0055, MPEG layer III\)"):
        decode_bytes(_wav_with_tag(0xFFFE, extensible_sub=0x55), sample_rate_hz=RATE_HZ, name="up.wav")
    # big-endian RIFX; a tag no known codec has is as likely damage ('fmt ' then garbage: "ga" read as a tag)
    with pytest.raises(AudioError, match=r"^upload: a WAV file whose .fmt . chunk names WAVE format tag 0x1234, no "
                                         r"audio codec known here: the file is probably damaged; if it plays "
                                         r"elsewhere, .*convert it to PCM WAV"):
        decode_bytes(_wav_with_tag(0x1234, endian=">"), sample_rate_hz=RATE_HZ)
    garbage = b"RIFF" + (1000).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little") + b"garbage!" * 12
    assert wav_codec_problem(garbage).startswith("a WAV file whose 'fmt ' chunk names WAVE format tag 0x6167, no "
                                                 "audio codec known here: the file is probably damaged")
    # damage in a codec libsndfile has is still damage, in libsndfile's words
    damaged = bytearray(_wav_with_tag(0x0001))
    damaged[damaged.index(b"fmt ") + 10:damaged.index(b"fmt ") + 12] = b"\0\0"  # 0 channels
    assert wav_codec_problem(bytes(damaged)) is None
    with pytest.raises(AudioError, match=r"^upload: not a readable audio file \(libsndfile: "):
        decode_bytes(bytes(damaged), sample_rate_hz=RATE_HZ)
    assert wav_codec_problem(b"fLaC" + bytes(100)) is None and wav_codec_problem(b"RIFF") is None


def test_a_wav_cut_short_is_truncated_not_silently_shorter(tmp_path):
    """libsndfile reads a WAV cut short (a download or copy that stopped) up to where it ends: training,
    predict and lite used half a file while the server refused it. Streaming sizes are whole files."""
    whole = tmp_path / "whole.wav"
    sf.write(whole, sine(TONE_HZ, 1.0, RATE_HZ, 0.5), RATE_HZ, subtype="PCM_16")
    data = whole.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:44 + 2 * RATE_HZ // 2])  # the header and half the samples
    with pytest.raises(AudioError) as caught:
        load_audio(cut, sample_rate_hz=RATE_HZ)
    assert str(caught.value) == (f"{cut}: truncated audio file (the header declares {2 * RATE_HZ} bytes of audio "
                                 f"data, the file holds {RATE_HZ})")
    result = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ).build([str(cut), str(whole)])
    assert [path for path, _ in result.skipped] == [str(cut)] and "truncated audio file" in result.skipped[0][1]
    streaming = bytearray(data)
    at = streaming.index(b"data") + 4
    streaming[at:at + 4] = (0xFFFFFFFF).to_bytes(4, "little")
    assert decode_bytes(bytes(streaming), sample_rate_hz=RATE_HZ).size == RATE_HZ
    # RF64 and Wave64 (WAV for files over 4 GB) cut short were read as shorter recordings
    for fmt in ("RF64", "W64"):
        big = tmp_path / f"whole.{fmt.lower()}"
        sf.write(big, sine(TONE_HZ, 1.0, RATE_HZ, 0.5), RATE_HZ, subtype="PCM_16", format=fmt)
        assert load_audio(big, sample_rate_hz=RATE_HZ).size == RATE_HZ
        half = tmp_path / f"cut.{fmt.lower()}"
        half.write_bytes(big.read_bytes()[:big.stat().st_size // 2])
        with pytest.raises(AudioError, match=rf"^{half}: truncated audio file \(the header's RIFF size is \d+ bytes, "
                                             rf"the file holds \d+\)"):
            load_audio(half, sample_rate_hz=RATE_HZ)
    # So was an AU file cut short (its header's data size, logged as "Data Size"); all ones is an unknown size
    au = tmp_path / "whole.au"
    sf.write(au, sine(TONE_HZ, 1.0, RATE_HZ, 0.5), RATE_HZ, subtype="PCM_16", format="AU")
    cut_au = tmp_path / "cut.au"
    cut_au.write_bytes(au.read_bytes()[:24 + RATE_HZ])  # the 24-byte header and half the samples
    with pytest.raises(AudioError) as caught:
        load_audio(cut_au, sample_rate_hz=RATE_HZ)
    assert str(caught.value) == (f"{cut_au}: truncated audio file (the header declares {2 * RATE_HZ} bytes of audio "
                                 f"data, the file holds {RATE_HZ})")
    unknown = bytearray(au.read_bytes())
    unknown[8:12] = (0xFFFFFFFF).to_bytes(4, "big")
    assert decode_bytes(bytes(unknown), sample_rate_hz=RATE_HZ).size == RATE_HZ


def test_a_header_claiming_more_frames_than_memory_holds_is_an_audio_error(tmp_path):
    """A FLAC whose STREAMINFO claims 2**36 - 1 frames of 8 channels (2 TiB of float32, a damaged header) made
    decoding allocate them all: a MemoryError traceback out of train, predict, show and lite, and a
    decode cache build that stopped, losing the other files."""
    whole = tmp_path / "whole.flac"
    sf.write(whole, np.zeros((RATE_HZ // 10, 8), np.float32), RATE_HZ, subtype="PCM_16")
    data = bytearray(whole.read_bytes())
    fields = int.from_bytes(data[18:26], "big")  # STREAMINFO: rate (20 bits), channels, bits, 36-bit frame count
    data[18:26] = (fields | (2 ** 36 - 1)).to_bytes(8, "big")
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(bytes(data))
    with pytest.raises(AudioError) as caught:
        load_audio(damaged, sample_rate_hz=RATE_HZ)
    assert str(caught.value) == (f"{damaged}: its header gives {2 ** 36 - 1} frames of 8 channels at {RATE_HZ} Hz, "
                                 f"2,048.0 GiB of samples, more than this machine can hold: the header is damaged, "
                                 f"or the recording is to be cut into shorter files")
    result = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ).build([str(damaged), str(whole)])
    assert list(result.cached) == [str(whole)] and result.skipped[0][0] == str(damaged)
    mono = tmp_path / "mono.flac"  # 256 GiB of float32: one channel is said so
    sf.write(mono, np.zeros(RATE_HZ // 10, np.float32), RATE_HZ, subtype="PCM_16")
    data = bytearray(mono.read_bytes())
    data[18:26] = (int.from_bytes(data[18:26], "big") | (2 ** 36 - 1)).to_bytes(8, "big")
    mono.write_bytes(bytes(data))
    with pytest.raises(AudioError, match=rf"frames of 1 channel at {RATE_HZ} Hz, 256.0 GiB of samples, more than"):
        load_audio(mono, sample_rate_hz=RATE_HZ)


def test_decode_bytes_errors_name_the_upload():
    with pytest.raises(AudioError, match=r"^clip\.wav: empty file"):
        decode_bytes(b"", sample_rate_hz=RATE_HZ, name="clip.wav")
    with pytest.raises(AudioError, match=r"^upload: not a readable audio file"):
        decode_bytes(b"RIFF....garbage" * 10, sample_rate_hz=RATE_HZ)
    with pytest.raises(AudioError, match=r"^clip\.wav: expected the file content as bytes, got str"):
        decode_bytes("clip.wav", sample_rate_hz=RATE_HZ, name="clip.wav")  # a path is not the content


def test_write_wav_is_canonical_16_bit_pcm(tmp_path):
    path = write_wav(tmp_path / "sub" / "out.wav", np.array([0.0, 0.5, -0.5, 2.0, -2.0]), 22050)
    header = path.read_bytes()[:44]
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert int.from_bytes(header[16:20], "little") == 16          # plain PCM fmt chunk, not extensible
    assert int.from_bytes(header[20:22], "little") == 1           # WAVE_FORMAT_PCM
    assert header[36:40] == b"data"
    with wave.open(str(path)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 22050)
        values = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(values, [0, 16384, -16384, 32767, -32768])  # clipped before quantising
    assert [p.name for p in path.parent.iterdir()] == ["out.wav"]  # no temporary file left behind


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(CACHE_ENV_VAR)
    assert default_cache_dir() == Path.home() / ".cache" / "sound_tf"
    monkeypatch.setenv(CACHE_ENV_VAR, "")  # SOUND_TF_CACHE= (set, empty) is unset, not the current folder
    assert default_cache_dir() == Path.home() / ".cache" / "sound_tf"


def _sources(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for i, (rate_hz, subtype, ext) in enumerate([(44100, "PCM_24", "wav"), (8000, "PCM_16", "flac"),
                                                 (RATE_HZ, "FLOAT", "wav")]):
        path = folder / f"src{i}.{ext}"
        sf.write(path, np.stack([sine(300.0 * (i + 1), 0.2, rate_hz)] * 2, axis=1), rate_hz, subtype=subtype)
        paths.append(path)
    return paths


def test_cache_decodes_once_and_writes_canonical_wavs(tmp_path):
    sources = _sources(tmp_path / "src")
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ)

    first = cache.build(sources)
    assert (first.decoded, first.reused, first.skipped) == (3, 0, [])
    for src in sources:
        cached = first.cached[str(src)]
        assert cached == cache.path_for(src)
        assert cached.parent.parent == tmp_path / "cache" / f"sr{RATE_HZ}"
        assert cached.parent.name == cached.stem[:2] and len(cached.stem) == 40
        with wave.open(str(cached)) as reader:
            assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, RATE_HZ)
            values = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2") / 32768.0
        np.testing.assert_allclose(values, load_audio(src, sample_rate_hz=RATE_HZ), atol=1.0 / 32768)

    second = cache.build(sources)
    assert (second.decoded, second.reused) == (0, 3)
    assert second.cached == first.cached
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_cache_takes_numpy_integer_workers_and_refuses_a_bool(tmp_path):
    """workers took only ``int``: ``np.int64(2)`` (a count from an array) was refused, while the sample rate beside
    it took numpy integers; it is kept as a Python int for the thread pool."""
    sources = _sources(tmp_path / "src")
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=np.int32(RATE_HZ), workers=np.int64(2))
    assert cache.workers == 2 and type(cache.workers) is int
    assert cache.build(sources).decoded == 3
    for workers in (True, np.True_, 2.0, "2", np.array(2), 0, np.int64(0)):
        with pytest.raises(ConfigError, match=rf"^DecodeCache workers must be an integer >= 1, got "
                                              rf"{re.escape(repr(workers))}$"):
            DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=workers)


def test_cache_redecodes_a_changed_source(tmp_path):
    sources = _sources(tmp_path / "src")
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=1)
    old = cache.build(sources).cached[str(sources[0])]

    sf.write(sources[0], sine(2000.0, 0.3, 44100), 44100)  # new content, size and mtime
    stat = sources[0].stat()
    os.utime(sources[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    result = cache.build(sources)

    assert (result.decoded, result.reused) == (1, 2)
    new = result.cached[str(sources[0])]
    assert new != old
    assert peak_hz(sf.read(new, dtype="float32")[0], RATE_HZ) == pytest.approx(2000.0, abs=RATE_HZ / 4800)
    assert cache.ensure(sources[0]) == new


def test_an_older_cache_format_is_not_reused(tmp_path, monkeypatch):
    """Version 2 cached an RF64 file cut short as the part that was there: that cache file is left alone and
    the file is decoded again, now refused as truncated."""
    import sound_tf.audio as audio_module

    whole = tmp_path / "whole.rf64"
    sf.write(whole, sine(TONE_HZ, 1.0, RATE_HZ, 0.5), RATE_HZ, subtype="PCM_16", format="RF64")
    cut = tmp_path / "cut.rf64"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=1)
    monkeypatch.setattr(audio_module, "CACHE_FORMAT_VERSION", audio_module.CACHE_FORMAT_VERSION - 1)
    old = cache.path_for(cut)  # what version 2 wrote: the half that was there
    write_wav(old, sine(TONE_HZ, 0.5, RATE_HZ, 0.5), RATE_HZ)
    assert cache.build([str(cut)]).reused == 1  # the older version reuses its own file ...
    monkeypatch.undo()
    assert cache.path_for(cut) != old
    result = cache.build([str(cut), str(whole)])  # ... this one does not
    assert (result.decoded, result.reused) == (1, 0)
    assert [path for path, _ in result.skipped] == [str(cut)] and "truncated audio file" in result.skipped[0][1]
    assert old.exists()


def test_cache_decodes_again_a_cached_file_cut_short_or_overwritten(tmp_path):
    """A cached WAV cut short (a full disk, an interrupted copy) or overwritten was trusted for good: every
    run failed in TensorFlow's DecodeWav ("Data too short") without naming the file."""
    sources = _sources(tmp_path / "src")
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=1)
    cached = cache.build(sources).cached
    whole = {name: Path(path).read_bytes() for name, path in cached.items()}
    first, second = (Path(cached[str(source)]) for source in sources[:2])
    os.truncate(first, 500)
    second.write_bytes(b"not a wav at all" * 40)
    result = cache.build(sources)
    assert (result.decoded, result.reused) == (2, 1)
    assert {name: Path(path).read_bytes() for name, path in result.cached.items()} == whole

    # A damaged header of the right length (here 24 bits per sample, or another rate) failed in DecodeWav
    # ("Can only read 16-bit WAV files") from feature_statistics, naming no file, in every run after.
    import tensorflow as tf

    third = Path(cached[str(sources[2])])
    for offset, value in ((34, 24), (24, RATE_HZ // 2), (22, 2)):  # bits per sample, rate, channels
        damaged = bytearray(whole[str(sources[2])])
        damaged[offset:offset + (4 if offset == 24 else 2)] = value.to_bytes(4 if offset == 24 else 2, "little")
        third.write_bytes(bytes(damaged))
        result = cache.build(sources)
        assert (result.decoded, result.reused) == (1, 2), offset
        assert third.read_bytes() == whole[str(sources[2])]
        audio, rate = tf.audio.decode_wav(tf.io.read_file(str(third)))
        assert int(rate) == RATE_HZ and audio.shape[1] == 1
    # A file cut short whose RIFF size was rewritten to match (a tool that "repairs" headers): the data
    # chunk still declares the samples that are gone.
    repaired = bytearray(whole[str(sources[2])][:-200])
    repaired[4:8] = (len(repaired) - 8).to_bytes(4, "little")
    third.write_bytes(bytes(repaired))
    result = cache.build(sources)
    assert (result.decoded, result.reused) == (1, 2) and third.read_bytes() == whole[str(sources[2])]


def test_a_full_disk_names_the_file_and_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from sound_tf import audio
    from sound_tf.errors import run_cli

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audio.sf, "write", full)
    with pytest.raises(OSError) as info:
        audio.write_wav(tmp_path / "out.wav", np.zeros(10, np.float32), RATE_HZ)
    assert info.value.filename == str(tmp_path / "out.wav") and not list(tmp_path.iterdir())

    def h5py_like():  # h5py and TensorFlow name no file: the system's words are all there is
        raise OSError("Unable to synchronously create file (file write failed: errno = 28, error message = "
                      "'No space left on device')")

    assert run_cli(h5py_like) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "free some space" in err and "No space left on device" in err
    with pytest.raises(OSError, match="something else"):
        run_cli(lambda: (_ for _ in ()).throw(OSError("something else")))
    def out_is_a_file():  # e.g. --out naming a file: the file and what the system said, one line
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(tmp_path / "notes.txt"))

    assert run_cli(out_is_a_file) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'notes.txt'}: Not a directory\n"
    import tensorflow as tf

    def saved_model_write():  # TensorFlow's own error type, not an OSError
        raise tf.errors.ResourceExhaustedError(None, None, "saved_model.pb; No space left on device")

    assert run_cli(saved_model_write) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: No space left on device")


def test_ctrl_c_is_one_line_and_exit_code_130_not_a_traceback():
    """crossval, tune and export printed a KeyboardInterrupt traceback from deep inside Keras on Ctrl-C."""
    import signal
    import subprocess

    # 'ready' is printed inside run_cli: printed before it, a SIGINT could land before run_cli was entered.
    # The child installs Python's own SIGINT handler, as a command started from a terminal has it: a test run
    # started in the background (`pytest &`, a CI job) hands its children SIGINT ignored, and Python then
    # never raises KeyboardInterrupt at all.
    child = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\nfrom sound_tf.errors import run_cli\n"
                              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
                              "sys.exit(run_cli(lambda: (print('ready', flush=True), time.sleep(60))))"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert err == ("interrupted (Ctrl-C); finished work is kept (train, crossval and tune resume from it "
                   "when the same command runs again)\n")


_STOPPABLE = """
import logging, signal, sys, time
from pathlib import Path
from sound_tf.errors import run_cli
out = Path(sys.argv[1])
if sys.argv[2] == "nohup":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
def work():
    logging.getLogger().addHandler(logging.FileHandler(out / "train.log"))  # the command's log file, opened by it
    logging.getLogger().addHandler(logging.StreamHandler(sys.stdout))  # its console: not given the stop line
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:  # clean-up a kill skipped (a lock, a half-built bundle): a second signal must not cut it short
        print("cleaning", flush=True)
        time.sleep(0.5)
        (out / "cleaned").write_text("yes")
sys.exit(run_cli(work))
"""


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_a_command_as_ctrl_c_does(tmp_path, name, code):
    """SIGTERM (kill PID, timeout, systemd, Slurm, docker stop) and SIGHUP (the terminal closing) ended a command
    at once: no line, no clean-up, no exit code a script could tell apart. Now its finally blocks run (a second
    signal meanwhile, as `timeout` or Slurm send to the whole group, does not cut them short), one line names the
    signal on stderr and at the end of the command's log, and the exit code is 128 + the signal's number."""
    import signal
    import subprocess

    sig = getattr(signal, name)
    child = subprocess.Popen([sys.executable, "-c", _STOPPABLE, str(tmp_path), "plain"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(sig)
    assert child.stdout.readline().strip() == "cleaning"
    child.send_signal(sig)
    out, err = child.communicate(timeout=30)
    line = (f"stopped by {name}; finished work is kept (train, crossval and tune resume from it when the same "
            f"command runs again)")
    assert (child.returncode, err, out) == (code, line + "\n", ""), err
    assert (tmp_path / "cleaned").read_text() == "yes"
    assert (tmp_path / "train.log").read_text() == line + "\n"


def test_a_sighup_ignored_by_nohup_stays_ignored(tmp_path):
    """`nohup python -m sound_tf.train ...` must go on training when its terminal closes."""
    import signal
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", _STOPPABLE, str(tmp_path), "nohup"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGHUP)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=1.0)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 143 and err.startswith("stopped by SIGTERM;"), err


def test_a_stop_line_goes_to_the_stopped_commands_log_files_alone(tmp_path, capsys):
    """A command's log file stays on the root logger after it returns (train's train.log, tune's tune.log): in one
    process (a notebook, a script, this test suite) a later command stopped by Ctrl-C or SIGTERM wrote its stop
    line at the end of that earlier, finished run's log too, as if that run had been interrupted."""
    import signal

    from sound_tf.errors import Stopped, run_cli

    root = logging.getLogger()
    earlier = logging.FileHandler(tmp_path / "earlier.log")  # a finished command's train.log, left open
    opened = []

    def work() -> None:
        opened.append(logging.FileHandler(tmp_path / "train.log"))  # this command's log
        root.addHandler(opened[0])
        raise Stopped(signal.SIGTERM)

    root.addHandler(earlier)
    try:
        assert run_cli(work) == 143
    finally:
        for handler in [earlier, *opened]:
            root.removeHandler(handler)
            handler.close()
    line = "stopped by SIGTERM; finished work is kept (train, crossval and tune resume from it when the same " \
           "command runs again)"
    assert capsys.readouterr().err == line + "\n"
    assert (tmp_path / "train.log").read_text() == line + "\n"
    assert (tmp_path / "earlier.log").read_text() == ""


def test_stop_handlers_are_run_clis_alone_and_put_back_after_it():
    """The handlers are set by run_cli, in the main thread, while its work runs: importing the package sets
    none, another thread's run_cli none (Python allows handlers only in the main thread), the server's none
    (uvicorn handles SIGTERM itself), and the handlers before it are back after it."""
    import signal
    import subprocess
    import threading

    from sound_tf.errors import STOP_SIGNALS, Stopped, run_cli

    numbers = [getattr(signal, name) for name in STOP_SIGNALS]
    before = [signal.getsignal(number) for number in numbers]
    seen = []

    def work() -> None:
        seen.append([signal.getsignal(number) for number in numbers])

    assert run_cli(work) == 0 and run_cli(work, stop_signals=()) == 0
    worker = threading.Thread(target=lambda: seen.append(run_cli(work)))
    worker.start()
    worker.join()
    assert [signal.getsignal(number) for number in numbers] == before
    assert all(callable(handler) and handler not in before for handler in seen[0]), seen
    assert seen[1] == before and seen[2] == before and seen[3] == 0
    with pytest.raises(Stopped) as info:  # the handler raises what Ctrl-C's clean-up handles
        seen[0][0](signal.SIGTERM, None)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signal.SIGTERM
    imported = subprocess.run([sys.executable, "-c", "import signal, sound_tf, sound_tf.train, sound_tf.crossval\n"
                               "print(signal.getsignal(signal.SIGTERM).name, signal.getsignal(signal.SIGHUP).name)"],
                              capture_output=True, text=True, timeout=120)
    assert imported.stdout.split() == ["SIG_DFL", "SIG_DFL"], imported.stderr[-2000:]


def test_a_cache_folder_that_is_a_file_is_an_error_naming_it(tmp_path):
    """--cache-dir naming a file failed at the first decode as "<file>/sr16000/b7: Not a directory"."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(ConfigError) as info:
        DecodeCache(notes, sample_rate_hz=RATE_HZ)
    assert str(info.value) == (f"{notes}: the decode cache (--cache-dir, data.cache_dir or $SOUND_TF_CACHE) is a "
                               f"file, not a folder; give a folder to create or reuse")
    assert notes.read_text() == "mine"


def test_a_closed_stdout_is_exit_code_141_not_a_traceback():
    """``predict ... --json | head`` printed a BrokenPipeError traceback when head exited first."""
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import sys\nfrom sound_tf.errors import run_cli\n"
                              "sys.exit(run_cli(lambda: print('x' * 100_000)))"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.close()  # the reader is gone before the command writes
    err = child.stderr.read()
    assert child.wait(timeout=30) == 141 and err == "", err


def test_cache_skips_bad_files_with_reasons_and_strict_raises(tmp_path, caplog):
    sources = _sources(tmp_path / "src")
    bad = _corrupt_files(tmp_path)
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ)
    listed = [sources[0], bad["random"][0], sources[1], bad["missing"][0], bad["empty"][0], bad["link_loop"][0]]

    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        result = cache.build(listed + [sources[0]])  # a duplicate is handled once

    assert set(result.cached) == {str(sources[0]), str(sources[1])}
    assert [p for p, _ in result.skipped] == [str(bad[name][0]) for name in ("random", "missing", "empty", "link_loop")]
    reasons = dict(result.skipped)
    assert reasons[str(bad["missing"][0])] == "file not found"
    assert reasons[str(bad["empty"][0])] == "empty file (0 bytes)"
    assert "not a readable audio file" in reasons[str(bad["random"][0])]
    assert str(bad["random"][0]) in caplog.text and "file not found" in caplog.text
    with pytest.raises(AudioError) as info:
        cache.build(listed, strict=True)
    assert info.value.path == str(bad["random"][0])


def test_cache_skips_a_name_that_is_not_utf8_and_reports_it_printably(tmp_path, caplog):
    """Run folders, logs and CSVs hold paths as UTF-8 text: such a name used to crash the training run
    when its split was written."""
    sources = _sources(tmp_path / "src")
    odd = os.fsdecode(os.fsencode(tmp_path / "src") + b"/caf\xe9.wav")  # Latin-1 bytes: escaped surrogates
    shutil.copy(sources[0], odd)
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ)
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        result = cache.build([sources[0], odd])
    assert list(result.cached) == [str(sources[0])]
    [(shown, reason)] = result.skipped
    assert shown.endswith("caf\\xe9.wav") and "not valid UTF-8" in reason
    shown.encode("utf-8")  # printable, writable to a CSV
    assert "caf\\xe9.wav" in caplog.text
    with pytest.raises(AudioError, match="not valid UTF-8"):
        cache.build([odd], strict=True)


def test_cache_and_split_files_have_the_mode_new_files_get(tmp_path):
    """mkstemp makes owner-only files; renamed into place, a shared cache was unreadable to others."""
    mask = os.umask(0o022)
    os.umask(mask)
    target = tmp_path / "cache"
    result = DecodeCache(target, sample_rate_hz=RATE_HZ).build(_sources(tmp_path / "src"))
    modes = {stat.S_IMODE(path.stat().st_mode) for path in result.cached.values()}
    assert modes == {0o666 & ~mask}


def test_cache_build_refuses_a_single_path_and_reads_bytes_paths(tmp_path):
    """build("a.flac") iterated the path's characters (each one a "file not found" skip, nothing cached), and a
    bytes path became the text "b'...'": a file that exists, skipped as not found."""
    src = str(_sources(tmp_path / "src")[0])
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ)
    for single in (src, Path(src), os.fsencode(src)):
        with pytest.raises(ConfigError, match="takes a list of paths, got the single path .*pass \\[path\\]"):
            cache.build(single)
    assert not (tmp_path / "cache").exists()
    result = cache.build([os.fsencode(src)])
    assert (result.decoded, result.skipped) == (1, [])
    assert result.cached == {src: cache.path_for(src)}
    with pytest.raises(ConfigError, match="a source must be a path .*got 7"):
        cache.build([src, 7])


def test_cache_build_skips_a_path_holding_nul(tmp_path):
    """A NUL in a source path raised "ValueError: embedded null byte" out of build(), which lost the
    decodes of every other source; it is skipped with its reason like any unreadable source."""
    good = tmp_path / "good.wav"
    sf.write(good, sine(TONE_HZ, 0.1, RATE_HZ), RATE_HZ)
    result = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ).build([str(good), "b\0.wav"])
    assert list(result.cached) == [str(good)]
    assert result.skipped == [("b\0.wav", "its path holds a NUL character (U+0000), which no file name can hold")]


def test_cache_progress_is_reported(tmp_path):
    sources = _sources(tmp_path / "src")
    calls = []
    DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ).build(sources, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_split_windows_refuses_a_hop_longer_than_a_window():
    """A hop over the window length left samples in no window and, for a 10-sample wave with 2-sample windows
    every 5, gave a third window of padding only (scored as silence), against the docstring's promise that the
    last sample is always covered."""
    wave = np.arange(1, 11, dtype=np.float32)
    with pytest.raises(ConfigError, match="hop_samples=5 exceeds clip_samples=2"):
        split_windows(wave, clip_samples=2, hop_samples=5)
    np.testing.assert_array_equal(split_windows(wave, clip_samples=5, hop_samples=5), wave.reshape(2, 5))


@pytest.mark.parametrize("n", [0, 1, 99, 100, 101, 140, 141, 260])
def test_split_windows_cover_the_wave_and_zero_pad_the_tail(n):
    clip, hop = 100, 40
    wave = np.arange(1, n + 1, dtype=np.float32)
    windows = split_windows(wave, clip_samples=clip, hop_samples=hop)
    assert windows.shape == (1 + int(np.ceil(max(n - clip, 0) / hop)), clip) and windows.dtype == np.float32
    for k, window in enumerate(windows):
        part = wave[k * hop: k * hop + clip]
        np.testing.assert_array_equal(window[: len(part)], part)
        assert not window[len(part):].any()
    assert windows.max(initial=0.0) == n  # the last sample is covered
    windows[0, 0] = -1.0
    assert n == 0 or wave[0] == 1.0  # a copy, not a view of the input


@pytest.mark.parametrize("n", [0, 1, 99, 100, 101, 140, 141, 260])
def test_count_windows_counts_what_split_windows_cuts_without_the_samples(n):
    """Export counts a split's windows from the cache files' headers and reads each clip only when it scores it."""
    assert count_windows(n, clip_samples=100, hop_samples=40) == len(split_windows(np.zeros(n, np.float32),
                                                                                   clip_samples=100, hop_samples=40))
    with pytest.raises(ConfigError, match=r"^count_windows: hop_samples=5 exceeds clip_samples=2"):
        count_windows(n, clip_samples=2, hop_samples=5)
    with pytest.raises(ConfigError, match=r"^count_windows: num_samples must be an integer >= 0, got -1$"):
        count_windows(-1, clip_samples=100, hop_samples=40)


def test_split_windows_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="hop_samples must be an integer >= 1, got 0"):
        split_windows(np.zeros(10), clip_samples=4, hop_samples=0)
    with pytest.raises(ConfigError, match=r"shape \[samples\], got shape \(2, 5\)"):
        split_windows(np.zeros((2, 5)), clip_samples=4, hop_samples=2)


def test_the_fsdd_recordings_are_looked_for_where_sound_tf_fsdd_says(tmp_path, monkeypatch):
    """The FSDD test looked only at ../shared/datasets/fsdd beside the checkout, so it skipped in a clone elsewhere
    while $SOUND_TF_FSDD (the bench scripts' variable) named the dataset. The fixture reads the variable now: its
    recordings/ folder, or the folder itself when the WAVs lie there; unset, the folder beside the checkout."""
    from conftest import FSDD_DIR, FSDD_ENV, fsdd_recordings

    dataset = tmp_path / "free-spoken-digit-dataset"
    (dataset / "recordings").mkdir(parents=True)
    monkeypatch.setenv(FSDD_ENV, str(dataset))
    assert fsdd_recordings() == dataset / "recordings"
    monkeypatch.setenv(FSDD_ENV, str(dataset / "recordings"))
    assert fsdd_recordings() == dataset / "recordings"
    monkeypatch.delenv(FSDD_ENV)
    assert fsdd_recordings() == FSDD_DIR == Path(__file__).resolve().parents[2] / "shared/datasets/fsdd/recordings"


def test_fsdd_recordings_decode_with_their_durations(fsdd_dir):
    files = sorted(fsdd_dir.glob("*.wav"))[:: 600][:5]
    assert len(files) == 5
    for path in files:
        info = sf.info(path)
        decoded = load_audio(path, sample_rate_hz=RATE_HZ)
        assert len(decoded) / RATE_HZ == pytest.approx(info.frames / info.samplerate, abs=1.0 / RATE_HZ)
        assert 0.0 < np.sqrt(np.mean(decoded ** 2)) <= 1.0


def test_audio_module_does_not_import_tensorflow():
    import subprocess

    code = ("import sys, sound_tf.audio, sound_tf.datasets; "
            "print([m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'librosa')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    assert out == "[]"


def test_cache_redecodes_a_source_rewritten_with_the_same_size(tmp_path):
    """An edited clip of the same length and format has the same size: only its time tells it changed."""
    source = tmp_path / "clip.wav"
    sf.write(source, sine(300.0, 0.25, RATE_HZ), RATE_HZ, subtype="PCM_16")
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=1)
    old = cache.ensure(source)
    size = source.stat().st_size
    sf.write(source, sine(2000.0, 0.25, RATE_HZ), RATE_HZ, subtype="PCM_16")
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert source.stat().st_size == size
    result = cache.build([source])
    assert (result.decoded, result.reused) == (1, 0)
    assert peak_hz(sf.read(result.cached[str(source)], dtype="float32")[0], RATE_HZ) == pytest.approx(2000.0, abs=20)
    assert result.cached[str(source)] != old


def test_cache_redecodes_a_source_replaced_with_its_old_time_kept(tmp_path):
    """`cp -p` / `rsync -t` put another file in place with the old modification time: its size tells."""
    source = tmp_path / "clip.wav"
    sf.write(source, sine(300.0, 0.25, RATE_HZ), RATE_HZ, subtype="PCM_16")
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=1)
    cache.ensure(source)
    stat = source.stat()
    sf.write(source, sine(2000.0, 0.5, RATE_HZ), RATE_HZ, subtype="PCM_16")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = cache.build([source])
    assert result.decoded == 1
    decoded = sf.read(result.cached[str(source)], dtype="float32")[0]
    assert len(decoded) == RATE_HZ // 2
    assert peak_hz(decoded, RATE_HZ) == pytest.approx(2000.0, abs=20)


def test_cache_keeps_apart_files_of_equal_size_and_time(tmp_path):
    """Clips of one length unpacked from an archive share size and time (ESC-50: 2000 clips of 5 s): only
    their paths tell them apart."""
    paths = []
    for i, freq in enumerate((300.0, 1200.0, 2500.0)):
        path = tmp_path / "clips" / f"{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, sine(freq, 0.25, RATE_HZ), RATE_HZ, subtype="PCM_16")
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        paths.append(path)
    assert len({p.stat().st_size for p in paths}) == 1
    result = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=1).build(paths)
    assert result.decoded == 3 and len(set(result.cached.values())) == 3
    peaks = [peak_hz(sf.read(result.cached[str(p)], dtype="float32")[0], RATE_HZ) for p in paths]
    np.testing.assert_allclose(peaks, [300.0, 1200.0, 2500.0], atol=20)


def test_cache_key_is_the_resolved_path(tmp_path, monkeypatch):
    """The same relative name in two folders (equal size and time) is two files, whichever folder it is
    named from."""
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=1)
    peaks = []
    for folder, freq in (("one", 400.0), ("two", 1600.0)):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "clip.wav"
        sf.write(path, sine(freq, 0.25, RATE_HZ), RATE_HZ, subtype="PCM_16")
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        monkeypatch.chdir(tmp_path / folder)
        peaks.append(peak_hz(sf.read(cache.ensure("clip.wav"), dtype="float32")[0], RATE_HZ))
    np.testing.assert_allclose(peaks, [400.0, 1600.0], atol=20)


def test_cache_build_decodes_a_source_listed_twice_once(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for path, freq in ((a, 300.0), (b, 900.0)):
        sf.write(path, sine(freq, 0.2, RATE_HZ), RATE_HZ, subtype="PCM_16")
    calls = []
    result = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ).build(
        [a, b, a, str(a)], progress=lambda done, total: calls.append((done, total)))
    assert (result.decoded, result.reused, len(result.cached)) == (2, 0, 2)
    assert calls == [(1, 2), (2, 2)]


def test_a_source_at_the_lowest_accepted_rate_decodes(tmp_path):
    """1000 Hz is a valid target rate (audio.sample_rate_hz >= 1000), so a 1000-Hz file is audio too."""
    from sound_tf.audio import load_audio

    path = tmp_path / "low.wav"
    sf.write(path, sine(100.0, 0.5, 1000), 1000, subtype="PCM_16")
    assert len(load_audio(path, sample_rate_hz=1000)) == 500
    assert len(load_audio(path, sample_rate_hz=RATE_HZ)) == RATE_HZ // 2


def test_a_source_too_short_to_resample_is_refused_naming_it(tmp_path):
    """2 frames at 48 kHz resample to no frame at all at 8 kHz: an error naming the file, not an empty wave."""
    path = tmp_path / "click.wav"
    sf.write(path, np.array([0.5, -0.5], np.float32), 48000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"click.wav.*too short to resample from 48000 Hz to 8000 Hz \(2 frames\)$"):
        load_audio(path, sample_rate_hz=8000)
    single = tmp_path / "tick.wav"
    sf.write(single, np.array([0.5], np.float32), 48000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"tick.wav.*too short to resample from 48000 Hz to 8000 Hz \(1 frame\)$"):
        load_audio(single, sample_rate_hz=8000)
    assert len(load_audio(path, sample_rate_hz=48000)) == 2  # at its own rate it is audio


def test_folders_given_on_the_command_line_expand_to_their_audio_files(tmp_path):
    """Hidden files and everything under a hidden folder (.git, .cache, a trash folder) are left out; other
    files are named in left_out; an empty folder and a missing path are entries with their problem."""
    from sound_tf.audio import expand_audio_inputs

    data = tmp_path / "data"
    for name in ("b.wav", "a/c.flac", ".hidden/d.wav", "a/.e.wav", "a/notes.txt"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    left_out: list[str] = []
    got = expand_audio_inputs([data, tmp_path / "empty", tmp_path / "nowhere.wav", data / ".hidden" / "d.wav"],
                              left_out=left_out)
    assert got == [(str(data / "a" / "c.flac"), None), (str(data / "b.wav"), None),
                   (str(tmp_path / "empty"), "folder holds no audio files"),
                   (str(tmp_path / "nowhere.wav"), "no such file or folder"),
                   (str(data / ".hidden" / "d.wav"), None)]  # named directly: always tried
    assert left_out == [str(data / "a" / "notes.txt")]


def test_the_left_out_note_asks_to_convert_only_the_recordings_among_the_files(tmp_path):
    """The labels CSV and notes beside the recordings (the walkthrough of session 46: `lite model.tflite birds/`)
    were told 'convert them to WAV or FLAC to classify them'; the advice is for the recordings among them."""
    from sound_tf.audio import expand_audio_inputs, left_out_note

    for name in ("owl.flac", "labels.csv", "notes.txt", "call.m4a"):
        (tmp_path / name).write_bytes(b"x")
    left_out: list[str] = []
    assert expand_audio_inputs([tmp_path], left_out=left_out) == [(str(tmp_path / "owl.flac"), None)]
    assert left_out_note(left_out) == (
        f"note: left out 3 files of the folders given, as their names do not end in an audio extension (theirs: "
        f".csv .m4a .txt; e.g. {tmp_path / 'call.m4a'}); convert any recordings among them to WAV or FLAC to classify "
        f"them")
    assert left_out_note([str(tmp_path / "call.m4a")]) == (  # "left out 1 file(s) ..., as their names" before
        f"note: left out 1 file of the folders given, as its name does not end in an audio extension "
        f"({tmp_path / 'call.m4a'}); convert it to WAV or FLAC to classify it, if it is a recording")
    assert left_out_note([]) == ""


def test_a_command_line_path_with_backslashes_names_the_forward_slash_path_that_exists(tmp_path, monkeypatch):
    r"""predict and lite said a bare 'no such file or folder' for data\dog\1.wav (a path copied from Windows),
    where a manifest's row named the forward-slash path that exists; the reason now comes from one function."""
    from sound_tf.audio import expand_audio_inputs

    (tmp_path / "data" / "dog").mkdir(parents=True)
    sf.write(tmp_path / "data" / "dog" / "1.wav", sine(TONE_HZ, 0.1, RATE_HZ), RATE_HZ)
    monkeypatch.chdir(tmp_path)
    hint = ("no such file or folder; its path holds backslashes (\\), which are not folder separators here, and "
            "{} exists: write the path with forward slashes (/)")
    absolute = str(tmp_path / "data\\dog\\1.wav")
    got = expand_audio_inputs(["data\\dog\\1.wav", "data\\dog", absolute, "data\\dog\\2.wav"])
    assert got == [("data\\dog\\1.wav", hint.format("data/dog/1.wav")), ("data\\dog", hint.format("data/dog")),
                   (absolute, hint.format(f"{tmp_path}/data/dog/1.wav")),
                   ("data\\dog\\2.wav", "no such file or folder")]  # neither form exists: the plain reason
    with pytest.raises(AudioError, match=re.escape(f"data\\dog\\1.wav: file not found; its path holds backslashes")):
        load_audio("data\\dog\\1.wav", sample_rate_hz=RATE_HZ)  # the decoder's wording is unchanged


def test_a_folder_given_on_the_command_line_keeps_its_broken_links_and_special_files(tmp_path):
    """predict and lite used to drop them without a word (training reports them as skipped), and a broken
    link named directly was "no such file or folder" while every other command called it a broken link."""
    from sound_tf.audio import expand_audio_inputs

    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", sine(TONE_HZ, 0.1, RATE_HZ), RATE_HZ)
    (data / "moved.wav").symlink_to(tmp_path / "elsewhere.wav")
    (data / "loop.wav").symlink_to(data / "loop.wav")
    os.mkfifo(data / "pipe.wav")  # never opened: the decoder checks for a regular file first
    got = dict(expand_audio_inputs([data]))
    assert sorted(got) == [str(data / name) for name in ("a.wav", "loop.wav", "moved.wav", "pipe.wav")]
    reasons = {}
    for path in got:
        try:
            load_audio(path, sample_rate_hz=RATE_HZ)
        except AudioError as exc:
            reasons[Path(path).name] = exc.reason
    assert sorted(reasons) == ["loop.wav", "moved.wav", "pipe.wav"]
    assert all(reasons[name].startswith("broken symbolic link") for name in ("loop.wav", "moved.wav"))
    assert reasons["pipe.wav"] == "is a folder or special file, not an audio file"
    assert expand_audio_inputs([data / "moved.wav"]) == [(str(data / "moved.wav"), reasons["moved.wav"])]


def test_a_file_or_folder_without_permission_is_an_entry_with_its_problem(tmp_path, monkeypatch):
    """A file in a folder without search permission made Path.exists raise PermissionError: lite crashed with a
    traceback and predict stopped before classifying any file, where training skips it as "cannot read file
    information"; a subfolder that cannot be listed was left out without a word (os.walk / rglob skip it)."""
    from sound_tf.audio import expand_audio_inputs

    data = tmp_path / "data"
    (data / "locked").mkdir(parents=True)
    sf.write(data / "a.wav", sine(TONE_HZ, 0.1, RATE_HZ), RATE_HZ)
    hidden = data / "locked" / "b.wav"  # as chmod 000 on its folder does for a user without root's capabilities
    sf.write(hidden, sine(TONE_HZ, 0.1, RATE_HZ), RATE_HZ)
    real_stat, real_scandir = Path.stat, os.scandir

    def no_search(self, *args, **kwargs):
        if self == hidden:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    def no_listing(folder):
        if Path(folder) == data / "locked":
            raise PermissionError(13, "Permission denied", str(folder))
        return real_scandir(folder)

    monkeypatch.setattr(Path, "stat", no_search)
    monkeypatch.setattr(os, "scandir", no_listing)
    problem = "cannot read file information (Permission denied)"
    with pytest.raises(AudioError) as caught:
        load_audio(hidden, sample_rate_hz=RATE_HZ)
    assert (caught.value.path, caught.value.reason) == (str(hidden), problem)
    unlisted = (str(data / "locked"), "folder cannot be listed (Permission denied)")
    assert expand_audio_inputs([hidden, data]) == [(str(hidden), problem), (str(data / "a.wav"), None), unlisted]


@pytest.mark.parametrize("dtype", [np.float64, np.int16])
def test_split_windows_keep_the_dtype_and_a_view_shares_one_padded_copy(dtype):
    wave = np.arange(1, 11).astype(dtype)  # 10 samples, clip 4, hop 3: starts 0, 3, 6 -> 3 windows
    windows = split_windows(wave, clip_samples=4, hop_samples=3)
    assert windows.dtype == dtype
    np.testing.assert_array_equal(windows, np.array([[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10]], dtype))
    view = split_windows(wave, clip_samples=4, hop_samples=3, copy=False)
    np.testing.assert_array_equal(view, windows)
    assert not view.flags.writeable and np.shares_memory(view[0], view[1])  # sample 4 stored once


# (file name, container, subtype) for each ending of AUDIO_EXTENSIONS, some in capitals (a recorder's TAKE1.WAV)
_NAMED_FORMATS = [("a.wav", "WAV", "PCM_16"), ("B.WAVE", "WAV", "PCM_24"), ("c.flac", "FLAC", "PCM_16"),
                  ("d.ogg", "OGG", "VORBIS"), ("e.oga", "OGG", "VORBIS"), ("f.opus", "OGG", "OPUS"),
                  ("g.mp3", "MP3", "MPEG_LAYER_III"), ("h.aiff", "AIFF", "PCM_16"), ("I.AIF", "AIFF", "PCM_16"),
                  ("j.aifc", "AIFF", "FLOAT"), ("k.au", "AU", "PCM_16"), ("l.snd", "AU", "PCM_16"),
                  ("m.caf", "CAF", "PCM_16"), ("n.w64", "W64", "PCM_16"), ("o.rf64", "RF64", "PCM_16"),
                  ("P.Wav", "WAV", "FLOAT")]


def test_recordings_are_found_by_their_endings_in_any_case_and_hidden_ones_are_left_out(tmp_path):
    """A folder of the same tone in every container and ending AUDIO_EXTENSIONS lists (TAKE1.WAV as take1.wav):
    the noise folder's listing and a command line's folder find each of them, and each decodes to the tone;
    macOS's ._ companions (AppleDouble files named like the recording) are hidden, so neither lists them."""
    from sound_tf.audio import AUDIO_EXTENSIONS, expand_audio_inputs, is_audio_file, list_audio_folder

    folder = tmp_path / "noise"
    (folder / "sub").mkdir(parents=True)
    tone = sine(TONE_HZ, 0.5, RATE_HZ)
    for name, container, subtype in _NAMED_FORMATS:
        sf.write(folder / "sub" / name, tone, RATE_HZ, format=container, subtype=subtype)
    (folder / "._a.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(80))  # AppleDouble header, no audio
    (folder / "sub" / ".d.ogg").write_bytes(b"x")
    (folder / "notes.txt").write_text("where and when\n")
    expected = sorted(folder / "sub" / name for name, _, _ in _NAMED_FORMATS)
    assert {Path(name).suffix.lower() for name, _, _ in _NAMED_FORMATS} == set(AUDIO_EXTENSIONS)
    assert list_audio_folder(folder) == (expected, None)
    left_out: list[str] = []
    assert expand_audio_inputs([folder], left_out=left_out) == [(str(path), None) for path in expected]
    assert left_out == [str(folder / "notes.txt")]
    assert not is_audio_file(folder / "._a.wav") and not is_audio_file("notes.txt")
    for path in expected:
        decoded = load_audio(path, sample_rate_hz=RATE_HZ)
        assert peak_hz(decoded[: RATE_HZ // 2], RATE_HZ) == pytest.approx(TONE_HZ, abs=RATE_HZ / (RATE_HZ // 2)), path


def test_a_noise_folder_is_listed_in_name_order_and_its_problem_counts_no_hidden_file(tmp_path):
    """list_audio_folder's files are sorted whatever order the file system lists them in (files made from the last
    name to the first), and a folder without recordings names its other files, not .DS_Store."""
    from sound_tf.audio import AUDIO_EXTENSIONS, list_audio_folder

    folder = tmp_path / "noise"
    names = [f"{folder_name}/{i:02d}.wav" for folder_name in ("b", "a") for i in range(12, 0, -1)]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_wav(folder / name, sine(TONE_HZ, 0.05, RATE_HZ), RATE_HZ)
    assert list_audio_folder(folder) == ([folder / name for name in sorted(names)], None)
    other = tmp_path / "papers"
    other.mkdir()
    for name in (".DS_Store", "readme.md", ".hidden.txt"):
        (other / name).write_text("x")
    assert list_audio_folder(other) == ([], f"holds no audio files (1 other file, e.g. readme.md; audio files end in "
                                            f"{' '.join(AUDIO_EXTENSIONS)})")


def test_float_files_at_full_scale_and_at_the_integer_pcm_limit(tmp_path):
    """The refusal of integer PCM stored as floats is of whole numbers beyond full scale or a peak over
    _MAX_FLOAT_PEAK: a float click track of -1, 0 and 1 is audio, as is a peak of exactly that limit (clipped);
    a float beyond it is refused, and so is a peak reached by a negative sample alone."""
    from sound_tf.audio import _MAX_FLOAT_PEAK

    clicks = np.zeros(RATE_HZ // 10, np.float32)
    clicks[::400], clicks[200::400] = 1.0, -1.0
    path = tmp_path / "clicks.wav"
    sf.write(path, clicks, RATE_HZ, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, sample_rate_hz=RATE_HZ), clicks)
    limit = np.float32(_MAX_FLOAT_PEAK)
    for peak, refused in ((limit, False), (np.nextafter(limit, np.float32(np.inf)), True)):
        for sign in (1, -1):
            samples = np.array([0.25, sign * peak, -0.5], np.float32)  # 0.25: not whole numbers
            path = tmp_path / f"peak_{sign}_{peak}.wav"
            sf.write(path, samples, RATE_HZ, subtype="FLOAT")
            if refused:
                with pytest.raises(AudioError, match=f"holds float samples up to {float(peak):g}, where full scale"):
                    load_audio(path, sample_rate_hz=RATE_HZ)
            else:
                np.testing.assert_array_equal(load_audio(path, sample_rate_hz=RATE_HZ), np.clip(samples, -1, 1))


@pytest.mark.parametrize("source_hz", [15999, 16001, 44100, 11025])
def test_a_file_at_a_rate_one_hertz_away_is_resampled_to_the_length_at_the_target_rate(tmp_path, source_hz):
    """Every rate that differs is resampled, 1 Hz away too: the decoded length is frames * target / source, rounded
    (16001 frames at 16001 Hz are 16000 samples of a second at 16 kHz)."""
    frames = source_hz + 7
    path = tmp_path / f"tone_{source_hz}.wav"
    sf.write(path, sine(TONE_HZ, frames / source_hz, source_hz), source_hz, subtype="FLOAT")
    assert len(load_audio(path, sample_rate_hz=RATE_HZ)) == round(frames * RATE_HZ / source_hz)


def test_a_tone_above_the_target_nyquist_frequency_leaves_no_alias(tmp_path):
    """Resampling 44.1 kHz to 16 kHz filters out what lies above 8 kHz: a 10-kHz tone does not fold back to 6 kHz
    (soxr HQ: about 140 dB down here; an interpolating resampler without the filter keeps it at 0 dB)."""
    path = tmp_path / "high.wav"
    source = sine(10000.0, 1.0, 44100)
    sf.write(path, source, 44100, subtype="FLOAT")
    decoded = load_audio(path, sample_rate_hz=RATE_HZ)
    middle = decoded[RATE_HZ // 10: -RATE_HZ // 10]  # the filter's edges aside
    assert 10 * np.log10(np.mean(middle.astype(np.float64) ** 2) / np.mean(source.astype(np.float64) ** 2)) < -100


def test_cache_redecodes_a_source_rewritten_within_the_same_second_with_the_same_size(tmp_path):
    """The time in the cache key is in nanoseconds: a clip rewritten 1 ms later (a script rendering it twice)
    is decoded again, not the earlier version reused because both fall in one second."""
    source = tmp_path / "clip.wav"
    sf.write(source, sine(300.0, 0.25, RATE_HZ), RATE_HZ, subtype="PCM_16")
    second_ns = 1_700_000_000_000_000_000
    os.utime(source, ns=(second_ns, second_ns + 1_000_000))
    cache = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ, workers=1)
    old = cache.ensure(source)
    sf.write(source, sine(2000.0, 0.25, RATE_HZ), RATE_HZ, subtype="PCM_16")
    os.utime(source, ns=(second_ns, second_ns + 2_000_000))
    result = cache.build([source])
    assert (result.decoded, result.reused) == (1, 0) and result.cached[str(source)] != old
    assert peak_hz(sf.read(result.cached[str(source)], dtype="float32")[0], RATE_HZ) == pytest.approx(2000.0, abs=20)


def test_the_decode_cache_says_nothing_of_a_silent_file_when_its_caller_names_them(tmp_path, caplog):
    """silent_use=None (a noise folder, whose silent files augment names all at once) logs no warning per file."""
    sf.write(tmp_path / "zeros.wav", np.zeros(RATE_HZ // 4, np.float32), RATE_HZ, subtype="PCM_16")
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        result = DecodeCache(tmp_path / "cache", sample_rate_hz=RATE_HZ).build([tmp_path / "zeros.wav"],
                                                                                silent_use=None)
    assert result.decoded == 1 and not caplog.records


def test_a_noise_folder_leaves_out_what_is_under_its_hidden_folders(tmp_path):
    """A noise folder at a USB stick's root holds the recordings deleted from it in .Trash-1000 (and a project's in
    .git): those were mixed in as noise, where a data folder and a command line's folder left them out. The same
    folder is now listed alike by list_audio_folder and expand_audio_inputs; a hidden folder holding every
    recording leaves none."""
    from sound_tf.audio import expand_audio_inputs, list_audio_folder

    folder = tmp_path / "noise"
    for name in ("rain.wav", "city/bus.flac", ".Trash-1000/files/old.wav", "city/.cache/bus.wav", ".git/x.wav"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        container = "FLAC" if name.endswith(".flac") else "WAV"
        sf.write(folder / name, sine(TONE_HZ, 0.05, RATE_HZ), RATE_HZ, format=container)
    files, problem = list_audio_folder(folder)
    assert (files, problem) == ([folder / "city" / "bus.flac", folder / "rain.wav"], None)
    assert [(str(path), None) for path in files] == expand_audio_inputs([folder])
    hidden_only = tmp_path / "hidden_only"
    (hidden_only / ".old").mkdir(parents=True)
    write_wav(hidden_only / ".old" / "a.wav", sine(TONE_HZ, 0.05, RATE_HZ), RATE_HZ)
    assert list_audio_folder(hidden_only) == ([], "holds no audio files")
    assert list_audio_folder(hidden_only / ".old") == ([hidden_only / ".old" / "a.wav"], None)  # named itself: read


def test_a_data_folder_a_noise_folder_and_a_command_lines_folder_are_walked_alike(tmp_path):
    """One walk (walk_files) lists all three: a linked folder is followed (a noise folder's and a command line's
    folder's were not, where a data folder's was), a link to a parent does not loop, each real folder is read
    once, and Windows' Thumbs.db is neither a recording nor a "left out" file."""
    from sound_tf.audio import expand_audio_inputs, list_audio_folder
    from sound_tf.datasets import _iter_audio_files

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_wav(elsewhere / "hum.wav", sine(TONE_HZ, 0.05, RATE_HZ), RATE_HZ)
    folder = tmp_path / "noise"
    (folder / "street").mkdir(parents=True)
    write_wav(folder / "street" / "bus.wav", sine(TONE_HZ, 0.05, RATE_HZ), RATE_HZ)
    (folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    (folder / "street" / "up").symlink_to(folder, target_is_directory=True)  # a link to a parent
    (folder / "street_too").symlink_to(folder / "street", target_is_directory=True)  # a folder already walked
    (folder / "Thumbs.db").write_bytes(b"x")
    (folder / "notes.txt").write_text("where\n")
    expected = sorted([folder / "linked" / "hum.wav", folder / "street" / "bus.wav"])
    assert len(set(os.path.realpath(p) for p in expected)) == 2
    assert list_audio_folder(folder) == (expected, None)
    left_out: list[str] = []
    assert expand_audio_inputs([folder], left_out=left_out) == [(str(p), None) for p in expected]
    assert left_out == [str(folder / "notes.txt")]
    ignored: list[Path] = []
    assert sorted(_iter_audio_files(folder, ignored=ignored)) == expected
    assert ignored == [folder / "notes.txt"]
    only_thumbs = tmp_path / "thumbs"
    only_thumbs.mkdir()
    (only_thumbs / "Thumbs.db").write_bytes(b"x")
    assert list_audio_folder(only_thumbs) == ([], "holds no audio files")
