"""Run the whole test suite on a loaded machine: every core busy with a spinning process.

CI must stay green however busy the machine is, so no test may depend on its speed. This script
starts one ``while 1: pass`` process per core (or ``--busy N``), runs ``python -m pytest`` with the
remaining arguments, ends the busy processes whatever happens, and exits with pytest's status.

Examples
--------
``python tests/run_loaded.py``            (the whole suite, every core busy)
``python tests/run_loaded.py --busy 2 -x tests/test_race.py``
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    """Start the busy processes, run pytest with ``argv``, stop them; return pytest's status."""
    busy = os.cpu_count() or 2
    if argv[:1] == ["--busy"] and len(argv) >= 2:
        busy, argv = int(argv[1]), argv[2:]
    spinners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(busy)]
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *argv])
    finally:
        for p in spinners:
            p.kill()
        for p in spinners:
            p.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
