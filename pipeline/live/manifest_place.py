"""A live take's manifest.json, written where there is room: in the session folder, or when the
disk there is full (or the folder no longer writable) in the next place that has room, saying so.

`write_take_manifest(session, manifest, warn)` returns where it was written. The manifest lists
every file of the session folder with its size and SHA-256 either way (a manifest written
elsewhere names the session folder it describes in "session_folder"); `warn(line)` is told when it
had to go elsewhere. OutputError (one line, exit code 6) only when no place would take it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pipeline.core.atomic import write_text
from pipeline.core.errors import OutputError
from pipeline.core.session_folder import FILES_KEY, MANIFEST, file_list, write_manifest


def fallback_places(session: Path) -> list[Path]:
    """Where a take's manifest goes when its session folder will not take it, in order: the
    session's parent folder, the temporary folder ($TMPDIR), the home folder."""
    places = [session.parent, Path(tempfile.gettempdir()), Path.home()]
    seen, out = set(), []
    for p in places:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def write_take_manifest(session: Path, manifest: dict, warn=None) -> Path:
    """manifest.json into `session`, else `<session name>.manifest.json` in the first of
    `fallback_places` that takes it; returns its path (see the module docstring)."""
    session = Path(session)
    try:
        write_manifest(session, manifest)
        return session / MANIFEST
    except OutputError as e:
        first = e
    try:
        manifest[FILES_KEY] = file_list(session)
    except OSError:
        pass  # the folder cannot be read back: the manifest goes without its list
    manifest["session_folder"] = str(session.resolve())
    text = json.dumps(manifest, indent=2)
    for place in fallback_places(session):
        dst = place / f"{session.name}.{MANIFEST}"
        try:
            write_text(dst, text)
        except OutputError:
            continue
        if warn is not None:
            warn(f"warning: {first}; the manifest was written to {dst} instead")
        return dst
    raise first
