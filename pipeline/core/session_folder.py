"""Session folders written whole or not at all, and checked before they are read.

Writing: `staged_session(out, overwrite)` yields a temporary sibling folder
(`<out>.incomplete-XXXXXXXX`) that the stages fill; only when they all succeed is it renamed to
`out`, replacing a previous session whole with `overwrite` (never mixing the two). Any error,
Ctrl-C or SIGTERM removes the temporary folder, so `out` is either the new session, the old one
untouched, or absent; a `kill -9` can leave only the `.incomplete-` folder, never a mix.
`out` may not exist yet or be an empty folder; a folder that already holds a session is refused
without `overwrite`, and a non-empty folder that holds no session is refused even with it (so a
mistyped --out never deletes unrelated files).

Manifest: `write_manifest(folder, manifest)` writes manifest.json last, with "files":
{relative path: {"bytes": size, "sha256": hex digest}} for every other file in the folder.
Reading: `verify_session(folder)` checks that list (every file there, same size and SHA-256)
and returns the manifest; InputError (exit code 3) in one line saying what is missing or altered.

Names: `safe_stem(name)` makes a folder name from an input's name that cannot leave --out.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from pipeline.core.assets import sha256_file
from pipeline.core.atomic import cause, write_text
from pipeline.core.errors import InputError, OutputError, PipelineError

MANIFEST = "manifest.json"
FILES_KEY = "files"  # the manifest's list of every other file: {relative path: {bytes, sha256}}
SESSION_MARKERS = (MANIFEST, "tracks.npz", "avatar.glb")  # a folder holding any of these is a session
STAGING_TAG = ".incomplete-"  # the temporary sibling a session is built in: <name>.incomplete-XXXXXXXX
REPLACED_TAG = ".replaced-"   # the previous session, moved aside for the instant of the swap
FALLBACK_STEM = "take"        # the folder name of an input whose name has nothing usable left
MAX_STEM_BYTES = 200          # NAME_MAX is 255 bytes; room for the staging tag and a _N suffix
SEPARATORS = "/\\"            # path separators (POSIX and Windows) are replaced in names
FOLDER_MODE = 0o777           # a session folder's mode before the umask, as mkdir makes it
REDO = "process the take again"  # what a user does about a session that fails its check
# --overwrite's help, the same in pipeline.process and pipeline.batch
OVERWRITE_HELP = ("replace a session already in the session folder, whole; without it such a folder is refused, "
                  "and a non-empty folder that holds no session is refused even with it. A session is built in "
                  "a temporary sibling folder (<name>.incomplete-*) and renamed into place only once complete, "
                  "manifest.json last, listing every file with its size and SHA-256")
MAX_NAMED = 3                 # files named in the one-line verdict before "and N more"


def safe_stem(name: str) -> str:
    """A folder name made from an input's name that stays inside its parent: control characters
    removed, separators replaced by "_", surrounding spaces and dots stripped ("..", "." and ""
    become "take"), at most MAX_STEM_BYTES bytes of UTF-8."""
    s = "".join("_" if c in SEPARATORS else c for c in name if not unicodedata.category(c).startswith("C"))
    s = s.strip(" .\t")
    s = s.encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", "ignore").strip(" .")
    return s or FALLBACK_STEM


def _umask() -> int:
    """The process's umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_session(folder: Path) -> bool:
    """Whether the folder holds (part of) a session written by dhcap."""
    return any((folder / m).exists() for m in SESSION_MARKERS)


def check_target(out: Path, overwrite: bool, shown: Path | None = None) -> None:
    """Refuse an `out` the new session may not replace (InputError, one line, naming it as
    `shown`, the path the user gave): a file, a folder holding a session (unless overwrite), a
    non-empty folder holding none (always)."""
    shown = shown or out
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{shown} is a file, not a session folder; choose another --out")
    try:
        empty = next(out.iterdir(), None) is None
    except OSError as e:
        raise OutputError(f"cannot read {shown}: {cause(e)}") from None
    if empty:
        return
    if not is_session(out):
        raise InputError(f"{shown} is not empty and holds no session; choose another --out "
                         f"(--overwrite only replaces a session)")
    if not overwrite:
        raise InputError(f"{shown} already holds a session; add --overwrite to replace it whole, "
                         f"or choose another --out")


def discard_session(folder: Path) -> None:
    """Remove a session folder whole (for --overwrite of a live take): renamed aside first, so
    that a crash part-way through deleting never leaves a half session under its name."""
    aside = folder.with_name(folder.name + REPLACED_TAG + secrets.token_hex(4))
    try:
        os.rename(folder, aside)
    except OSError as e:
        raise OutputError(f"cannot replace {folder}: {cause(e)}") from None
    shutil.rmtree(aside, ignore_errors=True)


