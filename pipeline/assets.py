"""TODO docstring."""
from __future__ import annotations

import argparse
import sys

from pipeline.core.assets import MODELS, fetch, model_path
from pipeline.core.errors import AssetError, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.assets", description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["fetch", "check"])
    args = ap.parse_args(argv)
    try:
        if args.action == "fetch":
            fetch()
        for n in MODELS:
            print(f"ok  {model_path(n)}")
    except AssetError as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
