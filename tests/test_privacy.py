"""quiet_dependencies() keeps a real segmentation run off the network; without it, onnxruntime phones home.
A real `voicemap batch diarize` (its own Ray runtime, workers, models) contacts nothing but loopback; Ray
started with only its documented switches (usage stats off, no dashboard) does.

The network checks run child processes under strace through benchmarks/trace_network.py. The children of
each module fixture start together, so the ~12 s each must wait for onnxruntime's uploader (its first
attempt comes about 9 s after the library loads) overlap instead of adding up.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from diarize.privacy import TELEMETRY_SETTINGS, TelemetryAlreadyActiveWarning, quiet_dependencies

# traced processes and Ray runtimes take seconds each and are marked slow (outside pytest -m "not slow");
# the checks of the switches themselves stay in the fast tier

REPO_ROOT = Path(__file__).resolve().parents[1]
TRACE_NETWORK = REPO_ROOT / "benchmarks" / "trace_network.py"
ORT_HOST = "mobile.events.data.microsoft.com"
# Seconds to stay alive after onnxruntime loads: its uploader first resolves ORT_HOST after ~9 s.
ORT_UPLOAD_WAIT = 12.0

# onnxruntime turns its telemetry off by itself on these CI markers; the children must not inherit
# them, nor any telemetry switch, so that only quiet_dependencies() can make the quiet run quiet.
_CI_MARKERS = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
               "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER",
               "ORT_RUNNING_UNIT_TESTS")

QUIET_RUN = textwrap.dedent(f"""
    import time
    from diarize.privacy import quiet_dependencies
    quiet_dependencies()
    import numpy as np, torch
    torch.set_num_threads(1)
    import pyannote.audio, onnxruntime
    loaded = time.monotonic()
    from pyannote.audio import Model
    from pyannote.audio.telemetry.metrics import is_metrics_enabled
    from diarize.models import SEGMENTATION_DEFAULT, resolve
    model = Model.from_pretrained(str(resolve(None, SEGMENTATION_DEFAULT))).eval()
    audio = torch.from_numpy(np.random.default_rng(0).standard_normal(160000).astype(np.float32) * 0.1)
    with torch.inference_mode():
        scores = model(audio[None, None])
    print("segmentation", tuple(scores.shape), "pyannote metrics", is_metrics_enabled())

    # onnxruntime must stay usable after the fix (ONNX exports are checked with it)
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])], "add",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx_model.ir_version = 8
    session = onnxruntime.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    total = session.run(None, {{"a": np.array([1, 2], np.float32), "b": np.array([3, 4], np.float32)}})[0]
    print("onnxruntime", total.tolist())
    time.sleep(max(0.0, {ORT_UPLOAD_WAIT} - (time.monotonic() - loaded)))
""")

UNPROTECTED_RUN = f"import onnxruntime, time; time.sleep({ORT_UPLOAD_WAIT})"


def _strace_unusable() -> str | None:
    if shutil.which("strace") is None:
        return "strace is not installed (apt-get install strace); the network trace needs it"
    probe = subprocess.run(["strace", "-f", "-e", "trace=connect", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"strace cannot trace here (ptrace not permitted?): {probe.stderr.strip()[:200]}"
    return None


def _child_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_SETTINGS and k not in _CI_MARKERS}
    # A private cache: a failing run must not queue events in the user's own onnxruntime store.
    env["XDG_CACHE_HOME"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _pyannote_config() -> Path:
    spec = importlib.util.find_spec("pyannote.audio")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / "telemetry" / "config.yaml"


@pytest.fixture(scope="module")
def traced_runs(tmp_path_factory):
    reason = _strace_unusable()
    if reason:
        pytest.skip(reason)
    if importlib.util.find_spec("pyannote.audio") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("pyannote.audio and onnxruntime must be installed for the network trace")
    config_before = _pyannote_config().read_bytes()
    runs = {}
    for name, code in (("quiet", QUIET_RUN), ("unprotected", UNPROTECTED_RUN)):
        cache = tmp_path_factory.mktemp(f"cache-{name}")
        runs[name] = (cache, subprocess.Popen(
            [sys.executable, str(TRACE_NETWORK), "--", sys.executable, "-c", code],
            cwd=REPO_ROOT, env=_child_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (cache, process) in runs.items():
        stdout, stderr = process.communicate(timeout=240)
        results[name] = (process.returncode, stdout, stderr, cache)
    return results, config_before


@pytest.mark.slow
def test_quiet_segmentation_run_never_leaves_the_machine(traced_runs):
    results, config_before = traced_runs
    status, stdout, stderr, cache = results["quiet"]
    assert "segmentation (1, 589, 7) pyannote metrics False" in stdout, stderr[-2000:]
    assert "onnxruntime [4.0, 6.0]" in stdout, stderr[-2000:]
    assert status == 0, f"trace_network exited {status}:\n{stdout}\n{stderr[-2000:]}"
    assert "nothing left this machine" in stdout
    assert not (cache / "Microsoft").exists(), "onnxruntime created its telemetry store"
    # set_telemetry_metrics must never have saved a default into the installed package
    assert _pyannote_config().read_bytes() == config_before


@pytest.mark.slow
def test_without_quiet_dependencies_onnxruntime_resolves_its_collector(traced_runs):
    # The control: proves the trace would catch the leak that the quiet run avoids.
    results, _ = traced_runs
    status, stdout, stderr, cache = results["unprotected"]
    assert status == 1, f"expected the trace to report onnxruntime's telemetry:\n{stdout}\n{stderr[-2000:]}"
    assert f"dns-query        {ORT_HOST}" in stdout, stdout
    assert (cache / "Microsoft" / "DeveloperTools" / ".onnxruntime").is_dir()


def test_quiet_dependencies_forces_every_switch_and_is_idempotent(monkeypatch):
    for key in TELEMETRY_SETTINGS:
        monkeypatch.setenv(key, "1" if key == "PYANNOTE_METRICS_ENABLED" else "0")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", False)
    with warnings.catch_warnings():
        # other tests in this process may have imported onnxruntime already; that case is tested below
        warnings.simplefilter("ignore", TelemetryAlreadyActiveWarning)
        quiet_dependencies()
        quiet_dependencies()
    assert {key: os.environ[key] for key in TELEMETRY_SETTINGS} == {
        "PYANNOTE_METRICS_ENABLED": "false",
        "ORT_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "DO_NOT_TRACK": "1",
    }
    # huggingface_hub read its switch at import; the already-imported module must be corrected
    assert huggingface_hub.constants.HF_HUB_DISABLE_TELEMETRY is True


def test_warns_once_when_onnxruntime_was_imported_first(tmp_path):
    code = textwrap.dedent("""
        import warnings
        import onnxruntime
        from diarize.privacy import quiet_dependencies
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_dependencies()
            quiet_dependencies()
        print([type(w.message).__name__ for w in caught])
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=_child_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"['{TelemetryAlreadyActiveWarning.__name__}']"


