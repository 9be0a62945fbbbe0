"""Decode any audio file to float32 mono at a target rate, write canonical WAVs, and cache decodes.

Every source file is decoded once, by libsndfile (through ``soundfile``: WAV in any PCM/float/u-law/
A-law/IMA-ADPCM subtype, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF, AU), downmixed to mono by averaging
the channels (a warning names a file whose channels cancel in that mean, e.g. two in opposite phase) and
resampled with soxr (quality ``HQ``) when its rate differs from the target. The
:class:`DecodeCache` stores the result as a canonical 16-bit PCM mono WAV, the only format
``tf.audio.decode_wav`` reads, so the per-epoch ``tf.data`` pipeline never decodes or resamples.

This module must never import TensorFlow: the on-device runner and the server reuse it.

Examples
--------
>>> import os, tempfile
>>> import numpy as np, soundfile as sf
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "tone.flac")
>>> sf.write(path, np.full(44100, 0.1, np.float32), 44100)  # 1 s at 44.1 kHz
>>> load_audio(path, sample_rate_hz=16000).shape
(16000,)
>>> cache = DecodeCache(os.path.join(folder, "cache"), sample_rate_hz=16000)  # default_cache_dir() by default
>>> result = cache.build([path])
>>> result.decoded, result.reused, result.skipped
(1, 0, [])
>>> cache.build([path]).reused  # decoded once: later runs read the cached WAV
1
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

import numpy as np
import soundfile as sf
import soxr

from .atomic import replaced_whole
from .errors import AudioError, ConfigError, counted, is_whole

__all__ = [
    "AUDIO_EXTENSIONS",
    "CACHE_ENV_VAR",
    "CONVERTIBLE_EXTENSIONS",
    "CacheResult",
    "DecodeCache",
    "READABLE_FORMATS",
    "SF_ERR_UNRECOGNISED_FORMAT",
    "SYSTEM_FILES",
    "convert_hint",
    "count_windows",
    "decode_bytes",
    "default_cache_dir",
    "expand_audio_inputs",
    "is_audio_file",
    "is_convertible",
    "is_hidden",
    "is_silent",
    "left_out_note",
    "level_problem",
    "levels_warning",
    "list_audio_folder",
    "load_audio",
    "printable_path",
    "resample_wave",
    "silent_note",
    "source_rate_hz",
    "split_windows",
    "truncation_problem",
    "walk_files",
    "wav_codec_problem",
    "write_wav",
    "written_wav_samples",
    "written_wav_seconds",
]

logger = logging.getLogger(__name__)

#: File name endings recognised as audio when scanning a folder (compared lower-case).
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".snd", ".oga", ".opus",
                    ".caf", ".w64", ".rf64")  # .snd: Sun/NeXT's other name for .au
#: The formats to name to a user whose file none of libsndfile's readers recognised (the server's 415 names them too).
READABLE_FORMATS = "WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF or AU"
#: Extensions of recordings libsndfile does not read that ffmpeg converts (phones' AAC in ``.m4a``, Windows Media,
#: AMR, video containers): what is said of them gives the ffmpeg line (:func:`convert_hint`).
CONVERTIBLE_EXTENSIONS = (".m4a", ".aac", ".mp4", ".m4b", ".3gp", ".3ga", ".amr", ".wma", ".webm", ".mka", ".ac3",
                          ".mov", ".mp2", ".ape", ".wv")
#: libsndfile's error code for content no format it reads matches ("Format not recognised").
SF_ERR_UNRECOGNISED_FORMAT = 1
#: Environment variable that overrides the default cache folder.
CACHE_ENV_VAR = "SOUND_TF_CACHE"
#: soxr quality preset used for every resampling.
RESAMPLE_QUALITY = "HQ"
#: Bumped whenever decoding changes in a way that makes old cache files wrong (part of the cache key).
#: 2: a WAV/AIFF cut short is refused as truncated; version 1 cached the part that was there.
#: 3: the same for RF64 and Wave64; version 2 cached the part of such a file that was there.
#: 4: the same for AU; version 3 cached the part of such a file that was there.
#: 5: a float file holding integer PCM (whole numbers beyond +-1, or a peak over :data:`_MAX_FLOAT_PEAK`) is
#: refused; version 4 cached it clipped to +-1, a square wave.
CACHE_FORMAT_VERSION = 5
#: What the warning about a silent data file says is done with it (:meth:`DecodeCache.build`'s ``silent_use``).
SILENT_AS_CLASS = "it is used as silence labelled as its class: remove it if it is a failed recording"

#: A recording whose peak is below this (dB relative to full scale), and not silent (:func:`is_silent`), is named as
#: very quiet when it is decoded into the cache (:func:`level_problem`): a microphone's gain left low, or a far source.
QUIET_PEAK_DBFS = -40.0
#: A decoded sample this close to full scale (-0.01 dBFS) is at full scale, for :func:`level_problem`.
FULL_SCALE_LEVEL = 0.999
#: This many samples in a row at full scale make a recording clipped (:func:`level_problem`): resampling smooths a
#: clipped plateau, and a clean tone that only peaks at full scale holds fewer (a 100 Hz sine at 16 kHz: 2).
CLIPPED_RUN_SAMPLES = 5
#: How many files a warning about quiet or clipped recordings names (it counts them all).
LEVEL_NAMED_FILES = 3

_MIN_SAMPLE_RATE_HZ = 1000
_MAX_SAMPLE_RATE_HZ = 192000
#: A float file's samples may exceed full scale (1.0) a little and are clipped; a peak over this (+48 dB) is no
#: recording's: it is integer PCM written as floats unscaled (x 32768), which clipping turns into a square wave.
_MAX_FLOAT_PEAK = 256.0
#: A file whose mono mix (the channel mean) has this much less energy than its channels have on average holds
#: channels that cancel (in opposite phase, e.g. one wired or recorded inverted): the mix is near silence, and
#: a warning names the file. Channels that do not cancel lose at most 10 * log10(channels) dB in the mix
#: (uncorrelated ones, or silent ones: 3 dB in stereo; 20 dB is 100 such channels).
_CANCELLED_MIX_DB = 20.0
#: Channels whose mean level is below this (dB relative to full scale, RMS) are silence, and their mix is not judged.
_SILENT_CHANNELS_DBFS = -80.0
#: Frames whose energy is one float32 dot product; the blocks' are added up as Python floats (a float32 sum over
#: a whole file stalls once it is 2**24 times a sample's square). 1.3 ms in float64 for 5 s of 44.1 kHz stereo,
#: 0.07 ms so, 1% of that file's decode; 20 M equal samples summed within 1e-6 of the exact energy.
_ENERGY_BLOCK_FRAMES = 1 << 14


#: Files a system writes into folders of media (Windows' thumbnails and folder settings): never recordings, and
#: not worth a "left out" line.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})


def is_hidden(name: str) -> bool:
    """Whether a file or folder name is hidden (``.DS_Store``, ``._clip.wav``, ``.Trash-1000``, ``.git``)."""
    return name.startswith(".")


def is_audio_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has one of :data:`AUDIO_EXTENSIONS` (case-insensitive) and is not hidden."""
    name = os.path.basename(os.fspath(path))  # not Path(path).name: a data folder's walk asks this of each file
    return not is_hidden(name) and name.lower().endswith(AUDIO_EXTENSIONS)


