"""Many takes at once: every video of a list, folder or glob processed into its own session, in
parallel worker processes, with one summary table at the end (`python -m pipeline.batch`).

`process_batch(inputs, out_root)` expands the inputs (`expand_inputs`), runs every take
(`run_batch`) and saves the summary (`write_summary`); `summary_table` formats it for the console.
Each take runs `pipeline.session.single_camera.process_video` in its own worker (`run_take`, one
take per worker at a time) and writes `<out>/<video name>/` (a suffix _2, _3 ... when two videos
share a name). A take that fails (unreadable, nothing tracked, ...) is reported in the summary with
its one-line error and exit code and does not stop the others. Results are plain dicts (the
fields of `TakeResult`), so they cross process and cluster boundaries.

Executors: "local" (default) is a pool of worker processes on this machine (workers =
min(cores, takes)) that survives a dead worker (`kill -9`, the out-of-memory killer): only the
take it held is lost, its temporary folder removed, and it is tried once more in a new worker
(MAX_ATTEMPTS); if that worker dies too it is reported failed with the cause ("killed by
SIGKILL"). The other takes, running or queued, go on.
"dask" and "ray" send the same function to a running cluster (`address`; without it, a
throw-away local cluster); they are imported only when chosen. The workers must see the videos and
the output folder at the same paths (a shared file system) and have this package installed.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import multiprocessing
import os
import shutil
import signal
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass
from multiprocessing import connection as mp_connection
from pathlib import Path

from pipeline.core.atomic import cause, write_text
from pipeline.core.errors import EXIT_TERMINATED, InputError, OutputError, PipelineError, Terminated
from pipeline.core.quiet import send_native_stderr_to_devnull
from pipeline.core.session_folder import STAGING_TAG, safe_stem
from pipeline.session.single_camera import process_video
from pipeline.tracking.subject import AUTO

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".ts", ".mts", ".3gp"}
EXECUTORS = ("local", "dask", "ray")
MAX_ATTEMPTS = 2        # a take whose worker process dies is tried once more, then reported failed
EXIT_WORKER_DIED = 1    # a lost take's exit code in the summary (the worker's own cause is in its error)
WORKER_EXIT_S = 5.0     # at the end, how long an idle worker may take to exit before it is ended


@dataclass
class TakeResult:
    """One take's line of the summary: its frames, tracking and face rig figures, or its error."""

    take: str
    video: str
    out: str
    status: str = "ok"           # "ok" or "failed"
    error: str = ""
    exit_code: int = 0
    frames: int | None = None
    duration_s: float | None = None
    face_frames: int | None = None
    body_frames: int | None = None
    rig_error_mm: float | None = None
    seconds: float = 0.0
    attempts: int = 1            # 2: its first worker process died (worker_died says how) and it ran again
    worker_died: str = ""        # e.g. "killed by SIGKILL": why a worker died while holding this take