def _swap_in(work: Path, out: Path, overwrite: bool, shown: Path) -> None:
    """Rename the finished `work` folder to `out` (absolute; `shown` as the user gave it), moving
    a previous session aside and deleting it afterwards; OutputError when the renames fail (then
    `out` is as it was)."""
    check_target(out, overwrite, shown)  # again: another run may have written there meanwhile
    old = None
    try:
        if out.exists():
            if next(out.iterdir(), None) is None:
                out.rmdir()
            else:
                old = out.with_name(out.name + REPLACED_TAG + secrets.token_hex(4))
                os.rename(out, old)
        os.rename(work, out)
    except OSError as e:
        if old is not None and not out.exists():
            os.rename(old, out)
        raise OutputError(f"cannot move the session into {shown}: {cause(e)}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_session(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder of `out` to write the session into; rename it to `out`
    when the block ends without an error, remove it otherwise (see the module docstring).
    Raises InputError (one line) at once for an `out` it may not replace, OutputError when the
    folder cannot be made; a PipelineError from the block names `out`, not the temporary folder."""
    shown = Path(out)
    out = Path(os.path.abspath(shown))  # "--out ." has a name and a parent to build beside
    check_target(out, overwrite, shown)
    if out.is_dir() and not os.access(out, os.W_OK):  # the user made it read-only: leave it so
        raise OutputError(f"cannot write into {shown}: {os.strerror(errno.EACCES)}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=out.name + STAGING_TAG, dir=out.parent))
        os.chmod(work, FOLDER_MODE & ~_umask())  # mkdtemp's 0700 would stay on the session
    except OSError as e:
        raise OutputError(f"cannot create session folder {shown}: {cause(e)}") from None
    try:
        yield work
        _swap_in(work, out, overwrite, shown)
    except PipelineError as e:
        e.args = (str(e).replace(str(work), str(shown)),)  # the user knows the folder they asked for
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already after the rename


def file_list(folder: Path) -> dict:
    """{relative POSIX path: {"bytes": size, "sha256": hex}} of every file under `folder`
    except manifest.json, sorted by path."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel != MANIFEST:
            out[rel] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    return out


def write_manifest(folder: Path, manifest: dict) -> dict:
    """manifest.json into `folder`, written last and atomically, with its "files" list made now
    from the folder itself (so it never names a file that is not there); returns the manifest."""
    try:
        manifest[FILES_KEY] = file_list(folder)
    except OSError as e:
        raise OutputError(f"cannot read back {folder}: {cause(e)}") from None
    write_text(folder / MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def _named(names: list[str]) -> str:
    """"a, b, c and 2 more"."""
    more = len(names) - MAX_NAMED
    return ", ".join(names[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


def _listed_path(folder: Path, rel: str) -> Path | None:
    """The file a manifest entry names, or None for a name that would leave the folder."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        return None
    return folder.joinpath(*parts)


def read_manifest(folder: str | os.PathLike) -> dict:
    """The session's manifest.json as a dict (unchecked); InputError (one line) when it is
    missing or unreadable."""
    mpath = Path(folder) / MANIFEST
    if not mpath.is_file():
        raise InputError(f"{folder}: no {MANIFEST}; not a session, or its writing was cut short; {REDO}")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{mpath}: unreadable ({type(e).__name__}); {REDO}") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{mpath}: not a dhcap manifest; {REDO}")
    return manifest


def verify_session(folder: str | os.PathLike) -> dict:
    """The manifest of a session folder, once every file its "files" list names is there with
    its size and SHA-256. InputError (exit code 3), one line, when the manifest is missing or
    unreadable, has no list, or files are missing or altered (named, at most MAX_NAMED)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    files = manifest.get(FILES_KEY)
    if not isinstance(files, dict):
        raise InputError(f"{folder / MANIFEST} has no list of files (written by an older dhcap?); {REDO}")
    missing, altered = [], []
    for rel, want in files.items():
        p = _listed_path(folder, rel)
        if p is None or not p.is_file():
            missing.append(rel)
        elif (not isinstance(want, dict) or p.stat().st_size != want.get("bytes")
              or sha256_file(p) != want.get("sha256")):
            altered.append(rel)
    if missing or altered:
        what = ([f"missing {_named(missing)}"] if missing else []) + \
               ([f"altered {_named(altered)}"] if altered else [])
        raise InputError(f"{folder} does not match its {MANIFEST} ({'; '.join(what)}); {REDO}")
    return manifest
