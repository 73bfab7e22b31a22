"""bench/run.py: the same as `python -m bench` (for Makefiles that prefer a path)."""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    runpy.run_module("bench", run_name="__main__", alter_sys=True)
