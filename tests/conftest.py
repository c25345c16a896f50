"""Fixtures shared by the whole test suite. Keep each one small; add new ones below the others."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared evaluation data (`<repo root>/../shared/data`); never copied into the repository."""
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared evaluation data not found at {path} (the tests expect the project's shared data folder beside the checkout: ../shared/data)")
    return path


# Sleeping OpenMP waits: spinning threads make torch many times slower when the cores are shared
# (see pipelines/cli.py); set before any test module imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _quiet_test_process() -> None:
    # The test process imports pyannote.audio and onnxruntime itself; keep it off the network like the
    # product. Called here, before test modules are collected, hence before their imports.
    try:
        from diarize.privacy import quiet_dependencies
    except ImportError:
        return  # repository root not importable: the tests that need it fail with their own message
    quiet_dependencies()


_quiet_test_process()


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (tests/chromium_pipe.py) for the pages the project writes; skips where none is
    installed."""
    from chromium_pipe import Browser, chromium_binary

    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary (apt-get install chromium) to test the page in")
    handle = Browser(binary)
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def wheel_call() -> Path:
    """The 30 s two-speaker call inside the pyannote.audio wheel (`sample.wav`, 16 kHz, with `sample.rttm`
    beside it; MIT): real speech for the tests that need some but not the shared sets."""
    from pipelines.commands.diarize import demo_path

    return demo_path()
