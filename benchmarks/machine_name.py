"""The processor a benchmark ran on, as /proc/cpuinfo names it: every figure is quoted with its machine."""

from __future__ import annotations

import platform


def cpu_name() -> str:
    """"AMD EPYC ...", from the first `model name` line of /proc/cpuinfo, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
