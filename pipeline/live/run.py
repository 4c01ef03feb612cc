"""One live take from start to end (`python -m pipeline.capture` after its arguments are parsed).

`run_capture(cams, options)` opens the cameras (device indices, video files standing in for
cameras, stream URLs), makes the session folder, loads the models, records and tracks until the
take ends (Ctrl-C or SIGTERM, q in the preview, the time limit, a file that ends or a camera
lost), exports the take (pipeline.live.finish) and says what was made. Progress goes to `stream`
(stdout), warnings to stderr; errors are raised as PipelineErrors with their exit codes
(`Interrupted`: 130). Returns 0.
"""
from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Sequence

from capture.cameras import CameraSource, CameraSpec
from capture.recorder import check_free_space
from pipeline.core.errors import EXIT_TERMINATED, InputError, PipelineError, Terminated
from pipeline.core.session_folder import discard_session, is_session
from pipeline.live.finish import finish_take
from pipeline.live.monitor import ConsoleMonitor, PreviewWindow, display_available
from pipeline.live.options import CaptureOptions, LiveOptions, StopRequest
from pipeline.live.take import LiveTake, TakeResult
from pipeline.session.stages import make_session_dir


class Interrupted(PipelineError):
    """A signal outside the take itself (while loading the models, or a second one during the export)."""

    exit_code = 130


def open_sources(specs: list[str], width=None, height=None, fps=None) -> list:
    """Open every camera (CameraSource, in order); all are closed again if one fails."""
    sources = []
    try:
        for text in specs:
            src = CameraSource(CameraSpec.parse(text), width, height, fps)
            src.open()
            sources.append(src)
    except BaseException:
        for s in sources:
            s.close()
        raise
    return sources


def run_capture(cams: Sequence, options: CaptureOptions | None = None, stream=None) -> int:
    """The command after argument parsing (also called by tests and the benchmark, in-process):
    cams are device indices, video files or stream URLs; see the module docstring."""
    opts = options or CaptureOptions()
    stream = stream or sys.stdout
    say = (lambda *x: None) if opts.quiet else (lambda msg: print(msg, file=stream, flush=True))
    specs = [str(c) for c in cams]
    out = session_path(specs, opts.out, opts.overwrite)
    sources = open_sources(specs, opts.width, opts.height, opts.fps)
    take = prepare_take(sources, out, opts.live, say)
    res, manifest, failure = record_and_export(take, opts, stream, say)
    report_take(res, manifest, failure, take.session, say)
    return 0


def session_path(specs: list[str], out: str | Path | None, overwrite: bool = False) -> Path:
    """The take's session folder (default sessions/capture_<date-time>); InputError when a camera is
    listed twice or the folder already holds a take and `overwrite` is not set (with it, the old
    take is removed whole before the new one starts: the recordings go straight into the folder,
    so that a killed take keeps them, and old and new are never mixed)."""
    if len(set(specs)) != len(specs):
        raise InputError(f"--cams lists the same camera twice: {' '.join(specs)}")
    path = Path(out or Path("sessions") / datetime.now().strftime("capture_%Y%m%d-%H%M%S"))
    if path.exists() and (any(path.glob("cam*_frames.csv")) or is_session(path)):
        if not overwrite:
            raise InputError(f"{path} already holds a take; add --overwrite to replace it, or choose another --out")
        discard_session(path)
    return path


def prepare_take(sources: list, out: Path, live: LiveOptions, say) -> LiveTake:
    """Make the session folder (with room to record), the take's threads, and load the models;
    the sources are closed if anything fails (Interrupted on Ctrl-C: nothing recorded yet)."""
    try:
        out = make_session_dir(out)
        check_free_space(out)
        take = LiveTake(sources, out, live, StopRequest())
        for c, i in enumerate(take.infos):
            say(f"cam{c}: {i.spec} ({i.kind}) {i.width}x{i.height} at {i.fps:g} fps")
        say("loading the face and pose models ...")
        take.load()
    except KeyboardInterrupt:
        for s in sources:
            s.close()
        raise Interrupted("interrupted before the take started; nothing recorded") from None
    except BaseException:
        for s in sources:
            s.close()
        raise
    return take


def open_monitor(stop: StopRequest, preview: bool, quiet: bool, stream, say):
    """The preview window when asked for and a display is there, else console counters."""
    can_preview = preview and display_available()
    if preview and not can_preview:
        say("no display: running without the preview window (counters below)")
    monitor = None
    if can_preview:
        try:
            monitor = PreviewWindow(stop, stream, quiet)
        except Exception:  # a display that cannot be used: counters instead
            monitor = None
    return monitor or ConsoleMonitor(stream, quiet)


def record_and_export(take: LiveTake, opts: CaptureOptions, stream,
                      say) -> tuple[TakeResult, dict, PipelineError | None]:
    """Run the take until it ends, then export it; returns (the take's result, the manifest, the
    error that ended the take or None). The first SIGINT / SIGTERM ends the take; a second one
    during the export aborts it (Interrupted: the recordings are kept)."""
    stop, out = take.stop, take.session
    finishing = [False]

    def on_signal(signum, _frame):
        if not stop.is_set():
            stop.request(f"interrupted ({signal.Signals(signum).name})")
        elif finishing[0]:
            # a second signal during the export aborts it, saying which it was
            raise Terminated(signal.Signals(signum).name) if signum == signal.SIGTERM else KeyboardInterrupt
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        monitor = open_monitor(stop, opts.preview, opts.quiet, stream, say)
        seconds = opts.live.seconds
        say(f"recording to {out}; Ctrl-C to stop" + (f" (or after {seconds:g} s)" if seconds else ""))
        res = take.run(monitor)
        finishing[0] = True
        say(f"take ended after {res.duration_s:.1f} s: {res.reason}; exporting ...")
        manifest, failure = finish_take(res, opts.max_gap_s)
    except KeyboardInterrupt as e:
        err = Interrupted(f"{'terminated (SIGTERM)' if isinstance(e, Terminated) else 'interrupted'} during "
                          f"the export; the recordings are kept in {out}, no avatar written")
        err.exit_code = EXIT_TERMINATED if isinstance(e, Terminated) else err.exit_code
        raise err from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return res, manifest, failure


def report_take(res: TakeResult, manifest: dict, failure: PipelineError | None, out: Path, say) -> None:
    """Per camera what was recorded and tracked; then the take's failure is raised, or the avatar
    is reported with the export's warnings (stderr) and a lost camera's."""
    cap = manifest["capture"]
    for c in cap["cameras"]:
        fr = c["frames"]
        say(f"cam{c['camera']}: {fr['recorded']} frames recorded ({c['recording']['video'] or 'segments'}), "
            f"{fr['tracked']} tracked ({fr['face']} face, {fr['body']} body), "
            f"{sum(fr['dropped'].values())} dropped by the tracker queue, latency median "
            f"{c['latency_ms']['median']} ms, p95 {c['latency_ms']['p95']} ms")
    if failure is not None:
        raise failure
    say(f"{out}/avatar.glb: primary camera {cap['primary_camera']}, {manifest['input']['frames']} frames, "
        f"{manifest['animation']['duration_s']:.2f} s")
    for w in manifest.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    for c in cap["cameras"]:
        errors = c["tracker_errors"]
        if errors["frames"]:
            print(f"warning: cam{c['camera']}: tracking failed on {errors['frames']} frames (kept untracked; "
                  f"last: {errors['last']})", file=sys.stderr)
    if res.end_camera is not None and "lost" in res.reason:
        print(f"warning: {res.reason} after {cap['end']['at_s']} s; the take ended there", file=sys.stderr)
