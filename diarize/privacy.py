"""Keep our dependencies from phoning home: call `quiet_dependencies()` before importing them.

Recordings are often private, and even a usage ping reveals that, where and when they are processed.
Several dependencies send telemetry by default:

- pyannote.audio 4 exports OpenTelemetry spans to otel.pyannote.ai (`metrics_enabled: true` in its
  bundled config) unless PYANNOTE_METRICS_ENABLED says otherwise;
- onnxruntime (1.32 on Linux; pyannote.audio imports it in pipelines/speaker_verification.py) starts a
  native 1DS uploader when its library loads: it persists a device id and an event queue under
  $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/ and, about 9 s later, resolves and posts to
  mobile.events.data.microsoft.com. Only ORT_DISABLE_TELEMETRY, read once while the native library
  loads, stops it; `onnxruntime.disable_telemetry_events()` afterwards does not;
- huggingface_hub (read once at import), Ray usage stats (read at `ray.init`) and Gradio analytics
  (pulled in by qwen-tts; read at launch).

Nothing here runs at import time of our packages: the code that is about to import one of these
libraries calls `quiet_dependencies()` first. Values are forced, not defaulted, because privacy is
the product's default; the settings are environment variables so that Ray workers and ffmpeg-style
child processes inherit them.
"""

from __future__ import annotations

import os
import sys
import warnings

TELEMETRY_SETTINGS: dict[str, str] = {
    "PYANNOTE_METRICS_ENABLED": "false",
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "DO_NOT_TRACK": "1",
}

_TRUE = {"1", "true", "yes", "on"}


class TelemetryAlreadyActiveWarning(RuntimeWarning):
    """A library was imported before `quiet_dependencies()` and keeps telemetry on for this process."""


def quiet_dependencies() -> None:
    """Turn off every dependency's telemetry for this process and its children. Idempotent and cheap.

    Call it before the first import of pyannote.audio, onnxruntime, huggingface_hub, ray or qwen-tts.
    When onnxruntime was already imported with its telemetry on, nothing in-process can stop its
    uploader, so this warns (TelemetryAlreadyActiveWarning) instead of pretending.
    """
    ort_was_loud = "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY", "").lower() not in _TRUE
    os.environ.update(TELEMETRY_SETTINGS)

    # Libraries already imported captured their settings at import; correct them in place.
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_DISABLE_TELEMETRY = True
    pyannote_metrics = sys.modules.get("pyannote.audio.telemetry.metrics")
    if pyannote_metrics is not None:
        # Never save_choice_as_default: that rewrites a file inside the installed package.
        pyannote_metrics.set_telemetry_metrics(False, save_choice_as_default=False)

    if ort_was_loud:
        ort = sys.modules["onnxruntime"]
        disable = getattr(ort, "disable_telemetry_events", None)
        if disable is not None:
            disable()  # stops new events at least; queued ones still upload
        warnings.warn(
            "onnxruntime was imported before diarize.privacy.quiet_dependencies(); its telemetry uploader "
            "(mobile.events.data.microsoft.com) keeps running in this process. Call quiet_dependencies() "
            "earlier or set ORT_DISABLE_TELEMETRY=1 in the environment.",
            TelemetryAlreadyActiveWarning,
            stacklevel=2,
        )
