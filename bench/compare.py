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
    parser.add_argument(
        "--sections", default="upload,issue", help="which of bench/run.py's sections, comma-separated: upload, issue"
    )
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    args = parser.parse_args()
    sections = {"upload": run.upload_section, "issue": run.issue_section}
    chosen = [sections[name.strip()] for name in args.sections.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    build_loadgen()
    table = run.Table()
    print(run.Table.HEADER)
    sides = [("before", args.before.resolve()), ("after", ROOT)]
    for section in chosen:
        for workers in worker_counts:
            for label, directory in sides:
                os.chdir(directory)
                section(table, f"SQLite {label}", {}, args.scale, [workers])
    os.chdir(ROOT)


if __name__ == "__main__":
    main()
