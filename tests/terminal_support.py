"""Run a command with its stderr on a pseudo-terminal (what a user at a terminal sees)."""

from __future__ import annotations

import os
import pty
import subprocess


def stderr_on_a_terminal(args: list[str], timeout: float = 120) -> tuple[int, bytes]:
    """Run `args` with stdout discarded and stderr on a pty; its exit code and what it drew."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        return process.wait(timeout=timeout), seen
    finally:
        os.close(leader)
