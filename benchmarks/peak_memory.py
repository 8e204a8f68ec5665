"""Peak resident memory of this process per stage (Linux): reset the kernel's counter, then read it.

Standard library only, so RecBole's own venv (recbole_driver.py) imports it as well as ours.
"""

from __future__ import annotations


def reset_peak() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0), so each stage has its own peak."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mb() -> float:
    """This process's peak resident set size (VmHWM) since the last reset, in MiB; NaN where unreadable."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")