# Ray with its documented privacy switches only: usage stats off (the env var below), no dashboard
RAY_DEFAULTS_RUN = "import ray; ray.init(num_cpus=1, include_dashboard=False); ray.shutdown()"


def _ray_child_env(cache: Path, home: Path) -> dict[str, str]:
    import huggingface_hub.constants

    env = {k: v for k, v in _child_env(cache).items() if not k.startswith("RAY_")}
    # a home of its own shows whether Ray writes a token into ~/.ray; the model cache stays where it was
    env.update(HOME=str(home), HF_HOME=str(huggingface_hub.constants.HF_HOME))
    return env


@pytest.fixture(scope="module")
def traced_ray_runs(tmp_path_factory):
    reason = _strace_unusable()
    if reason:
        pytest.skip(reason)
    from pipelines.commands.diarize import demo_path

    try:
        sample = demo_path()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    scratch = tmp_path_factory.mktemp("ray-trace")
    (scratch / "in").mkdir()
    shutil.copy(sample, scratch / "in" / "sample.wav")
    commands = {
        "batch": [sys.executable, "-m", "pipelines.cli", "batch", "diarize", str(scratch / "in"),
                  "-o", str(scratch / "out"), "--workers", "1"],
        "ray-defaults": [sys.executable, "-c", RAY_DEFAULTS_RUN],
    }
    runs = {}
    for name, command in commands.items():
        cache, home = scratch / f"cache-{name}", scratch / f"home-{name}"
        cache.mkdir()
        home.mkdir()
        env = _ray_child_env(cache, home)
        if name == "ray-defaults":
            env["RAY_USAGE_STATS_ENABLED"] = "0"
        runs[name] = (home, subprocess.Popen(
            [sys.executable, str(TRACE_NETWORK), "--loopback-only", "--", *command],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (home, process) in runs.items():
        stdout, stderr = process.communicate(timeout=400)
        results[name] = (process.returncode, stdout, stderr, home)
    return results, scratch


@pytest.mark.slow
def test_batch_diarize_contacts_nothing_but_loopback(traced_ray_runs):
    results, scratch = traced_ray_runs
    status, stdout, stderr, home = results["batch"]
    assert status == 0, f"trace_network exited {status}:\n{stdout}\n{stderr[-3000:]}"
    assert "nothing left this machine" in stdout
    lines = (scratch / "out" / "sample.rttm").read_text().splitlines()
    assert len(lines) > 5 and all(line.startswith("SPEAKER sample 1 ") for line in lines)
    # Ray's token banner and tracebacks stay off stderr; the local runtime's token is never written to ~/.ray
    assert "Token authentication" not in stderr and "Traceback" not in stderr, stderr[-3000:]
    assert not (home / ".ray").exists()


@pytest.mark.slow
def test_ray_with_only_its_documented_switches_reaches_out(traced_ray_runs):
    # The control: the node-address look-up and the cloud-metadata probes that batch avoids are real, and
    # the trace sees them, even with usage stats off and the dashboard off.
    results, _ = traced_ray_runs
    status, stdout, stderr, _ = results["ray-defaults"]
    assert status == 1, f"expected the trace to report Ray's probes:\n{stdout}\n{stderr[-2000:]}"
    assert "8.8.8.8:53 (DNS)" in stdout, stdout
    assert "169.254.169.254:80" in stdout, stdout
