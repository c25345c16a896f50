"""Run a command under strace and report every attempt to reach beyond this machine.

    python benchmarks/trace_network.py -- voicemap diarize meeting.wav
    python benchmarks/trace_network.py --trace-file run.strace -- python -c "import pyannote.audio"
    python benchmarks/trace_network.py --loopback-only -- voicemap batch diarize /archive -o /results

Reported, one line each:
- connect()/sendto()/sendmsg()/sendmmsg() to an IPv4/IPv6 address that is not loopback and not one
  of this machine's own interface addresses (with --loopback-only: not loopback);
- any exchange with port 53, loopback included: a local stub resolver (systemd-resolved on
  127.0.0.53) forwards the name outward, so a DNS query leaks even when its socket stays local;
- the host name inside each DNS query the trace shows, to name the culprit;
- writes to onnxruntime's telemetry queue (~/.cache/Microsoft/DeveloperTools/.onnxruntime): events
  queued by a short run are uploaded by any later run that has its telemetry on.
Unix sockets are not reported (nscd also serves user look-ups, so its socket says nothing by itself),
except systemd-resolved's, which only resolves names.

Exit status: 0 when nothing left the machine and the command succeeded; 1 when something was
reported; 2 when strace is missing or the arguments are wrong; 3 when nothing was reported but
the command itself failed (its own status is printed).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TRACED = "connect,sendto,sendmsg,sendmmsg,openat"
ORT_TELEMETRY_STORE = "/Microsoft/DeveloperTools/.onnxruntime"
RESOLVED_SOCKET = "/run/systemd/resolve/"

_LINE = re.compile(r"^(?P<pid>\d+)\s+(?:\d+:\d+:\d+\.\d+\s+)?(?P<call>connect|sendto|sendmsg|sendmmsg|openat)\((?P<rest>.*)$")
_INET = re.compile(
    r"sa_family=(?P<family>AF_INET6?),\s*sin6?_port=htons\((?P<port>\d+)\)"
    r"[^}]*?(?:inet_addr\(\"(?P<v4>[^\"]+)\"\)|inet_pton\(AF_INET6,\s*\"(?P<v6>[^\"]+)\")"
)
_UNIX = re.compile(r"sa_family=AF_UNIX,\s*sun_path=\"(?P<path>[^\"]*)\"")
_QUOTED = re.compile(r"\"((?:[^\"\\]|\\.)*)\"")
_OPEN_FOR_WRITING = re.compile(r"O_WRONLY|O_RDWR|O_CREAT")
_ESCAPES = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "\\": 92, '"': 34, "'": 39, "a": 7, "b": 8}


@dataclass(frozen=True)
class Finding:
    pid: int
    kind: str  # "connect", "send", "dns-query", "telemetry-store"
    target: str
    line: str

    def __str__(self) -> str:
        return f"{self.kind:<16} {self.target:<45} pid {self.pid}"


def local_addresses() -> set[ipaddress._BaseAddress]:
    """This machine's own interface addresses: traffic to them never leaves the host."""
    found: set[ipaddress._BaseAddress] = set()
    try:
        import psutil

        for entries in psutil.net_if_addrs().values():
            for entry in entries:
                try:
                    found.add(ipaddress.ip_address(entry.address.split("%")[0]))
                except ValueError:
                    pass  # link-layer (MAC) entries
    except ImportError:
        pass
    return found


def _is_local(address: str, own: set[ipaddress._BaseAddress]) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified or ip in own