def walk_files(folder: str | os.PathLike, *, unlisted: list[OSError] | None = None) -> Iterator[Path]:
    """Every entry below ``folder`` at any depth that is not a folder (a broken link or a FIFO too, so the
    decoder reports it), hidden files and everything under a hidden folder left out, each folder's names in
    sorted order. The one walk of a data folder, a noise folder and a command line's folder.

    Linked folders are followed, each real folder once, so a link to a parent cannot loop. The errors of
    folders that cannot be listed are appended to ``unlisted`` when it is given (else those folders are passed
    over, as :func:`os.walk` does).
    """
    seen = {os.path.realpath(folder)}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True,
                                                onerror=unlisted.append if unlisted is not None else None):
        kept = []
        for name in sorted(d for d in dirnames if not is_hidden(d)):
            real = os.path.realpath(os.path.join(dirpath, name))
            if real not in seen:
                seen.add(real)
                kept.append(name)
        dirnames[:] = kept
        here = Path(dirpath)
        for name in sorted(filenames):
            if not is_hidden(name):
                yield here / name


def is_convertible(path: str | os.PathLike) -> bool:
    """Whether ``path`` ends in one of :data:`CONVERTIBLE_EXTENSIONS` (case-insensitive)."""
    return PurePath(path).suffix.lower() in CONVERTIBLE_EXTENSIONS


def convert_hint(path: str | os.PathLike, *, each: bool = False) -> str:
    """How to make a recording libsndfile does not read usable, quoted for a shell as it is:
    ``convert it to FLAC or WAV, e.g. ffmpeg -i 'doorbell from iphone.m4a' 'doorbell from iphone.flac'`` (``each``:
    "convert each"). One text for a data folder's warning, ``skipped.csv`` and the server's 415."""
    shown = PurePath(path)
    return (f"convert {'each' if each else 'it'} to FLAC or WAV, e.g. ffmpeg -i {shlex.quote(str(shown))} "
            f"{shlex.quote(str(shown.with_suffix('.flac')))}")


def expand_audio_inputs(inputs: Sequence[str | os.PathLike], *,
                        left_out: list[str] | None = None) -> list[tuple[str, str | None]]:
    """``(path, problem or None)`` per file the command line names: a folder becomes its audio files
    (recursively, sorted; hidden files and folders are left out, linked folders followed: :func:`walk_files`),
    and a folder without any, or a path
    that does not exist, is one entry with its problem.

    Files in a folder whose names do not end in one of :data:`AUDIO_EXTENSIONS` (``.m4a``, ``.txt``, ...)
    are left out; their paths are appended to ``left_out`` when it is given, so a command can say so.
    A file named directly is always tried, whatever its name. An entry of a folder that is not a regular
    file (a broken symbolic link, a FIFO) is listed like one, so the decoder reports it as training does.
    A path whose information cannot be read, or a folder (at any depth) that cannot be listed, is an entry
    with its problem (a missing search or read permission), as training reports them. A missing path is
    "no such file or folder", or, when it holds backslashes and its forward-slash form exists, says so as
    training's ``skipped.csv`` does (one reason, :func:`_missing`).
    """
    out: list[tuple[str, str | None]] = []
    for item in inputs:
        path = Path(item).expanduser()
        try:
            is_dir, exists = path.is_dir(), path.exists()
        except OSError as exc:  # e.g. a file in a folder without search permission
            out.append((str(path), _no_file_information(exc)))
            continue
        if is_dir:
            files, others, unlisted = [], [], []
            for found in walk_files(path, unlisted=unlisted):
                if is_audio_file(found):
                    files.append(found)
                elif found.name.lower() not in SYSTEM_FILES:
                    others.append(found)
            files.sort()
            others.sort()
            out += [(str(found), None) for found in files]
            out += [(str(exc.filename), f"folder cannot be listed ({exc.strerror or exc})") for exc in unlisted]
            if left_out is not None:
                left_out += [str(found) for found in others]
            if not files and not unlisted:
                out.append((str(path), "folder holds no audio files" + (
                    f" ({counted(len(others), 'other files')}, e.g. {others[0].name}; audio files end in "
                    f"{' '.join(AUDIO_EXTENSIONS)})" if others else "")))
        elif exists:
            out.append((str(path), None))
        else:
            out.append((str(path), _missing(path, not_found="no such file or folder")))
    return out


