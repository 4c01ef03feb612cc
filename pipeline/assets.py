"""Model files: where they live, checksum verification, and reproducible installation.

    python -m pipeline.assets fetch    # install the MediaPipe models (pinned, checksummed), then check
    python -m pipeline.assets check    # verify them

Prints "ok  <path>" per verified model; a missing or corrupt one is one line on stderr, exit code 5.
The models, their checksums and where they come from: pipeline.core.assets.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.core.assets import fetch, verified_models
from pipeline.core.errors import AssetError, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.assets", description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["fetch", "check"])
    args = ap.parse_args(argv)
    try:
        if args.action == "fetch":
            fetch()
        for path in verified_models():
            print(f"ok  {path}")
    except AssetError as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
