"""Response bodies of the HTTP API (they also document it in the OpenAPI page at ``/docs``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LabelProbability(BaseModel):
    label: str
    probability: float = Field(description="Probability of this label (for the whole recording, or in `windows` "
                                           "for that window).")


class WindowPrediction(BaseModel):
    index: int
    start_seconds: float
    end_seconds: float = Field(description="Where the real audio in this window ends (the last windows are padded).")
    label: str = Field(description="The window's most probable label.")
    predicted_class: int
    probability: float
    top_k: list[LabelProbability] = Field(description="The window's best classes, as many as the request's `top_k`.")


class Event(BaseModel):
    start_seconds: float = Field(description="Where its first window starts.")
    end_seconds: float = Field(description="Where its last window ends (the end of the real audio in it).")
    label: str = Field(description="The top label of each of its windows.")
    peak_probability: float = Field(description="The highest top probability among its windows.")
    first_window: int = Field(description="`index` in `windows` of its first window.")
    last_window: int = Field(description="`index` in `windows` of its last window.")


class Classification(BaseModel):
    filename: str = Field(description="The uploaded file's base name (only echoed, never used as a path).")
    label: str = Field(description="The most probable label.")
    predicted_class: int = Field(description="Index of `label` in GET /labels (the original article's field).")
    probability: float
    top_k: list[LabelProbability]
    duration_seconds: float = Field(description="Length of the uploaded audio.")
    sample_rate_hz: int = Field(description="Sample rate of the uploaded file (it is resampled to the model's).")
    channels: int = Field(description="Channels of the uploaded file (they are averaged).")
    num_windows: int = Field(description="Model windows the recording was cut into (scores are combined).")
    windows: list[WindowPrediction] | None = Field(
        None, description="Per-window timeline, only when the request asks `windows=true`.")
    events: list[Event] | None = Field(
        None, description="What was heard when, only when the request asks `windows=true`: runs of consecutive "
                          "windows of one top label, each at `min_probability` or more; the model's silence and "
                          "other classes (its run's `data.silence_label` and `data.other_label`) are never events. "
                          "The events of `python -m sound_tf.lite --json` and `sound_tf.predict --windows --json`.")
    processing_ms: float = Field(description="Server time spent decoding and classifying this file.")
    warning: str | None = Field(
        None, description="Only for a silent recording (every sample zero in 16-bit PCM): its labels are the "
                          "model's answer to silence, not to a sound.")


class ClassifyResponse(Classification):
    request_id: str


class FileError(BaseModel):
    filename: str
    error: str = Field(description="Machine-readable kind, e.g. unsupported_format.")
    detail: str
    status: int = Field(description="The HTTP status this file alone would have received.")


class BatchResponse(BaseModel):
    results: list[Classification | FileError] = Field(description="One entry per uploaded file, in order.")
    succeeded: int
    failed: int
    processing_ms: float
    request_id: str


class ErrorResponse(BaseModel):
    error: str = Field(description="Machine-readable kind, e.g. empty_file, upload_too_large.")
    detail: str = Field(description="What is wrong, naming the file or field.")
    request_id: str


class LabelsResponse(BaseModel):
    labels: list[str]
    num_classes: int


class HealthResponse(BaseModel):
    status: Literal["ok", "failed"]
    model: str = Field(description="loading, ready, failed or stopped.")


class ReadyResponse(BaseModel):
    status: Literal["ready", "loading", "failed", "stopped"]
    backend: str | None = None
    model_file: str | None = Field(default=None, description="The model file or folder served (model_int8.tflite).")
    variant: str | None = Field(default=None,
                                description="The TFLite variant served (float32, float16, dynamic, int8).")
    num_classes: int | None = None
    sample_rate_hz: int | None = None
    clip_seconds: float | None = None
    window_hop_seconds: float | None = None
    max_batch_size: int | None = None
    max_wait_ms: float | None = None
    detail: str | None = None