def expand_inputs(inputs) -> list[Path]:
    """Files, folders (their video files, sorted) and glob patterns -> video paths, in order,
    without duplicates. A path that does not exist and matches nothing is kept, so its take fails
    with the usual one-line error."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
        elif p.exists():
            out.append(p)
        else:
            matches = sorted(glob.glob(str(item)))
            out += [Path(m) for m in matches if Path(m).is_file()] if matches else [p]
    seen, uniq = set(), []
    for p in out:
        key = str(p.resolve()) if p.exists() else str(p)
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    return uniq


def session_dirs(videos: list[Path], out_root: Path) -> list[Path]:
    """One session folder per video, named after it (made safe: a name such as ".." or one with
    separators never leaves out_root, see pipeline.core.session_folder.safe_stem); repeated names
    get _2, _3, ..."""
    used: dict[str, int] = {}
    dirs = []
    for v in videos:
        stem = safe_stem(v.stem)
        k = used.get(stem, 0) + 1
        used[stem] = k
        dirs.append(out_root / (stem if k == 1 else f"{stem}_{k}"))
    return dirs


def _on_worker_sigterm(signum, _frame):
    """A worker told to stop (the batch was interrupted): the take running unwinds, removing its
    unfinished session folder, and takes already queued to this worker end at once."""
    _STOPPING.append(signum)
    raise Terminated(signal.Signals(signum).name)


_STOPPING: list[int] = []  # in a worker process: the stop signal received, if any


def run_take(video: str, out_dir: str, max_gap_s: float = 0.25, subject: str | int = AUTO,
             overwrite: bool = False) -> dict:
    """Process one take; never raises (but for Ctrl-C and SIGTERM): failures come back as a
    failed TakeResult (as a dict, so it crosses process and cluster boundaries as plain data).
    subject: "auto" or N (pipeline.tracking.subject); overwrite: replace a session already in
    out_dir whole. A take that fails leaves out_dir as it was (the session is written whole or
    not at all)."""
    t0 = time.perf_counter()
    res = TakeResult(take=Path(video).stem, video=str(video), out=str(out_dir))
    if threading.current_thread() is threading.main_thread():  # signal handlers: main thread only
        signal.signal(signal.SIGTERM, _on_worker_sigterm)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the file-size limit: an error, not death
    if _STOPPING:
        res.status, res.error, res.exit_code = "failed", "not started: the batch was stopped", EXIT_TERMINATED
        return asdict(res)
    try:
        send_native_stderr_to_devnull()
        m = process_video(video, out_dir, max_gap_s, progress=False, subject=subject, overwrite=overwrite)
        res.frames = m["input"]["frames"]
        res.duration_s = m["input"]["duration_s"]
        res.face_frames = m["tracking"]["face_frames"]
        res.body_frames = m["tracking"]["body_frames"]
        res.rig_error_mm = m["face_rig"]["heldout_landmark_error_mm"]
    except PipelineError as e:
        res.status, res.error, res.exit_code = "failed", str(e), e.exit_code
    except Exception as e:  # noqa: BLE001 - one crashing take must not stop the batch
        res.status, res.exit_code = "failed", 1
        res.error = f"{type(e).__name__}: {e} ({traceback.extract_tb(e.__traceback__)[-1].name})"
    res.seconds = round(time.perf_counter() - t0, 2)
    return asdict(res)


# ---------------------------------------------------------------------------------------------
# Executors: each maps run_take over the jobs and yields results as they finish.


class _Worker:
    """One local worker process and the job it holds (None: idle)."""

    def __init__(self, ctx, target):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, target), daemon=True)
        self.proc.start()
        child.close()  # the parent keeps only its end: a dead worker then reads as EOF
        self.job: tuple | None = None
        self.attempt = 0

    def give(self, job: tuple, attempt: int) -> None:
        self.job, self.attempt = job, attempt
        self.conn.send(job)

    def result(self) -> dict | None:
        """The finished take's result if the worker sent it, else None (it died first)."""
        try:
            return self.conn.recv() if self.conn.poll() else None
        except (EOFError, OSError):
            return None


def _worker_main(conn, target) -> None:
    """A local worker process: runs `target(*job)` for each job it receives, sends back the
    result, until it receives None. Ctrl-C, SIGTERM or a vanished batch end it quietly (the take
    running unwinds first, removing its unfinished session folder)."""
    try:
        while (job := conn.recv()) is not None:
            conn.send(target(*job))
    except (KeyboardInterrupt, EOFError, OSError):
        pass