def _unescape(text: str) -> bytes:
    """Bytes of a string as strace prints it (with -x: \\xNN, plus C escapes and octal)."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\" or i + 1 == len(text):
            out += char.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "x" and re.match(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4]):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", text[i + 1 :]).group(0)
            out.append(int(digits, 8) & 0xFF)
            i += 1 + len(digits)
        else:
            out.append(_ESCAPES.get(nxt, ord(nxt)))
            i += 2
    return bytes(out)


def dns_query_name(payload: bytes) -> str | None:
    """The question name of a DNS query packet, or None when `payload` is not one."""
    if len(payload) < 17 or payload[2] & 0x80 or payload[4:6] != b"\x00\x01":
        return None
    labels, at = [], 12
    while at < len(payload):
        size = payload[at]
        if size == 0:
            break
        if size > 63 or at + 1 + size > len(payload):
            return None
        label = payload[at + 1 : at + 1 + size]
        if not re.fullmatch(rb"[A-Za-z0-9_-]+", label):
            return None
        labels.append(label.decode("ascii"))
        at += 1 + size
    else:
        return None
    if not labels or len(payload) < at + 5:
        return None
    return ".".join(labels)


def scan(trace: str, own: set[ipaddress._BaseAddress] | None = None) -> list[Finding]:
    """Findings in the text of `strace -f -x -e trace=...` output (one finding per event)."""
    own = local_addresses() if own is None else own
    findings: list[Finding] = []
    for raw in trace.splitlines():
        match = _LINE.match(raw)
        if not match:
            continue  # "<... resumed>" tails carry no arguments; signals and exits don't matter
        pid, call, rest = int(match["pid"]), match["call"], match["rest"]
        if call == "openat":
            path = _QUOTED.search(rest)
            if path and ORT_TELEMETRY_STORE in path.group(1) and _OPEN_FOR_WRITING.search(rest):
                findings.append(Finding(pid, "telemetry-store", path.group(1), raw))
            continue
        kind = "connect" if call == "connect" else "send"
        for address in _INET.finditer(rest):
            host = address["v4"] or address["v6"]
            port = int(address["port"])
            if port == 53 or not _is_local(host, own):
                shown = f"[{host}]:{port}" if address["family"] == "AF_INET6" else f"{host}:{port}"
                findings.append(Finding(pid, kind, shown + (" (DNS)" if port == 53 else ""), raw))
        unix = _UNIX.search(rest)
        if unix and unix["path"].startswith(RESOLVED_SOCKET):
            findings.append(Finding(pid, kind, f"unix:{unix['path']} (name lookup)", raw))
        if call != "connect":
            for quoted in _QUOTED.finditer(rest):
                name = dns_query_name(_unescape(quoted.group(1)))
                if name:
                    findings.append(Finding(pid, "dns-query", name, raw))
    return findings


def strace_command(trace_file: Path, command: list[str]) -> list[str]:
    strace = shutil.which("strace")
    if strace is None:
        raise FileNotFoundError("strace is not installed (apt-get install strace)")
    base = [strace, "-f", "-qq", "-x", "-s", "512", "-e", f"trace={TRACED}", "-o", str(trace_file)]
    # seccomp-bpf stops the process only on the traced calls, so imports run at near full speed
    probe = subprocess.run([strace, "-f", "--seccomp-bpf", "-e", "trace=connect", "true"], capture_output=True)
    return base[:2] + (["--seccomp-bpf"] if probe.returncode == 0 else []) + base[2:] + ["--", *command]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace-file", type=Path, help="keep the raw strace output here")
    parser.add_argument("--loopback-only", action="store_true",
                        help="count only loopback as local, not this machine's own interface addresses: a service "
                        "bound to the LAN address (Ray's default node address) is reported too")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.print_usage(sys.stderr)
        print("trace_network: no command given", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="trace_network-") as scratch:
        trace_file = args.trace_file or Path(scratch) / "trace.txt"
        try:
            full = strace_command(trace_file, command)
        except FileNotFoundError as error:
            print(f"trace_network: {error}", file=sys.stderr)
            return 2
        status = subprocess.run(full).returncode
        findings = scan(trace_file.read_text(errors="replace"), set() if args.loopback_only else None)
    for finding in findings:
        print(finding)
    if findings:
        print(f"trace_network: {len(findings)} attempt(s) to reach beyond this machine", file=sys.stderr)
        return 1
    print("trace_network: nothing left this machine")
    if status != 0:
        print(f"trace_network: the command exited with status {status}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
