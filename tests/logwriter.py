"""A log writer for the rotation tests and bench: appends numbered lines (O_APPEND, as loggers open logs) at a
given rate, reopens its file on SIGHUP (what a postrotate command asks of a daemon), stops on SIGTERM.

    python logwriter.py PATH RATE PIDFILE [COUNT]
"""

import os
import signal
import sys
import time


def main() -> None:
    path, rate, pidfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else None
    state = {"fd": os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644), "reopen": False, "stop": False}
    signal.signal(signal.SIGHUP, lambda *_: state.update(reopen=True))
    signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))
    with open(pidfile + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    start, number = time.monotonic(), 0
    while not state["stop"] and (count is None or number < count):
        if state["reopen"]:
            os.close(state["fd"])
            state["fd"] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            state["reopen"] = False
        os.write(state["fd"], b"%08d a log line with some padding to look like one\n" % number)
        number += 1
        delay = start + number / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    with open(pidfile + ".count", "w") as handle:
        handle.write(str(number))


if __name__ == "__main__":
    main()
