"""Engine-ready files of a processed session: python -m pipeline.engine_export SESSION_DIR [options].

Parses the options, calls `pipeline.export.formats.export_formats` and prints one line per
written file ("<path>  (<format>, <seconds> s)"). The session is checked against its manifest's
list of files first (a missing or altered file is named), and the list is brought up to date
after the files are written. Exit codes: 0 written, 2 usage, 3 missing, unreadable, incomplete
or altered session, 6 a file cannot be written (full disk, ...), 130 / 143 interrupted /
terminated; errors are one line on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError, install_cli_signals, interrupted, report
from pipeline.export.formats import FORMATS, export_formats, parse_formats
from pipeline.export.vrma import VRMA_EXPRESSION_MODES


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.engine_export",
                                 description="Write VRM 1.0, VRM Animation, BVH and Live Link Face CSV "
                                             "files of a processed session")
    ap.add_argument("session", help="session folder written by python -m pipeline.process")
    ap.add_argument("--formats", type=parse_formats, default=FORMATS,
                    help=f"comma-separated subset of {','.join(FORMATS)} (default: all)")
    ap.add_argument("--vrm-author", action="append", dest="authors",
                    help="VRM meta author (repeatable; default 'dhcap user')")
    ap.add_argument("--vrm-name", help="VRM meta model name (default: the take's name)")
    ap.add_argument("--vrm-commercial", choices=("personalNonProfit", "personalProfit", "corporation"),
                    help="VRM meta commercialUsage (default personalNonProfit)")
    ap.add_argument("--vrm-avatar-permission", choices=("onlyAuthor", "onlySeparatelyLicensedPerson", "everyone"),
                    help="VRM meta avatarPermission (default onlyAuthor)")
    ap.add_argument("--vrma-expressions", choices=VRMA_EXPRESSION_MODES, default="custom",
                    help="expressions in take.vrma: the ARKit shapes (custom, default), VRM presets, or both")
    a = ap.parse_args(argv)
    install_cli_signals()
    meta = {"authors": a.authors, "name": a.vrm_name, "commercialUsage": a.vrm_commercial,
            "avatarPermission": a.vrm_avatar_permission}
    try:
        res = export_formats(a.session, a.formats, vrm_meta=meta, vrma_expressions=a.vrma_expressions)
    except PipelineError as e:
        return report(e)
    except KeyboardInterrupt as e:  # each file is written whole or not at all
        return interrupted("files written so far are whole; the manifest may not list them yet", e)
    for fmt, name in res["files"].items():
        print(f"{Path(a.session) / name}  ({fmt}, {res['seconds'][fmt]:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