def list_audio_folder(folder: str | os.PathLike) -> tuple[list[Path], str | None]:
    """``(audio files, problem)`` of a folder of recordings with no classes (``augment.noise_dir``): the files
    under it at any depth whose names end in one of :data:`AUDIO_EXTENSIONS`, sorted (not only regular files: a
    broken link or a FIFO named like audio is listed, and the decoder reports it as skipped), and ``"no such
    folder"``, ``"a file, not a folder"`` or ``"holds no audio files (...)"`` when it is unusable, else ``None``.
    Hidden files and everything under a hidden folder (``.Trash-1000``, ``.git``) are left out, and linked folders
    are followed, as a data folder's and a command line's folder's are (:func:`walk_files`)."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        return [], "no such folder"
    if not folder.is_dir():
        return [], "a file, not a folder"
    found = sorted(walk_files(folder))  # a trash folder's deleted recordings were mixed in as noise before
    files = [p for p in found if is_audio_file(p)]
    if files:
        return files, None
    others = [p for p in found if p.name.lower() not in SYSTEM_FILES]
    return [], "holds no audio files" + (f" ({counted(len(others), 'other files')}, e.g. {others[0].name}; audio files "
                                         f"end in {' '.join(AUDIO_EXTENSIONS)})" if others else "")


def left_out_note(left_out: Sequence[str]) -> str:
    """One line on the files :func:`expand_audio_inputs` left out of folders (``""`` when none were)."""
    if not left_out:
        return ""
    endings = sorted({Path(name).suffix.lower() or "(none)" for name in left_out})
    if len(left_out) == 1:  # "left out 1 file(s) of the folders given, as their names ..." before
        return (f"note: left out 1 file of the folders given, as its name does not end in an audio extension "
                f"({left_out[0]}); convert it to WAV or FLAC to classify it, if it is a recording")
    return (f"note: left out {counted(len(left_out), 'files')} of the folders given, as their names do not end in an "
            f"audio extension (theirs: {' '.join(endings[:8])}; e.g. {left_out[0]}); convert any recordings among "
            f"them to WAV or FLAC to classify them")


#: WAVE format tags (the first field of a WAV file's ``fmt `` chunk) whose audio libsndfile 1.2 decodes:
#: PCM, MS ADPCM, IEEE float, A-law, u-law, IMA ADPCM, GSM 6.10, NMS ADPCM, G.721 and MPEG layer III. In a
#: WAVE_FORMAT_EXTENSIBLE file (tag 0xFFFE) the sub-format's tag counts, and fewer are read there.
_WAV_TAGS_DECODED = frozenset({0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0x0038, 0x0040, 0x0055})
_WAVEX_TAGS_DECODED = frozenset({0x0001, 0x0002, 0x0003, 0x0006, 0x0007})
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
#: Names of codecs met in WAV files that libsndfile does not decode (Microsoft's mmreg.h).
_WAV_TAG_NAMES = {0x0022: "DSP Group TrueSpeech", 0x0050: "MPEG-1 layer I/II",
                  0x0055: "MPEG layer III", 0x0092: "Dolby AC-3 over S/PDIF", 0x00FF: "AAC",
                  0x0160: "Windows Media Audio 1", 0x0161: "Windows Media Audio", 0x0162: "Windows Media Audio Pro",
                  0x0163: "Windows Media Audio Lossless", 0x1610: "HE-AAC", 0x2000: "AC-3", 0x2001: "DTS"}
#: How much of a file :func:`wav_codec_problem` looks at: the ``fmt `` chunk comes before the audio.
WAV_HEADER_BYTES = 65536


def wav_codec_problem(head: bytes) -> str | None:
    """Why a WAV file's audio cannot be decoded, read from its first bytes: a codec libsndfile lacks.

    libsndfile reports a plain WAV with a codec it does not know as a "malformed 'fmt ' chunk", which
    reads as a damaged file; this names the codec instead.

    Parameters
    ----------
    head : bytes
        The file's first bytes (:data:`WAV_HEADER_BYTES` is plenty).

    Returns
    -------
    str or None
        e.g. ``"a WAV file whose audio is in a codec libsndfile does not decode (WAVE format tag
        0x0161, Windows Media Audio)"``, or, for a tag no known codec has (``fmt `` followed by garbage),
        that the file is probably damaged; ``None`` when ``head`` is not a RIFF / RIFX / RF64 WAVE file
        with a ``fmt `` chunk, or its codec is one libsndfile decodes (so a failure is damage).
    """
    head = bytes(head[:WAV_HEADER_BYTES])
    if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RIFX", b"RF64", b"BW64"):
        return None
    order = "big" if head[:4] == b"RIFX" else "little"
    at = 12
    while at + 8 <= len(head):
        size = int.from_bytes(head[at + 4:at + 8], order)
        if head[at:at + 4] == b"fmt ":
            tag = int.from_bytes(head[at + 8:at + 10], order) if size >= 2 and at + 10 <= len(head) else None
            if tag is None:
                return None
            if tag == _WAVE_FORMAT_EXTENSIBLE:
                if size < 26 or at + 34 > len(head):
                    return None
                sub = int.from_bytes(head[at + 32:at + 34], order)  # the sub-format GUID's first two bytes
                if sub in _WAVEX_TAGS_DECODED:
                    return None
                what = f"WAVE_FORMAT_EXTENSIBLE sub-format 0x{sub:04X}"
                name = _WAV_TAG_NAMES.get(sub)
            elif tag in _WAV_TAGS_DECODED:
                return None
            else:
                what, name = f"WAVE format tag 0x{tag:04X}", _WAV_TAG_NAMES.get(tag)
            if name is None:  # no codec we know: as likely the bytes of a damaged header as a rare codec
                return (f"a WAV file whose 'fmt ' chunk names {what}, no audio codec known here: the file is "
                        f"probably damaged; if it plays elsewhere, its codec is one libsndfile does not decode: "
                        f"convert it to PCM WAV or FLAC, e.g. ffmpeg -i IN -c:a pcm_s16le OUT.wav")
            return (f"a WAV file whose audio is in a codec libsndfile does not decode ({what}, {name}); convert it "
                    f"to PCM WAV or FLAC, e.g. ffmpeg -i IN -c:a pcm_s16le OUT.wav")
        at += 8 + size + (size & 1)  # chunks are padded to an even length
    return None


# libsndfile logs "data : <declared> (should be <present>)" when a WAV/AIFF header promises more bytes
# than the file holds (AU: "Data Size : ..."); for RF64 ("Riff size", in its ds64 chunk) and Wave64 ("riff")
# the whole file's size tells it. Streaming writers leave a size at 0 or all ones on purpose: those are whole.
_DECLARED_SIZE = re.compile(r"^\s*(data|SSND|Data Size|Riff size|riff)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = frozenset({0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFFFFFFFFFF})


def truncation_problem(extra_info: str | None) -> str | None:
    """``"truncated audio file (...)"`` when libsndfile's header log (``SoundFile.extra_info``) shows a
    WAV/AIFF/AU whose header declares more audio than the file holds (a copy or download cut short), else
    ``None``. libsndfile itself reads such a file up to where it ends, without a word."""
    for chunk, declared, present in _DECLARED_SIZE.findall(extra_info or ""):
        declared, present = int(declared), int(present)
        if declared > present and declared not in _STREAMING_SIZES:
            if chunk in ("data", "SSND", "Data Size"):
                return (f"truncated audio file (the header declares {declared} bytes of audio data, the file holds "
                        f"{present})")
            return f"truncated audio file (the header's RIFF size is {declared} bytes, the file holds {present})"
    return None


def _head(source: str | BinaryIO) -> bytes:
    """The first :data:`WAV_HEADER_BYTES` of a path or seekable stream (``b""`` if unreadable)."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                return handle.read(WAV_HEADER_BYTES)
        where = source.tell()
        source.seek(0)
        try:
            return source.read(WAV_HEADER_BYTES)
        finally:
            source.seek(where)
    except (OSError, ValueError):
        return b""


def _check_rate(sample_rate_hz: object, key: str = "sample_rate_hz") -> int:
    if (not is_whole(sample_rate_hz)
            or not _MIN_SAMPLE_RATE_HZ <= int(sample_rate_hz) <= _MAX_SAMPLE_RATE_HZ):
        raise ConfigError(f"{key} must be an integer in [{_MIN_SAMPLE_RATE_HZ}, "
                          f"{_MAX_SAMPLE_RATE_HZ}], got {sample_rate_hz!r}")
    return int(sample_rate_hz)


