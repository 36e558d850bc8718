#!/usr/bin/env python3
"""Record a real program's terminal output as a golden-test input.

Usage (from the repository root; needs tmux):

    python3 tools/record-vt-case.py NAME ROWS COLS 'COMMAND' [KEYS...]

Runs COMMAND (with TERM=xterm-256color) in a private tmux pane of
ROWS x COLS, captures every byte it writes with `pipe-pane -O`, and types
each KEYS argument with `send-keys` (a number alone waits that many
seconds instead). The bytes land in tests/vt/NAME.in (and NAME.size when
not 24x80); run tools/gen-vt-golden.py NAME afterwards for the expected
files.
"""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VT = os.path.join(ROOT, "tests", "vt")
SOCKET = "nono-record-%d" % os.getpid()
# Time for the program to draw after starting and after each key.
START_DELAY = 1.0
KEY_DELAY = 0.3


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCKET, "-f", "/dev/null", *args],
                          check=True, capture_output=True).stdout


def main():
    name, rows, cols, command, *keys = sys.argv[1:]
    out = os.path.join(VT, name + ".in")
    if os.path.exists(out):
        os.unlink(out)
    # The program waits a moment so pipe-pane is on before its first byte.
    tmux("new-session", "-d", "-x", cols, "-y", rows, "sh", "-c",
         f"sleep 0.5; export TERM=xterm-256color; exec {command}")
    tmux("pipe-pane", "-O", f"cat > '{out}'")
    time.sleep(START_DELAY)
    for key in keys:
        try:
            time.sleep(float(key))
            continue
        except ValueError:
            pass
        literal = not key.startswith("key:")
        tmux("send-keys", *(["-l", key] if literal else [key[4:]]))
        time.sleep(KEY_DELAY)
    time.sleep(START_DELAY)
    subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True)
    size = os.path.join(VT, name + ".size")
    if (rows, cols) != ("24", "80"):
        with open(size, "w") as f:
            f.write(f"{rows} {cols}\n")
    print(f"{out}: {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
