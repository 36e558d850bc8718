#!/usr/bin/env python3
"""Regenerate the expected outputs of the terminal-model golden tests.

Usage (from the repository root; needs tmux, tested with 3.3a):

    python3 tools/gen-vt-golden.py            # every tests/vt/*.in
    python3 tools/gen-vt-golden.py NAME ...   # only these cases

For each tests/vt/NAME.in (raw bytes a program wrote) this runs a private
tmux server as the oracle, writes the bytes unchanged into a pane of the
case's size (24x80, or "ROWS COLS" from NAME.size), and stores what tmux
then reports:

* NAME.screen: `capture-pane -p -e -N -S -`: history then screen, with SGR;
* NAME.main: when the alternate screen is active, the main screen below it
  (`capture-pane -a`);
* NAME.state: cursor, modes, scroll region, title, tab stops and history
  size as `key=value` lines (tmux format variables).

tests/vt_golden.rs compares the model against these files, so `cargo test`
never needs tmux. A case whose NAME.note exists documents a known
difference between tmux and xterm that the case avoids or checks.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VT = os.path.join(ROOT, "tests", "vt")
SOCKET = "nono-golden-%d" % os.getpid()
DEFAULT_SIZE = (24, 80)
# Matches HISTORY_LIMIT in tests/vt_golden.rs; cases stay below it because
# tmux trims history in chunks of 10% rather than line by line.
HISTORY_LIMIT = 2000
# Seconds to let tmux read the rest of the pane's output after `cat` ends.
SETTLE = 0.4

STATE_KEYS = [
    "pane_height", "pane_width", "cursor_x", "cursor_y", "cursor_flag",
    "insert_flag", "keypad_cursor_flag", "keypad_flag", "wrap_flag",
    "origin_flag", "mouse_standard_flag", "mouse_button_flag",
    "mouse_all_flag", "mouse_utf8_flag", "mouse_sgr_flag", "alternate_on",
    "scroll_region_upper", "scroll_region_lower", "history_size",
    "pane_tabs", "pane_title",
]

CONFIG = f"""\
set -g history-limit {HISTORY_LIMIT}
set -g status off
set -wg scroll-on-clear off
set -g default-terminal screen
"""


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", SOCKET, *args], check=check,
                          capture_output=True).stdout


def run_case(name, tmp):
    src = os.path.join(VT, name + ".in")
    size_file = os.path.join(VT, name + ".size")
    rows, cols = DEFAULT_SIZE
    if os.path.exists(size_file):
        rows, cols = (int(v) for v in open(size_file).read().split())
    go = os.path.join(tmp, "go")
    done = os.path.join(tmp, "done")
    for f in (go, done):
        if os.path.exists(f):
            os.unlink(f)
    # Raw mode so the tty passes every byte through untouched (no \n -> \r\n).
    script = (f"stty raw -echo; while [ ! -e {go} ]; do sleep 0.02; done; "
              f"cat '{src}'; touch {done}; exec sleep 1000")
    tmux("new-session", "-d", "-x", str(cols), "-y", str(rows), "sh", "-c", script)
    tmux("select-pane", "-T", "")
    open(go, "w").close()
    deadline = time.time() + 20
    while not os.path.exists(done):
        if time.time() > deadline:
            raise SystemExit(f"{name}: timed out")
        time.sleep(0.02)
    time.sleep(SETTLE)
    fmt = "\n".join(f"{k}=#{{{k}}}" for k in STATE_KEYS)
    state = tmux("display-message", "-p", fmt)
    screen = tmux("capture-pane", "-p", "-e", "-N", "-S", "-")
    alt = b"alternate_on=1" in state
    main = tmux("capture-pane", "-p", "-e", "-N", "-a") if alt else None
    tmux("kill-server", check=False)
    with open(os.path.join(VT, name + ".state"), "wb") as f:
        f.write(state)
    with open(os.path.join(VT, name + ".screen"), "wb") as f:
        f.write(screen)
    main_path = os.path.join(VT, name + ".main")
    if main is not None:
        with open(main_path, "wb") as f:
            f.write(main)
    elif os.path.exists(main_path):
        os.unlink(main_path)


def main():
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed to regenerate the goldens")
    names = sys.argv[1:] or sorted(f[:-3] for f in os.listdir(VT) if f.endswith(".in"))
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "tmux.conf")
        with open(conf, "w") as f:
            f.write(CONFIG)
        global tmux_conf
        for name in names:
            # A fresh server per case, started with the config.
            subprocess.run(["tmux", "-L", SOCKET, "-f", conf, "start-server", ";",
                            "set", "-g", "exit-empty", "off"], check=False,
                           capture_output=True)
            run_case(name, tmp)
            print(name)


if __name__ == "__main__":
    main()
