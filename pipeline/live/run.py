"""TODO docstring."""
from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path

from pipeline.core.errors import InputError, PipelineError
from pipeline.live.finish import finish_take


class Interrupted(PipelineError):
    """A signal outside the take itself (while loading the models, or a second one during the export)."""

    exit_code = 130


def open_sources(specs: list[str], width=None, height=None, fps=None) -> list:
    from capture.cameras import CameraSource, CameraSpec
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


def run_capture(a, stream=None) -> int:
    """The CLI after argument parsing (also called by tests and the benchmark, in-process)."""
    from capture.recorder import check_free_space
    from pipeline.live.monitor import ConsoleMonitor, PreviewWindow, display_available
    from pipeline.live.take import LiveOptions, LiveTake, StopRequest
    from pipeline.session.stages import make_session_dir

    stream = stream or sys.stdout
    say = (lambda *x: None) if a.quiet else (lambda msg: print(msg, file=stream, flush=True))
    specs = [str(c) for c in a.cams]
    if len(set(specs)) != len(specs):
        raise InputError(f"--cams lists the same camera twice: {' '.join(specs)}")
    out = Path(a.out or Path("sessions") / datetime.now().strftime("capture_%Y%m%d-%H%M%S"))
    if out.exists() and (any(out.glob("cam*_frames.csv")) or (out / "manifest.json").exists()):
        raise InputError(f"{out} already holds a take; choose another --out")
    sources = open_sources(specs, a.width, a.height, a.fps)
    try:
        out = make_session_dir(out)
        check_free_space(out)
        opts = LiveOptions(seconds=a.seconds, tolerance_s=None if a.tolerance_ms is None else a.tolerance_ms / 1e3,
                           track_max_side=a.track_max_side, lost_after_s=a.lost_after,
                           segment_s=a.segment_s, keep_segments=a.keep_segments, vmc=a.vmc)
        stop = StopRequest()
        take = LiveTake(sources, out, opts, stop)
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
    finishing = [False]

    def on_signal(signum, _frame):
        if not stop.is_set():
            stop.request(f"interrupted ({signal.Signals(signum).name})")
        elif finishing[0]:
            raise KeyboardInterrupt  # a second signal during the export aborts it
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        preview = not a.no_preview and display_available()
        if not a.no_preview and not preview:
            say("no display: running without the preview window (counters below)")
        monitor = None
        if preview:
            try:
                monitor = PreviewWindow(stop, stream, a.quiet)
            except Exception:  # a display that cannot be used: counters instead
                monitor = None
        monitor = monitor or ConsoleMonitor(stream, a.quiet)
        say(f"recording to {out}; Ctrl-C to stop" + (f" (or after {a.seconds:g} s)" if a.seconds else ""))
        res = take.run(monitor)
        finishing[0] = True
        say(f"take ended after {res.duration_s:.1f} s: {res.reason}; exporting ...")
        manifest, failure = finish_take(res, a.max_gap)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted during the export; the recordings are kept in {out}, "
                          "no avatar written") from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
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
    if res.end_camera is not None and "lost" in res.reason:
        print(f"warning: {res.reason} after {cap['end']['at_s']} s; the take ended there", file=sys.stderr)
    return 0
