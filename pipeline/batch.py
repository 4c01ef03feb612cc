"""Many takes at once: every video of a list, folder or glob processed into its own session, in
parallel worker processes, with one summary table at the end.

    python -m pipeline.batch takes/*.mp4 [--out sessions] [--workers N] [--subject auto|N]
    python -m pipeline.batch takes/                       # every video in the folder (not recursive)
    python -m pipeline.batch takes/ --executor dask --address tcp://scheduler:8786
    python -m pipeline.batch takes/ --executor ray --address ray://head:10001

Each take runs in its own worker and writes `<out>/<video name>/` (the name made safe), whole or
not at all (an existing session only with --overwrite); a take that fails is reported in the
table with its one-line error and does not stop the others. A worker process that dies (`kill -9`,
out of memory) loses only its take: its temporary folder is removed and it runs once more in a new
worker; if it dies again the take is reported failed with the cause ("worker process died while
processing it (killed by SIGKILL; then killed by SIGKILL); tried 2 times"), and the summary's
`attempts` and `worker_died` columns say which takes were retried and why. A line per finished take goes
to stderr (unless --quiet); the table is printed once all takes are done and saved as
`<out>/batch_summary.json` and `.csv` (see pipeline.session.batch_runner).
Exit code: 0 when every take succeeded, 1 otherwise, 3 when the inputs hold no video, 6 when
--out cannot be written, 130 interrupted, 143 terminated (SIGTERM): finished takes are kept,
unfinished ones leave nothing.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.core.errors import PipelineError, install_cli_signals, interrupted, report
from pipeline.core.session_folder import OVERWRITE_HELP
from pipeline.session.batch_runner import EXECUTORS, process_batch, summary_table
from pipeline.tracking.subject import AUTO, SUBJECT_HELP, parse_subject


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.batch",
                                 description="Process many takes in parallel, one session folder each")
    ap.add_argument("inputs", nargs="+", metavar="VIDEO|FOLDER|GLOB",
                    help="video files, folders of videos, or glob patterns ('takes/*.mp4')")
    ap.add_argument("--out", default="sessions", help="folder for the session folders (default: sessions)")
    ap.add_argument("--workers", type=int, help="parallel takes (default: min(cores, takes))")
    ap.add_argument("--executor", choices=EXECUTORS, default="local",
                    help="local process pool (default), or a dask / ray cluster")
    ap.add_argument("--address", help="cluster address for dask (tcp://host:8786) or ray (ray://host:10001, auto)")
    ap.add_argument("--max-gap", type=float, default=0.25, help="fill tracking gaps up to this many seconds")
    ap.add_argument("--subject", type=parse_subject, default=AUTO, metavar="auto|N",
                    help=SUBJECT_HELP + " (in every take)")
    ap.add_argument("--quiet", action="store_true", help="no line per finished take")
    ap.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    a = ap.parse_args(argv)
    install_cli_signals()
    takes = [0]  # how many takes the inputs hold
    done = [0]

    def started(n: int):
        takes[0] = n
        if not a.quiet:
            print(f"{n} takes, executor {a.executor}, writing to {a.out}/", file=sys.stderr)

    def progress(r):
        done[0] += 1
        if not a.quiet:
            what = "ok" if r["status"] == "ok" else f"FAILED: {r['error']}"
            print(f"[{done[0]}/{takes[0]}] {r['take']}: {what} ({r['seconds']:.1f} s)", file=sys.stderr)

    def worker_died(job, cause, retry):
        if not a.quiet:
            then = "trying it again in a new worker" if retry else "giving up on it"
            print(f"worker process {cause} while processing {job[0]}; {then}", file=sys.stderr)

    try:
        results = process_batch(a.inputs, a.out, a.workers, a.executor, a.address, a.max_gap,
                                on_start=started, on_result=progress, subject=a.subject,
                                overwrite=a.overwrite, on_worker_death=worker_died)
    except PipelineError as e:
        return report(e)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: the workers' unfinished session folders were removed
        return interrupted(f"{done[0]} of {takes[0]} takes done (their sessions kept); the others not written", e)
    print(summary_table(results))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