def death_cause(exitcode: int | None) -> str:
    """Why a worker process ended: "killed by SIGKILL", "exited with code 1"."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def remove_staging(out_dir: str | Path) -> None:
    """Remove what a dead worker left of a take: its temporary session folder
    (`<out>.incomplete-*`, see pipeline.core.session_folder); `out_dir` itself is never touched."""
    out = Path(out_dir)
    for p in out.parent.glob(glob.escape(out.name) + STAGING_TAG + "*"):
        shutil.rmtree(p, ignore_errors=True)


def _lost_take(job: tuple, causes: list[str]) -> dict:
    """The failed result of a take whose worker died on every attempt."""
    video, out = job[:2]
    return asdict(TakeResult(Path(video).stem, video, out, "failed",
                             f"worker process died while processing it ({'; then '.join(causes)}); "
                             f"tried {len(causes)} times", EXIT_WORKER_DIED, attempts=len(causes),
                             worker_died="; ".join(causes)))


def _local(jobs, workers: int, target=None, on_worker_death=None, **_):
    """The local executor: `workers` processes of our own (spawn: MediaPipe's threads do not
    survive fork), each given one take at a time. A worker that dies (killed, out of memory)
    loses only its take: the others go on, a new worker replaces it, the take's temporary
    folder is removed and the take is tried again, up to MAX_ATTEMPTS times in all; then it is
    reported failed with the cause. on_worker_death(job, cause, will_retry) is told each time.
    (A ProcessPoolExecutor fails every take, running or queued, once one worker dies.)"""
    ctx = multiprocessing.get_context("spawn")
    target = target or run_take
    queue = deque((job, 1) for job in jobs)
    causes: dict[tuple, list[str]] = {}
    pool: list[_Worker] = []
    try:
        while queue or any(w.job is not None for w in pool):
            for w in pool:
                if w.job is None and queue:
                    w.give(*queue.popleft())
            while len(pool) < workers and queue:
                pool.append(_Worker(ctx, target))
                pool[-1].give(*queue.popleft())
            busy = [w for w in pool if w.job is not None]
            mp_connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for w in busy:
                r = w.result()
                if r is not None:
                    w.job = None
                    yield {**r, "attempts": w.attempt, "worker_died": "; ".join(causes.get(r_job(r), []))}
                elif not w.proc.is_alive():
                    pool.remove(w)
                    lost = _handle_death(w, causes, queue, on_worker_death)
                    if lost is not None:
                        yield lost
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop the workers now rather than wait for their takes
        for w in pool:
            if w.proc.is_alive():
                w.proc.terminate()  # each worker unwinds its take (_on_worker_sigterm): no half session is left
        raise
    finally:
        _close_pool(pool)


def r_job(r: dict) -> tuple:
    """The key a result shares with its job: (video, out)."""
    return (r["video"], r["out"])


def _handle_death(w: _Worker, causes: dict, queue: deque, on_worker_death) -> dict | None:
    """A worker died holding a take: clean its folder, queue it again or return its failure."""
    w.proc.join()
    job, why = w.job, death_cause(w.proc.exitcode)
    causes.setdefault(job[:2], []).append(why)
    remove_staging(job[1])
    retry = w.attempt < MAX_ATTEMPTS
    if on_worker_death is not None:
        on_worker_death(job, why, retry)
    if retry:
        queue.appendleft((job, w.attempt + 1))
        return None
    return _lost_take(job, causes[job[:2]])


def _close_pool(pool: list[_Worker]) -> None:
    """Tell idle workers to end, wait a little, then end any that remain."""
    for w in pool:
        try:
            w.conn.send(None)
        except OSError:
            pass  # already gone
    for w in pool:
        w.proc.join(timeout=WORKER_EXIT_S)
        if w.proc.is_alive():
            w.proc.terminate()
            w.proc.join(timeout=WORKER_EXIT_S)
        w.conn.close()


def _dask(jobs, workers: int, address: str | None = None, **_):
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise SystemExit("error: --executor dask needs dask.distributed: pip install 'dask[distributed]'") from None
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    try:
        futs = [client.submit(run_take, *job, pure=False) for job in jobs]
        for f in dask_completed(futs):
            yield f.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _ray(jobs, workers: int, address: str | None = None, **_):
    try:
        import ray
    except ImportError:
        raise SystemExit("error: --executor ray needs ray: pip install 'ray'") from None
    ray.init(address=address, num_cpus=None if address else workers, ignore_reinit_error=True,
             log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_take)
        pending = [remote.remote(*job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        ray.shutdown()


def run_batch(inputs, out_root: str | Path = "sessions", workers: int | None = None,
              executor: str = "local", address: str | None = None, max_gap_s: float = 0.25,
              on_result=None, subject: str | int = AUTO, overwrite: bool = False,
              on_worker_death=None) -> list[dict]:
    """Process every take; returns one result dict per take (TakeResult fields), in input order.
    on_result(result) is called as each take finishes; subject: who each take follows when
    several people are in view ("auto" or N, pipeline.tracking.subject); overwrite: replace
    sessions already in out_root whole (else those takes fail with a one-line error);
    on_worker_death(job, cause, will_retry): a local worker process died holding a take (see
    `_local`)."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}")
    videos = expand_inputs(inputs)
    out_root = Path(out_root)
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out_root}: {cause(e)}") from None
    dirs = session_dirs(videos, out_root)
    jobs = [(str(v), str(d), max_gap_s, subject, overwrite) for v, d in zip(videos, dirs)]
    if not jobs:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    run = {"local": _local, "dask": _dask, "ray": _ray}[executor]
    by_out = {}
    for r in run(jobs, workers, address=address, on_worker_death=on_worker_death):
        by_out[r["out"]] = r
        if on_result is not None:
            on_result(r)
    return [by_out[str(d)] for d in dirs]


