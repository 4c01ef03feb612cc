"""The benchmarks' tracking cache: a video tracked once, kept in ~/.cache/dhcap/bench_tracks (or
$DHCAP_BENCH_TRACKS) under its name, the video's SHA-256 and the tracking code's
(pipeline/tracking/*.py: a changed tracker tracks again)."""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core.samples import fetch  # noqa: E402
from pipeline.core.tracks import Tracks  # noqa: E402
from pipeline.tracking.video import track_video  # noqa: E402

CACHE = Path(os.environ.get("DHCAP_BENCH_TRACKS", Path.home() / ".cache" / "dhcap" / "bench_tracks"))


def tracked(name: str, path: str | os.PathLike | None = None) -> Tracks:
    """Tracks of the video at `path` (default: the registered sample `name`), from the cache or
    tracked now and cached."""
    path = Path(fetch(name) if path is None else path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    code = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((ROOT / "pipeline" / "tracking").glob("*.py"))))
    cached = CACHE / f"{name}_{digest}_{code.hexdigest()[:8]}.npz"
    if cached.is_file():
        return Tracks.load(cached)
    print(f"tracking {name}", flush=True)
    tr = track_video(path, progress=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    tr.save(cached)
    return tr