def _decode(source: str | BinaryIO, name: str, sample_rate_hz: int) -> np.ndarray:
    """Read ``source`` with libsndfile, downmix to mono, resample; errors name ``name``."""
    try:
        with sf.SoundFile(source) as handle:
            truncated = truncation_problem(handle.extra_info)
            if truncated:
                raise AudioError(name, truncated)
            # [frames, channels]; the header's frame count, as soundfile.read asks (some codecs cannot seek)
            try:
                data, source_rate_hz = handle.read(handle.frames, dtype="float32", always_2d=True), handle.samplerate
            except MemoryError:  # e.g. a FLAC header damaged to claim 2**36 frames: a traceback out of every command
                gib = handle.frames * handle.channels * 4 / 2 ** 30
                raise AudioError(name, f"its header gives {handle.frames} frames of "
                                       f"{counted(handle.channels, 'channels')} at {handle.samplerate} Hz, {gib:,.1f} "
                                       f"GiB of samples, more than this machine can hold: the header is damaged, or "
                                       f"the recording is to be cut into shorter "
                                       f"files") from None
    except sf.LibsndfileError as exc:
        codec = wav_codec_problem(_head(source))
        if codec:
            raise AudioError(name, codec) from exc
        said = exc.error_string.rstrip(".")
        unrecognised = exc.code == SF_ERR_UNRECOGNISED_FORMAT
        if "does not exist" in said and isinstance(source, str) and os.path.isfile(source):
            said, unrecognised = "no format it reads matches the file's content", True  # an MP3 that is not one
        hint = f"; it reads {READABLE_FORMATS}: convert a recording to one of them" if unrecognised else ""
        if unrecognised and is_convertible(name):  # a phone's .m4a: the ffmpeg line, as a data folder's warning gives
            hint = f"; it reads {READABLE_FORMATS}: {convert_hint(name)}"
        raise AudioError(name, f"not a readable audio file (libsndfile: {said}){hint}") from exc
    except (RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(name, f"not a readable audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(name, f"contains no audio frames (0 frames, {counted(data.shape[1], 'channels')} "
                               f"at {source_rate_hz} Hz)")
    if not np.all(np.isfinite(data)):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise AudioError(name, f"contains {counted(bad, 'NaN or infinite sample values')}")
    peak, whole = _peak_and_whole(data)
    if whole or peak > _MAX_FLOAT_PEAK:
        raise AudioError(name, f"holds float samples {'that are whole numbers ' if whole else ''}up to {peak:g}, where "
                               f"full scale is 1.0: integer PCM stored as floats? clipped to [-1, 1] it would be a "
                               f"square wave; scale it to [-1, 1] first (divide 16-bit PCM by 32768) and write it "
                               f"again")
    if source_rate_hz < _MIN_SAMPLE_RATE_HZ:  # resampled from 1 Hz to 16 kHz, a 80-KB file would fill 2.5 GB
        raise AudioError(name, f"its header gives a sample rate of {source_rate_hz} Hz, below "
                               f"{_MIN_SAMPLE_RATE_HZ} Hz: the file is damaged or not audio")
    if data.shape[1] > 1:
        mono = data.mean(axis=1, dtype=np.float32)  # [frames]
        _warn_if_channels_cancel(data, mono, name)
    else:
        mono = data[:, 0]  # [frames]
    mono = _resampled(mono, source_rate_hz, sample_rate_hz, name)  # [frames']
    # Float files may exceed full scale and resampling can overshoot slightly: keep the promised range.
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


def _warn_if_channels_cancel(data: np.ndarray, mono: np.ndarray, name: str) -> None:
    """Log a warning naming ``name`` when the channels of ``data [frames, channels]`` cancel in their mean ``mono
    [frames]``: its energy more than :data:`_CANCELLED_MIX_DB` below the channels' mean energy, while they are not
    silent. The file is still decoded to that mix (a partly cancelled, quiet one is a recording like another)."""
    mix_energy = channel_energy = 0.0
    for start in range(0, data.shape[0], _ENERGY_BLOCK_FRAMES):  # views: no copy of the file
        block = data[start:start + _ENERGY_BLOCK_FRAMES]  # [block, channels]
        mixed = mono[start:start + _ENERGY_BLOCK_FRAMES]  # [block]
        channel_energy += float(np.vdot(block, block))
        mix_energy += float(np.vdot(mixed, mixed))
    channel_energy /= data.shape[1]  # a channel's, on average
    if channel_energy == 0.0:
        return
    channels_dbfs = 10.0 * np.log10(channel_energy / data.shape[0])
    if channels_dbfs < _SILENT_CHANNELS_DBFS:
        return
    cancelled_db = 10.0 * np.log10(channel_energy / mix_energy) if mix_energy > 0.0 else float("inf")
    if cancelled_db <= _CANCELLED_MIX_DB:
        return
    how = (f"silent while the channels are at {channels_dbfs:.1f} dBFS" if mix_energy == 0.0 else
           f"{cancelled_db:.1f} dB below the channels' mean level of {channels_dbfs:.1f} dBFS")
    logger.warning(f"{name}: its {data.shape[1]} channels cancel out when averaged to mono: the mix is {how}. Are "
                   f"they in opposite phase? The file is used as that near-silent mix; keep one channel (e.g. ffmpeg "
                   f"-i IN -af 'pan=mono|c0=c0' OUT.wav) or invert one",
                   extra={"fields": {"file": name, "channels": int(data.shape[1]),
                                     "cancelled_db": round(cancelled_db, 1) if mix_energy > 0.0 else None}})


def _resampled(mono: np.ndarray, source_rate_hz: int, sample_rate_hz: int, name: str) -> np.ndarray:
    """``mono [frames]`` at ``sample_rate_hz`` (soxr at :data:`RESAMPLE_QUALITY`; the same array when the rates
    match)."""
    if source_rate_hz == sample_rate_hz:
        return mono
    out = soxr.resample(mono, source_rate_hz, sample_rate_hz, quality=RESAMPLE_QUALITY)  # [frames']
    if out.shape[0] == 0:
        raise AudioError(name, f"too short to resample from {source_rate_hz} Hz to {sample_rate_hz} Hz "
                               f"({counted(mono.shape[0], 'frames')})")
    return out


def resample_wave(wave: np.ndarray, *, source_rate_hz: int, sample_rate_hz: int, name: str = "waveform") -> np.ndarray:
    """A mono float ``wave [samples]`` recorded at ``source_rate_hz``, resampled to ``sample_rate_hz`` as decoding
    does (soxr, :data:`RESAMPLE_QUALITY`); the same array when the rates match. For samples already in memory
    (a microphone buffer, another library's decoder) that a model at another rate should hear.

    Raises
    ------
    ConfigError
        A rate that is not an integer in [1000, 192000] Hz.
    AudioError
        Naming ``name``: what :func:`check_wave` refuses, or too few samples to resample.
    """
    source_rate_hz, sample_rate_hz = _check_rate(source_rate_hz, "source_rate_hz"), _check_rate(sample_rate_hz)
    wave = check_wave(wave, name)
    return _resampled(wave.astype(np.float32, copy=False), source_rate_hz, sample_rate_hz, name)


def load_audio(path: str | os.PathLike, *, sample_rate_hz: int) -> np.ndarray:
    """Decode an audio file to float32 mono samples in [-1, 1] at ``sample_rate_hz``.

    Parameters
    ----------
    path : str or path-like
        Any format libsndfile reads (WAV subtypes, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF, AU).
    sample_rate_hz : int
        Target rate; the file is resampled with soxr (quality ``HQ``) when its rate differs.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``[samples]``; channels are averaged.

    Raises
    ------
    AudioError
        The file is missing, empty, not audio (libsndfile's message is included), has no frames, or
        holds NaN/infinite samples or integer PCM stored as floats (whole numbers beyond +-1, or a peak
        over 256). ``error.path`` and ``error.reason`` say which and why.
    """
    rate = _check_rate(sample_rate_hz)
    path = Path(path)
    try:
        exists, is_file = path.exists(), path.is_file()
        size = path.stat().st_size if is_file else None
    except OSError as exc:  # e.g. a file in a folder without search permission: as the cache says it
        raise AudioError(path, _no_file_information(exc)) from None
    if not exists:
        raise AudioError(path, _missing(path))
    if not is_file:
        raise AudioError(path, "is a folder or special file, not an audio file")
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:  # libsndfile would only say "System error"
        handle = path.open("rb")
    except OSError as exc:
        raise AudioError(path, f"cannot be opened ({exc.strerror or exc})") from None
    with handle:
        if not _is_utf8(str(path)):  # soundfile passes a path on as UTF-8: hand it the open file instead
            return _decode(handle, printable_path(path), rate)
    return _decode(str(path), str(path), rate)


def _no_file_information(exc: OSError) -> str:
    """Why a path whose information ``stat`` cannot read (e.g. in a folder without search permission) is
    not read: one wording for the cache, :func:`load_audio` and :func:`expand_audio_inputs`."""
    return f"cannot read file information ({exc.strerror or exc})"


def _missing(path: Path, *, not_found: str = "file not found") -> str:
    """Why ``path``, which does not exist, cannot be read (a path written with Windows backslashes, when the
    same path with forward slashes exists, says so: it is not rewritten). ``not_found`` is the plain reason:
    :func:`expand_audio_inputs` says "no such file or folder", as a command line may name a folder."""
    if path.is_symlink():
        return "broken symbolic link (its target is missing or links back to itself)"
    forward = str(path).replace("\\", "/")
    if os.sep == "/" and forward != str(path) and os.path.exists(forward):
        return (f"{not_found}; its path holds backslashes (\\), which are not folder separators here, and "
                f"{forward} exists: write the path with forward slashes (/)")
    return not_found


def decode_bytes(data: bytes, *, sample_rate_hz: int, name: str = "upload") -> np.ndarray:
    """Decode an in-memory audio file (an HTTP upload) like :func:`load_audio`.

    Parameters
    ----------
    data : bytes
        The complete file content.
    sample_rate_hz : int
        Target rate.
    name : str
        Used as the file name in error messages.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``[samples]`` in [-1, 1].

    Raises
    ------
    AudioError
        Same cases as :func:`load_audio`, naming ``name``.
    """
    rate = _check_rate(sample_rate_hz)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AudioError(name, f"expected the file content as bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise AudioError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(bytes(data)), name, rate)


def _whole_wav(path: Path, sample_rate_hz: int) -> bool:
    """Whether ``path`` is a cache file as :func:`write_wav` writes it: 16-bit PCM, mono, at
    ``sample_rate_hz``, as long as its RIFF and data headers say. A cached file cut short, overwritten or
    damaged (a full disk, a copy that stopped) is decoded again instead of failing every run in
    ``tf.audio.decode_wav``, whose error names no file."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64)  # write_wav's header is WAV_PCM16_HEADER_BYTES
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return False
    if not (len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"
            and int.from_bytes(head[4:8], "little") + 8 == size):
        return False
    at, canonical_fmt = 12, False
    while at + 8 <= len(head):
        chunk, length = head[at:at + 4], int.from_bytes(head[at + 4:at + 8], "little")
        if chunk == b"fmt ":
            fields = head[at + 8:at + 24]
            canonical_fmt = (len(fields) == 16 and int.from_bytes(fields[0:2], "little") == 1  # PCM
                             and int.from_bytes(fields[2:4], "little") == 1  # mono
                             and int.from_bytes(fields[4:8], "little") == sample_rate_hz
                             and int.from_bytes(fields[14:16], "little") == 16)  # bits per sample
        elif chunk == b"data":
            return canonical_fmt and at + 8 + length == size
        at += 8 + length + (length & 1)
    return False


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate_hz: int, *, durable: bool = True) -> Path:
    """Write mono samples as a canonical 16-bit PCM WAV (plain RIFF header), atomically.

    Samples are clipped to [-1, 1] before quantising. The file is written to a temporary name in the
    same folder and moved into place with ``os.replace`` (:func:`sound_tf.atomic.replaced_whole`), so a
    killed process never leaves half a file under ``path``.

    Parameters
    ----------
    path : str or path-like
        Destination; parent folders are created.
    samples : numpy.ndarray
        Shape ``[samples]`` (float, any range; values outside [-1, 1] are clipped).
    sample_rate_hz : int
    durable : bool
        Flush the file to the disk (``fsync``) before the rename, so a power cut cannot leave an empty
        file under ``path`` (the decode cache skips it: it checks every cached file whole before use).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    rate = _check_rate(sample_rate_hz)
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise AudioError(path, f"write_wav expects mono samples of shape [samples], got shape {samples.shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(path, f"write_wav expects float samples in [-1, 1], got dtype {samples.dtype}")
    clipped = np.clip(np.nan_to_num(samples.astype(np.float64)), -1.0, 1.0)  # [samples]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replaced_whole(path, "wb", durable=durable) as handle:
            encoded = io.BytesIO()  # in memory first: a full disk fails one write, not libsndfile's callbacks
            sf.write(encoded, clipped, rate, subtype="PCM_16", format="WAV")
            handle.write(encoded.getbuffer())
    except OSError as exc:
        if exc.filename is None:  # e.g. a full disk, met on write or close
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    return path


#: Bytes before the samples in a file :func:`write_wav` writes (libsndfile's plain RIFF header for 16-bit PCM).
WAV_PCM16_HEADER_BYTES = 44


def source_rate_hz(path: str | os.PathLike) -> int | None:
    """The sample rate a source file's header gives (libsndfile reads the header only, no samples: about 0.05 ms a
    file, 0.14-0.23 s for FSDD's 3000 WAVs), or ``None`` when it cannot be read. The decode cache keeps only the
    resampled audio, so this is where a recording's own rate is found again once it is cached."""
    try:
        return int(sf.info(str(path)).samplerate)
    except (sf.LibsndfileError, OSError, RuntimeError, ValueError, TypeError):
        return None


def written_wav_samples(path: str | os.PathLike) -> int:
    """How many samples a file :func:`write_wav` wrote (a decode-cache file) holds, from its size alone: 16-bit
    mono samples after a 44-byte header, so no file is opened."""
    return max(os.path.getsize(path) - WAV_PCM16_HEADER_BYTES, 0) // 2


def written_wav_seconds(path: str | os.PathLike, sample_rate_hz: int) -> float:
    """How long a file :func:`write_wav` wrote at ``sample_rate_hz`` (a decode-cache file) lasts, from its size
    alone (:func:`written_wav_samples`)."""
    return written_wav_samples(path) / sample_rate_hz


def _source_text(src: object) -> str:
    """A source path as text: ``str(b"a.wav")`` was ``"b'a.wav'"``, a file not found."""
    try:
        return os.fsdecode(src)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"DecodeCache.build: a source must be a path (str, bytes or path-like), "
                          f"got {src!r}") from None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a name whose bytes are not UTF-8 reaches Python with escaped surrogates
        return False
    return True


def printable_path(path: str | os.PathLike) -> str:
    """``path`` as printable text: bytes of a name that is not valid UTF-8 shown as ``\\xe9`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def integer_pcm_hint(dtype: Any) -> str:
    """How to scale samples of a signed integer ``dtype`` (NumPy's or anything ``np.dtype`` takes) to [-1, 1],
    as ``"; scale ... (divide int16 by 32768)"`` for an error message; ``""`` for other dtypes."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.signedinteger):
        return ""
    return f"; scale integer PCM to [-1, 1] first (divide {dtype} by {2 ** (dtype.itemsize * 8 - 1)})"


def check_windows(windows: object, *, clip_samples: int, where: str = "") -> np.ndarray:
    """``windows`` as ``[n >= 1, clip_samples]`` float32 (a view when they are float32 already), the input of
    every model; ``where`` (e.g. ``"keras predict: "``) starts each error. Finite values are checked apart, by
    :func:`check_finite_windows`, so a view of overlapping windows can be checked a chunk at a time.

    Raises
    ------
    ConfigError
        Another shape, or samples that are not floats (integer PCM is not scaled to [-1, 1]).
    """
    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[1] != clip_samples or windows.shape[0] == 0:
        raise ConfigError(f"{where}expected windows of shape [n >= 1, clip_samples={clip_samples}], "
                          f"got shape {windows.shape}")
    if not np.issubdtype(windows.dtype, np.floating):
        raise ConfigError(f"{where}expected float samples in [-1, 1], got dtype {windows.dtype}")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: check_finite_windows names it
        return windows.astype(np.float32, copy=False)


def check_finite_windows(windows: np.ndarray, *, first: int = 0, where: str = "") -> None:
    """Raise ``ConfigError`` naming the first window of ``windows [n, samples]`` (numbered from ``first``) that
    holds NaN or inf: a float model answers NaN for it, an int8 one plausible probabilities."""
    finite = np.isfinite(windows)
    if not finite.all():
        bad = first + int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ConfigError(f"{where}expected finite float samples, got NaN or inf in window {bad}")


def _peak_and_whole(samples: np.ndarray) -> tuple[float, bool]:
    """The peak magnitude of finite float ``samples``, and whether they go beyond full scale as whole numbers
    only: integer PCM cast to floats unscaled (``int16`` samples through ``.astype(np.float32)``)."""
    peak = max(float(samples.max()), -float(samples.min()))  # no |samples| copy: an hour at 16 kHz would be 230 MB more
    return peak, peak > 1.0 and bool(np.all(samples == np.round(samples)))


#: Most channels of a ``[frames, channels]`` array :func:`check_wave` mixes down; wider is taken for channels first.
MAX_ARRAY_CHANNELS = 64


def is_silent(samples: np.ndarray) -> bool:
    """Whether every sample of ``samples`` (floats in [-1, 1]) is zero once written as 16-bit PCM, as the decode
    cache writes it: a recording of nothing (a muted microphone, a failed capture). ``False`` for no samples."""
    return bool(samples.size) and float(np.max(np.abs(samples))) < 0.5 / 32768


def _longest_run(mask: np.ndarray) -> int:
    """The most ``True`` values in a row in the 1-D boolean ``mask``."""
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))  # +1 where a run begins, -1 after it ends
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def level_problem(samples: np.ndarray) -> tuple[str, str] | None:
    """``("quiet", "-52.3 dBFS")`` for decoded ``samples`` (floats in [-1, 1]) whose peak is below
    :data:`QUIET_PEAK_DBFS` but which are not silent, ``("clipped", "24 samples in a row at full scale")`` for
    :data:`CLIPPED_RUN_SAMPLES` or more in a row at :data:`FULL_SCALE_LEVEL` or above, else ``None`` (silence
    too: :func:`silent_note` names it). 0.1 ms for 1 s at 16 kHz, against 1-2 ms to decode and write it."""
    if not samples.size:
        return None
    peak = max(float(samples.max()), -float(samples.min()))
    if peak < 10 ** (QUIET_PEAK_DBFS / 20):
        return None if is_silent(samples) else ("quiet", f"{20 * np.log10(peak):.1f} dBFS")
    if peak < FULL_SCALE_LEVEL:
        return None
    run = _longest_run(np.abs(samples) >= FULL_SCALE_LEVEL)
    return ("clipped", f"{run} samples in a row at full scale") if run >= CLIPPED_RUN_SAMPLES else None


def levels_warning(found: Sequence[tuple[str, str, str]]) -> list[str]:
    """One line per kind of :func:`level_problem` among ``(file, kind, detail)``, naming :data:`LEVEL_NAMED_FILES`
    of them and counting all (``[]`` for none)."""
    lines = []
    for kind, what, advice in (
            ("quiet", f"very quiet (peak below {QUIET_PEAK_DBFS:g} dBFS, not silent)",
             "they are used as they are: check the recording level if they are not meant to be faint"),
            ("clipped", f"clipped ({CLIPPED_RUN_SAMPLES} or more samples in a row at full scale)",
             "the distortion is learned as part of their class: record at a lower gain if you can")):
        files = [(name, detail) for name, k, detail in found if k == kind]
        if files:
            shown = ", ".join(f"{name} ({detail})" for name, detail in files[:LEVEL_NAMED_FILES])
            lines.append(f"{counted(len(files), 'recordings')} {'is' if len(files) == 1 else 'are'} {what}: {shown}"
                         f"{', ...' if len(files) > LEVEL_NAMED_FILES else ''}; {advice}")
    return lines


def silent_note(samples: np.ndarray, sample_rate_hz: int) -> str | None:
    """What a classifier's result says of a silent recording (:func:`is_silent`), or ``None``: its classes are the
    model's answer to silence, which ``sound_tf.predict``, ``sound_tf.lite`` and the server gave without a word, as
    confidently as for a sound (a demo model: 'noise_burst 0.623' for one second of zeros)."""
    if not is_silent(samples):
        return None
    return (f"silent: every sample is zero (in 16-bit PCM) over its {samples.size / sample_rate_hz:.2f} s; its "
            f"classes are the model's answer to silence, not to a sound")


def check_wave(wave: object, name: str = "waveform") -> np.ndarray:
    """``wave`` as an array, once it is what every model takes: mono float samples, at least one, finite.

    A ``[frames, channels]`` array (what ``soundfile.read`` gives for a stereo file) is mixed down to mono
    as a decoded file is: the mean of its channels, with the same warning when they cancel.

    Raises
    ------
    AudioError
        Naming ``name``: another shape (channels first, ``[channels, frames]``, says so), no samples, integer
        PCM (e.g. ``int16``, which a model would read as values up to 32767: divide by 32768), such PCM cast
        to floats unscaled (whole numbers beyond +-1) or NaN/inf samples.
    """
    wave = np.asarray(wave)
    if wave.ndim == 2 and wave.shape[0] >= 1 and 1 <= wave.shape[1] <= MAX_ARRAY_CHANNELS:
        mono = check_wave(wave.reshape(-1), name)  # dtype, finite and scale checks over every channel
        mixed = mono.reshape(wave.shape).mean(axis=1, dtype=mono.dtype)  # [frames]
        if wave.shape[1] > 1:
            _warn_if_channels_cancel(mono.reshape(wave.shape), mixed, name)
        return mixed
    if wave.ndim != 1 or wave.shape[0] == 0:
        transposed = (f": channels first? pass it as [frames, channels] (wave.T), as soundfile.read gives it"
                      if wave.ndim == 2 and wave.shape[0] <= MAX_ARRAY_CHANNELS < wave.shape[1] else "")
        raise AudioError(name, f"expected mono samples of shape [samples], or [samples, channels] to mix down, with "
                               f"samples >= 1, got shape {wave.shape}{transposed}")
    if not np.issubdtype(wave.dtype, np.floating):
        raise AudioError(name, f"expected float samples in [-1, 1], got dtype {wave.dtype}"
                               + integer_pcm_hint(wave.dtype))
    if not np.all(np.isfinite(wave)):
        raise AudioError(name, "expected finite float samples, got NaN or inf")
    peak, whole = _peak_and_whole(wave)
    if whole:
        raise AudioError(name, f"expected float samples in [-1, 1], got whole numbers up to {peak:g}: integer PCM "
                               f"stored as floats? scale it to [-1, 1] first (divide 16-bit PCM by 32768)")
    return wave


def split_windows(wave: np.ndarray, *, clip_samples: int, hop_samples: int, copy: bool = True) -> np.ndarray:
    """Cover a waveform with windows of ``clip_samples`` every ``hop_samples``; the tail is zero-padded.

    The NumPy twin of ``pipeline.sliding_windows`` (used by the on-device runner, the server, predict
    and export): ``1 + ceil(max(samples - clip_samples, 0) / hop_samples)`` windows, so a wave no
    longer than one clip gives one zero-padded window and the last sample is always covered.

    Parameters
    ----------
    wave : numpy.ndarray
        Shape ``[samples]``.
    clip_samples : int
        Window length (``config.audio.clip_samples``).
    hop_samples : int
        Distance between window starts (``config.audio.window_hop_samples``), at most ``clip_samples``.
    copy : bool
        ``False`` returns a read-only view of one padded copy of ``wave`` instead: windows that overlap
        share their samples, so an hour of audio at a short hop costs one wave's memory, not one per window.

    Returns
    -------
    numpy.ndarray
        Shape ``[windows, clip_samples]``, same dtype as ``wave`` (a new array unless ``copy`` is false).

    Examples
    --------
    >>> split_windows(np.arange(1, 6, dtype=np.float32), clip_samples=4, hop_samples=2)
    array([[1., 2., 3., 4.],
           [3., 4., 5., 0.]], dtype=float32)
    """
    _check_window_sizes("split_windows", clip_samples, hop_samples)
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ConfigError(f"split_windows expects a mono wave of shape [samples], got shape {wave.shape}")
    count = _window_count(wave.shape[0], clip_samples, hop_samples)
    padded = np.zeros(clip_samples + (count - 1) * hop_samples, dtype=wave.dtype)  # [total_samples]
    padded[: wave.shape[0]] = wave
    windows = np.lib.stride_tricks.sliding_window_view(padded, clip_samples)[::hop_samples]
    return np.array(windows) if copy else windows  # [windows, clip_samples]


def count_windows(num_samples: int, *, clip_samples: int, hop_samples: int) -> int:
    """How many windows :func:`split_windows` cuts ``num_samples`` samples into, without the samples.

    Export reads a clip's length from its WAV header (``soundfile.info(path).frames``) to count the
    windows of a whole split before it reads any of them.

    Examples
    --------
    >>> count_windows(5, clip_samples=4, hop_samples=2), count_windows(0, clip_samples=4, hop_samples=2)
    (2, 1)
    """
    _check_window_sizes("count_windows", clip_samples, hop_samples)
    if not is_whole(num_samples) or num_samples < 0:
        raise ConfigError(f"count_windows: num_samples must be an integer >= 0, got {num_samples!r}")
    return _window_count(int(num_samples), clip_samples, hop_samples)


def _window_count(num_samples: int, clip_samples: int, hop_samples: int) -> int:
    """``1 + ceil(max(num_samples - clip_samples, 0) / hop_samples)``, for checked sizes."""
    extra = max(num_samples - clip_samples, 0)
    return 1 + -(-extra // hop_samples)


def _check_window_sizes(where: str, clip_samples: object, hop_samples: object) -> None:
    for name, value in (("clip_samples", clip_samples), ("hop_samples", hop_samples)):
        if not is_whole(value) or value < 1:
            raise ConfigError(f"{where}: {name} must be an integer >= 1, got {value!r}")
    if hop_samples > clip_samples:  # windows would leave gaps, and the last one could hold only padding
        raise ConfigError(f"{where}: hop_samples={hop_samples} exceeds clip_samples={clip_samples}: the "
                          f"windows would skip the samples between them; give a hop of at most one clip")


def default_cache_dir() -> Path:
    """``$SOUND_TF_CACHE`` when set, else ``~/.cache/sound_tf``."""
    value = os.environ.get(CACHE_ENV_VAR)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "sound_tf"


def cache_dir_of(configured: str | os.PathLike | None) -> Path:
    """The decode cache a config names (``data.cache_dir``), else :func:`default_cache_dir`."""
    return Path(configured).expanduser() if configured else default_cache_dir()


@dataclass
class CacheResult:
    """What :meth:`DecodeCache.build` did.

    Attributes
    ----------
    cached : dict of str to pathlib.Path
        Source path (as given) -> its cached 16-bit WAV, for every readable source.
    skipped : list of (str, str)
        ``(source path, reason)`` for every unreadable source, in input order.
    decoded : int
        Sources decoded in this call.
    reused : int
        Sources whose cache file already existed.
    """

    cached: dict[str, Path] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    decoded: int = 0
    reused: int = 0


class DecodeCache:
    """Canonical 16-bit PCM mono WAVs at one sample rate, one per source file.

    A source's cache file is named by the SHA-1 of (absolute source path, size, ``mtime_ns``, target
    rate, cache format version), under ``cache_dir/sr{rate}/{hash[:2]}/{hash}.wav``. A changed source
    (new size or modification time) therefore gets a new name and is decoded again; files of old
    versions stay behind until the cache folder is deleted. Files are written atomically.

    Parameters
    ----------
    cache_dir : str or path-like
        Root folder of the cache (created on demand).
    sample_rate_hz : int
        Target rate of every cached file.
    workers : int
        Threads used by :meth:`build`. libsndfile and soxr release the GIL: on a 2-core machine 2
        threads decoded 5-s 44.1 kHz stereo files to 22.05 kHz 1.2-1.9x faster than 1 (depending on
        other load), and 1-s FSDD files about 1.15x faster.
    """

    def __init__(self, cache_dir: str | os.PathLike, *, sample_rate_hz: int, workers: int = 2):
        self.sample_rate_hz = _check_rate(sample_rate_hz)
        if not is_whole(workers) or workers < 1:
            raise ConfigError(f"DecodeCache workers must be an integer >= 1, got {workers!r}")
        self.cache_dir = Path(cache_dir).expanduser()
        if self.cache_dir.exists() and not self.cache_dir.is_dir():  # else "<it>/sr16000/b7: Not a directory"
            raise ConfigError(f"{self.cache_dir}: the decode cache (--cache-dir, data.cache_dir or $SOUND_TF_CACHE) "
                              f"is a file, not a folder; give a folder to create or reuse")
        self.workers = int(workers)
        self._rate_root: Path | None = None  # rate_dir resolved, for holds()

    @property
    def rate_dir(self) -> Path:
        """The folder holding this rate's files."""
        return self.cache_dir / f"sr{self.sample_rate_hz}"

    def path_for(self, src: str | os.PathLike) -> Path:
        """The cache file that holds ``src`` at this rate (it may not exist yet).

        Raises
        ------
        AudioError
            ``src`` does not exist (its size and time are part of the key).
        """
        return self._entry(*self._located(src))

    def _located(self, src: str | os.PathLike) -> tuple[Path, os.stat_result]:
        """``src`` resolved (links followed) and its information, or the :class:`AudioError` that names it."""
        source = Path(src).expanduser()
        try:
            absolute = source.resolve()
            return absolute, absolute.stat()
        except (FileNotFoundError, RuntimeError):  # RuntimeError: a symbolic link loop (Python 3.11)
            raise AudioError(src, _missing(source)) from None
        except OSError as exc:
            raise AudioError(src, _no_file_information(exc)) from None
        except ValueError:  # "embedded null byte", from os.path.realpath: build() stopped on it instead of skipping it
            raise AudioError(src, "its path holds a NUL character (U+0000), which no file name can hold") from None

    def _entry(self, absolute: Path, stat: os.stat_result) -> Path:
        key = f"{absolute}\0{stat.st_size}\0{stat.st_mtime_ns}\0{self.sample_rate_hz}\0{CACHE_FORMAT_VERSION}"
        digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()
        return self.rate_dir / digest[:2] / f"{digest}.wav"

    def holds(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` is a whole file of this rate's folder (:meth:`rate_dir`), as the cache writes them: such
        a file is its own cache file. The clips of a run's silence class are written there
        (:func:`sound_tf.datasets.silence_slices`), and a run resumed from its ``split.csv`` reads them in place,
        not decoded into a second copy."""
        try:
            absolute = Path(path).expanduser().resolve()
        except (ValueError, OSError, RuntimeError):
            return False
        return self._holds_resolved(absolute)

    def _holds_resolved(self, absolute: Path) -> bool:
        if self._rate_root is None:
            self._rate_root = self.rate_dir.resolve()
        if not absolute.is_relative_to(self._rate_root):
            return False
        return _whole_wav(absolute, self.sample_rate_hz)

    def _ensure(self, src: str | os.PathLike, silent_use: str | None = SILENT_AS_CLASS,
                levels: bool = False) -> tuple[Path, bool, tuple[str, str] | None]:
        """Return ``(cache file, decoded now?, level problem)``; ``silent_use`` is what the silent-file warning says of
        it (``None``: no warning); ``levels``: judge a file decoded now with :func:`level_problem`."""
        # One resolve per file, where holds() and path_for() each resolved it: checking 20,000 cached files nine
        # folders deep took 4.6-6.0 s, against 6.0-10.4 s (23-42% less; three rounds on a busy 2-core machine).
        absolute, stat = self._located(src)
        target, whole = self._present(src, absolute, stat)
        if whole:
            return target, False, None
        samples = load_audio(src, sample_rate_hz=self.sample_rate_hz)  # [samples]
        problem = level_problem(samples) if levels else None
        if silent_use is not None and is_silent(samples):  # all zeros in the 16-bit cache file
            logger.warning(f"{printable_path(src)}: silent: every sample is zero (in 16-bit PCM) over its "
                           f"{samples.size / self.sample_rate_hz:.2f} s; {silent_use}",
                           extra={"fields": {"file": printable_path(src)}})
        # No fsync (2 ms a 5-s clip): a file a power cut left short fails _whole_wav and is decoded again.
        write_wav(target, samples, self.sample_rate_hz, durable=False)
        return target, True, problem

    def _present(self, src: str | os.PathLike, absolute: Path, stat: os.stat_result) -> tuple[Path, bool]:
        """``src``'s cache file and whether it is there whole; a file the cache wrote itself (a silence clip) is
        its own, read as it is."""
        if self._holds_resolved(absolute):
            return Path(src).expanduser(), True
        target = self._entry(absolute, stat)
        return target, _whole_wav(target, self.sample_rate_hz)

    def lookup(self, src: str | os.PathLike) -> Path | None:
        """The cache file that holds ``src`` whole, or ``None`` when ``src`` would need decoding (not decoded at this
        rate, changed since, its cache file cut short) or is missing. Nothing is decoded: ``src`` and its cache file
        are looked at (a stat, a 64-byte header), not read."""
        try:
            absolute, stat = self._located(src)
        except AudioError:
            return None
        target, whole = self._present(src, absolute, stat)
        return target if whole else None

    def ensure(self, src: str | os.PathLike) -> Path:
        """Decode ``src`` into the cache unless it is already there; return the cache file.

        Raises
        ------
        AudioError
            ``src`` is missing or unreadable.
        """
        return self._ensure(src)[0]

    def build(self, sources: Iterable[str | os.PathLike], *, strict: bool = False,
              progress: Callable[[int, int], None] | None = None,
              silent_use: str | None = SILENT_AS_CLASS, skip_use: str | None = None,
              where: Callable[[str], str | None] | None = None, levels: bool = True) -> CacheResult:
        """Make sure every source is cached.

        Parameters
        ----------
        sources : iterable of str, bytes or path-like
            Duplicates are handled once. A single path (not in a list) is refused.
        strict : bool
            Raise the first :class:`AudioError` instead of skipping the file.
        progress : callable, optional
            Called as ``progress(done, total)`` after each source.
        silent_use : str or None
            What the warning about a silent file (every sample zero) says is done with it: by default
            that it is trained on as silence of its class (:data:`SILENT_AS_CLASS`). ``None``: no warning, as the
            caller names them (:func:`sound_tf.augment.load_noise_folder` leaves a noise folder's silent files out
            and names them all in one warning, every time it loads the folder).
        skip_use : str or None
            What the warning about an unreadable file adds after its reason (``None``: nothing, a data file's,
            which the data summary counts): a noise folder's says it is left out of the noise, where a bare
            ``skipping FILE: ...`` before the data lines, which then said ``skipped 0``, read as a data file.
        where : callable, optional
            ``where(source)``: where an unreadable source was listed (e.g. ``listed on line 12 of .../esc50.csv``,
            :func:`sound_tf.datasets.listing_locator`), or ``None``; added to its reason in brackets, in the warning
            and in ``skipped``. Called for skipped sources only.
        levels : bool
            Judge each file decoded now with :func:`level_problem`, and say once, after them all, which are very
            quiet and which clipped (:func:`levels_warning`; a noise folder's build passes ``False``).

        Returns
        -------
        CacheResult
            Unreadable sources are listed in ``skipped`` with their reason (and logged as warnings).

        Raises
        ------
        AudioError
            Only when ``strict``.
        """
        if isinstance(sources, (str, bytes, os.PathLike)):  # else each character was a "file not found" skip
            raise ConfigError(f"DecodeCache.build takes a list of paths, got the single path {sources!r}; "
                              f"pass [path], or use ensure(path)")
        unique = list(dict.fromkeys(_source_text(s) for s in sources))
        result = CacheResult()

        found: list[tuple[str, str, str]] = []  # (file, kind, detail) of level_problem, in input order

        def work(src: str) -> tuple[str, Path | None, bool, str | None, tuple[str, str] | None]:
            if not _is_utf8(src):  # run folders, logs and CSVs hold paths as UTF-8 text: name it printably
                error = AudioError(printable_path(src), "the file's name is not valid UTF-8; rename it (the name is "
                                                        "shown with its bytes escaped)")
                if strict:
                    raise error
                return error.path, None, False, error.reason, None
            try:
                target, decoded, problem = self._ensure(src, silent_use, levels)
            except AudioError as exc:
                if strict:
                    raise
                return src, None, False, exc.reason, None
            return src, target, decoded, None, problem

        pool = ThreadPoolExecutor(max_workers=self.workers) if self.workers > 1 and len(unique) > 1 else None
        outcomes = pool.map(work, unique) if pool is not None else map(work, unique)
        try:
            for done, (src, target, decoded, reason, problem) in enumerate(outcomes, start=1):
                if target is None:
                    if where is not None and (listed := where(src)) is not None:
                        reason = f"{reason} ({listed})"
                    result.skipped.append((src, reason))
                    logger.warning("skipping %s: %s%s", src, reason, f"; {skip_use}" if skip_use else "")
                else:
                    result.cached[src] = target
                    result.decoded += decoded
                    result.reused += not decoded
                    if problem is not None:
                        found.append((printable_path(src), *problem))
                if progress is not None:
                    progress(done, len(unique))
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        for line in levels_warning(found):  # once a build, after every file: not one line per file among thousands
            logger.warning(line)
        return result