def process_batch(inputs, out_root: str | Path = "sessions", workers: int | None = None,
                  executor: str = "local", address: str | None = None, max_gap_s: float = 0.25,
                  on_start=None, on_result=None, subject: str | int = AUTO,
                  overwrite: bool = False, on_worker_death=None) -> list[dict]:
    """`python -m pipeline.batch`: every take of `inputs` (files, folders, globs) processed into
    its own session folder under out_root, the summary saved as batch_summary.json and .csv there;
    returns one result dict per take, in input order. InputError (one line) when the inputs hold
    no video. on_start(number of takes) is called before the first take starts, on_result(result)
    as each take finishes; subject: "auto" or N for every take (pipeline.tracking.subject);
    overwrite: replace sessions already there whole; on_worker_death: see `run_batch`."""
    videos = expand_inputs(inputs)
    if not videos:
        raise InputError(f"no video files in {' '.join(map(str, inputs))}")
    if on_start is not None:
        on_start(len(videos))
    results = run_batch(inputs, out_root, workers, executor, address, max_gap_s, on_result, subject, overwrite,
                        on_worker_death)
    write_summary(results, Path(out_root))
    return results


COLUMNS = (("take", "take"), ("frames", "frames"), ("duration_s", "duration s"),
           ("face_frames", "face"), ("body_frames", "body"), ("rig_error_mm", "rig err mm"),
           ("status", "status"), ("seconds", "time s"), ("out", "output / error"))


def summary_table(results: list[dict]) -> str:
    """One plain-text table: take, frames, duration, face / body frames, the face rig's held-out
    error, status, processing time, and the session folder (or the error of a failed take)."""
    def cell(r, key):
        v = r.get(key)
        if key == "out":
            if r["status"] != "ok":
                return r["error"]
            retried = f" (tried again: its first worker was {r['worker_died']})" if r.get("worker_died") else ""
            return str(Path(r["out"]) / "avatar.glb") + retried
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.2f}" if key != "rig_error_mm" else f"{v:.2f}"
        return str(v)
    rows = [[h for _, h in COLUMNS]] + [[cell(r, k) for k, _ in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(row[-1]))
    ok = sum(r["status"] == "ok" for r in results)
    lines.append(f"{ok} of {len(results)} takes processed" + ("" if ok == len(results) else
                                                                f", {len(results) - ok} failed"))
    return "\n".join(lines)


def write_summary(results: list[dict], out_root: Path) -> tuple[Path, Path]:
    """The results as out_root/batch_summary.json and batch_summary.csv (one row per take)."""
    js = write_text(out_root / "batch_summary.json", json.dumps(results, indent=2))  # atomic, checked
    table = io.StringIO(newline="")
    w = csv.DictWriter(table, fieldnames=list(TakeResult.__dataclass_fields__))
    w.writeheader()
    w.writerows(results)
    return js, write_text(out_root / "batch_summary.csv", table.getvalue())


