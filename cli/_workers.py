"""Several mitmdump workers on one listening port (``aipolicy proxy --workers N``).

Each worker is the launcher (``python -m aipolicy.proxy_addons.launcher --reuse-port``:
mitmdump with the Enforcer in its chain), which listens with SO_REUSEPORT: the kernel
spreads connections across workers and clients keep their own source address. All workers
enforce the same policy file (each reloads it by itself) and append to the same event log, one
``write`` per line on an O_APPEND descriptor, so lines from different workers
never interleave. With ``--log -`` the workers' standard output comes through the
supervisor, which passes it on a whole line at a time: on a pipe (a container's
log), writes longer than PIPE_BUF from several processes could otherwise mix.
Each worker names itself in events (``proxy``: ID-w1, ID-w2 …).

The supervisor forwards SIGINT, SIGTERM and SIGHUP to the workers. If a worker
exits on its own, the others are stopped and the supervisor exits with status 1,
so that systemd (Restart=on-failure) or Kubernetes restarts the whole set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO

from ._ca import create_ca, find_ca_file
from ._common import stderr

STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the supervisor dies, even by SIGKILL, instead of living on orphaned."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the supervisor's own stop handling still applies


def prepare_ca(confdir: str | None) -> None:
    directory = Path(confdir or "~/.mitmproxy").expanduser()
    if find_ca_file(directory) is None:
        create_ca(directory)


def run_workers(commands: list[list[str]], relay_stdout: bool = False) -> int:
    """Start the workers and wait; 0 after a requested stop, 1 if a worker exited by itself."""
    processes: list[subprocess.Popen[bytes]] = []
    requested: list[int] = []

    def stop_all(number: int) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT if number == signal.SIGINT else signal.SIGTERM)

    def on_signal(number: int, frame: FrameType | None) -> None:
        requested.append(number)
        stop_all(number)

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, on_signal)
    output = subprocess.PIPE if relay_stdout else None
    processes.extend(subprocess.Popen(command, stdout=output, preexec_fn=_die_with_parent) for command in commands)
    relays = [_relay(process.stdout) for process in processes if process.stdout is not None]
    failed = False
    while not requested and not failed:
        for index, process in enumerate(processes, 1):
            if process.poll() is not None:
                stderr.print(
                    f"[red]aipolicy:[/] worker {index} exited with status {process.returncode}; stopping the others"
                )
                failed = True
                stop_all(signal.SIGTERM)
                break
        time.sleep(0.2)
    for process in processes:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for relay in relays:
        relay.join(STOP_TIMEOUT)
    return 1 if failed else 0


_STDOUT_LOCK = threading.Lock()


def _relay(source: IO[bytes]) -> threading.Thread:
    """Copy a worker's standard output to ours a whole line at a time, so that lines from several
    workers never interleave on a shared pipe (a write longer than PIPE_BUF is not atomic)."""

    def copy() -> None:
        with source:
            for line in source:
                with _STDOUT_LOCK:
                    sys.stdout.buffer.write(line)
                    sys.stdout.buffer.flush()

    thread = threading.Thread(target=copy, name="aipolicy-stdout-relay", daemon=True)
    thread.start()
    return thread
