"""Ray for batch jobs: a local runtime that contacts nothing off this machine, or the user's cluster, with
its token checked before Ray's own connection loop starts.

What a default `ray.init()` (Ray 2.60) sends off the machine, found by tracing `voicemap batch diarize`:
- the driver and the runtime-env agent look up the node address by connecting a UDP socket to 8.8.8.8:53
  (`node_ip_address_from_perspective`), even when given 127.0.0.1, which `resolve_ip_for_localhost` turns
  into a "reachable" address by the same look-up. With RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (Ray's switch
  for single-machine runtimes) every process takes the loopback address instead;
- the API-server process (dashboard.py), started even with include_dashboard=False to host only the
  usage-stats module, probes cloud metadata (HTTP GET to 169.254.169.254 for Azure and AWS, a look-up of
  metadata.google.internal) in `get_cluster_config_to_report`, *before* it checks RAY_USAGE_STATS_ENABLED.
  No Ray setting skips it, so a local runtime started here does not start that process: with the dashboard
  off it serves nothing else (no job or state API is loaded in that mode).
Token authentication stays on for the local runtime, with a fresh token for each run passed through the
environment (nothing written to ~/.ray), which also keeps Ray's "Token authentication is enabled" banner
off stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Callable

from .batch_state import BatchError

#: environment of a runtime started here (inherited by every Ray process it spawns); values the user set win
#: for the token settings, so that RAY_AUTH_MODE=disabled or a chosen token still applies
LOCAL_ONLY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

TOKEN_HELP = ("run with RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or in ~/.ray/auth_token); "
              "`ray get-auth-token` on its head node prints it")

# a GCS address as `ray start --head` prints it; ray://, "auto" and the like are left to ray.init
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):\d{1,5}$")


@contextlib.contextmanager
def _without_api_server():
    from ray._private import node as ray_node

    original = getattr(ray_node.Node, "start_api_server", None)
    if original is None:
        yield  # another Ray version: tests/test_privacy.py's trace says whether it probes again
        return
    ray_node.Node.start_api_server = lambda self, **_: None
    try:
        yield
    finally:
        ray_node.Node.start_api_server = original


def _reload_auth_settings() -> None:
    # Ray caches RAY_AUTH_MODE and the token when it is imported; this process may have imported it earlier
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def start_local(num_cpus: int) -> Callable[[], None]:
    """Start a Ray runtime on this machine only (loopback address, no dashboard, no usage stats, no cloud
    probes, a token of its own). -> the function that shuts it down and restores the environment."""
    from diarize.privacy import quiet_dependencies

    quiet_dependencies()  # RAY_USAGE_STATS_ENABLED=0 before ray reads it
    settings = dict(LOCAL_ONLY_ENV)
    if "RAY_AUTH_MODE" not in os.environ:
        settings["RAY_AUTH_MODE"] = "token"
    token_mode = os.environ.get("RAY_AUTH_MODE", settings.get("RAY_AUTH_MODE", "")).lower() == "token"
    if token_mode and not {"RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(os.environ):
        settings["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    import ray
    from ray._private import ray_constants

    cluster_switch = ray_constants.ENABLE_RAY_CLUSTER  # read when ray was imported, maybe before the line above
    ray_constants.ENABLE_RAY_CLUSTER = False
    _reload_auth_settings()

    def restore() -> None:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_switch
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reload_auth_settings()  # a later ray.init(address=...) in this process uses the user's own settings

    try:
        with _without_api_server():
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except BaseException:
        restore()
        raise

    def stop() -> None:
        try:
            ray.shutdown()
        finally:
            restore()

    return stop


def _token_source() -> str:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"]
    return str(Path("~/.ray/auth_token"))


def check_cluster(address: str, timeout: float = 10.0) -> None:
    """One gRPC call to the cluster's GCS with the credentials ray.init would send: BatchError with one line
    when it refuses them or does not answer, instead of Ray's retry loop (about 20 s of repeated
    InvalidAuthToken lines, then a traceback)."""
    if not _HOST_PORT.match(address):
        return
    try:
        import grpc
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
        from ray._private.grpc_utils import init_grpc_channel
        from ray._raylet import AuthenticationTokenLoader
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:
        return  # another Ray layout: ray.init's own errors are still caught in connect()
    from ray.exceptions import RayError

    token_mode = is_token_auth_enabled()
    if token_mode:
        try:
            found = AuthenticationTokenLoader.instance().has_token()
        except RayError:  # Ray 2.60 raises AuthenticationError rather than answering False
            found = False
        if not found:
            raise BatchError("RAY_AUTH_MODE=token but no Ray token is set (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                             "~/.ray/auth_token): give the cluster's token (`ray get-auth-token` on its head node "
                             "prints it)")
    channel = init_grpc_channel(address)
    try:
        gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
            gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
    except grpc.RpcError as error:
        code = error.code()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            if token_mode:
                raise BatchError(f"the Ray cluster at {address} refused the token from {_token_source()}: give it "
                                 "that cluster's token (`ray get-auth-token` on its head node prints it)") from None
            raise BatchError(f"the Ray cluster at {address} requires its authentication token: {TOKEN_HELP}") from None
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            details = (error.details() or code.name).splitlines()[0]
            raise BatchError(f"no Ray cluster answers at {address} ({details})") from None
        # anything else (another service on that port, an older GCS): ray.init says what it is
    finally:
        channel.close()


def connect(address: str) -> None:
    """Attach to the user's cluster; BatchError with one line when that fails."""
    from diarize.privacy import quiet_dependencies

    quiet_dependencies()
    check_cluster(address)
    import ray
    from ray.exceptions import RayError

    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, RayError) as error:
        text = str(error).strip().splitlines()
        raise BatchError(f"Ray cluster at {address}: {text[0] if text else type(error).__name__}") from None
