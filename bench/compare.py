"""Two checkouts of the service side by side in one run: the upload and issuance sections of bench/run.py,
interleaved per worker count, for a before/after of a change (machine drift hits both alike).

    git worktree add /tmp/before HEAD~1
    .venv/bin/python bench/compare.py --before /tmp/before [--scale 0.5]

The service is started as `python -m gatewaycerts` from each checkout's directory, so each serves its own
code; the in-process limits are this checkout's. Prints the table; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import run
from bench.harness import ROOT, build_loadgen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path, help="a checkout of the code before the change")
    parser.add_argument("--scale", type=float, default=0.5)
    args = parser.parse_args()
    build_loadgen()
    table = run.Table()
    print(run.Table.HEADER)
    sides = [("before", args.before.resolve()), ("after", ROOT)]
    for section in (run.upload_section, run.issue_section):
        for workers in (1, 2):
            for label, directory in sides:
                os.chdir(directory)
                section(table, f"SQLite {label}", {}, args.scale, [workers])
    os.chdir(ROOT)


if __name__ == "__main__":
    main()
