"""SIGTERM always ends a command with one line and exit 143, even when it lands inside a finalizer."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_sigterm_inside_a_finalizer_still_terminates_without_a_traceback() -> None:
    # An exception raised in __del__ is printed and swallowed by Python: the run would go on, ignoring the kill.
    code = textwrap.dedent("""
        import os, signal, time
        from parsner import cli
        signal.signal(signal.SIGTERM, cli._on_sigterm)

        class Finalized:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                t = time.time()
                while time.time() - t < 0.2:
                    pass

        try:
            Finalized()
            time.sleep(5)
            print("not terminated")
        except cli.Terminated:
            print("terminated")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "terminated", proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
