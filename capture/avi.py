"""Motion-JPEG AVI files written frame by frame so that a crash leaves them playable.

Why our own writer rather than cv2.VideoWriter: an MP4 without its closing `moov` box is
unreadable, and OpenCV's writers buffer internally. Here every frame is one `00dc` chunk written
with a single unbuffered write, the header's sizes start as 0 (FFmpeg then reads the `movi` list to
the end of the file and needs no index), and `close()` adds the `idx1` index and the true sizes.
Frames are stored as JPEG bytes, so segments can be joined, or single frames read, by copying bytes.

Plain AVI 1.0: one RIFF with 32-bit sizes, so at most 4 GiB a file (about 10 minutes of 720p at
30 fps); FFmpeg reads and seeks such files (checked to 1.3 GB), old Video-for-Windows readers stop
at 1 GiB.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

AVI_MAX_BYTES = (4 << 30) - (64 << 20)  # 32-bit RIFF sizes; larger recordings stay in segments
_AVIF_HASINDEX = 0x10
_AVIIF_KEYFRAME = 0x10

# Byte offsets of the fields patched by close(), fixed by the header layout below.
_RIFF_SIZE_AT = 4
_AVIH_AT = 12 + 12 + 8           # RIFF hdr, LIST hdrl hdr, avih chunk hdr
_STRH_AT = _AVIH_AT + 56 + 12 + 8  # avih body, LIST strl hdr, strh chunk hdr
_MOVI_LIST_AT = _STRH_AT + 56 + 8 + 40  # strh body, strf chunk hdr + body
HEADER_BYTES = _MOVI_LIST_AT + 12


def _header(width: int, height: int, fps: float, frames: int, movi_size: int, riff_size: int,
            indexed: bool) -> bytes:
    rate, scale = int(round(fps * 1000)), 1000
    avih = struct.pack("<14I", int(round(1e6 / fps)), 0, 0, _AVIF_HASINDEX if indexed else 0, frames,
                       0, 1, 0, width, height, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIiI4h", b"vids", b"MJPG", 0, 0, 0, 0, scale, rate, 0, frames,
                       0, -1, 0, 0, 0, width, height)
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    strl = b"strl" + b"strh" + struct.pack("<I", 56) + strh + b"strf" + struct.pack("<I", 40) + strf
    hdrl = b"hdrl" + b"avih" + struct.pack("<I", 56) + avih + b"LIST" + struct.pack("<I", len(strl)) + strl
    out = (b"RIFF" + struct.pack("<I", riff_size) + b"AVI " + b"LIST" + struct.pack("<I", len(hdrl))
           + hdrl + b"LIST" + struct.pack("<I", movi_size) + b"movi")
    assert len(out) == HEADER_BYTES
    return out


class MjpegAviWriter:
    """Append JPEG frames to an AVI file; every `write_jpeg` reaches the OS before it returns."""

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float):
        self.path = Path(path)
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._pos = 0
        self._index: list[tuple[int, int]] = []  # (offset from the 'movi' tag, size)
        self._write(_header(self.width, self.height, self.fps, 0, 0, 0, indexed=False))

    @property
    def frames(self) -> int:
        return len(self._index)

    @property
    def bytes(self) -> int:
        return self._pos

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # os.write may write less than asked (signals, pipes); loop until all is out
            n = os.write(self._fd, view)
            view = view[n:]
            self._pos += n

    def write_jpeg(self, jpeg: bytes | np.ndarray) -> None:
        data = bytes(jpeg)
        pad = b"\0" if len(data) & 1 else b""
        self._index.append((self._pos - (_MOVI_LIST_AT + 8), len(data)))
        self._write(b"00dc" + struct.pack("<I", len(data)) + data + pad)

    def close(self, fps: float | None = None) -> None:
        """Write the index and the true sizes (and, if given, the measured frame rate)."""
        if self._fd < 0:
            return
        try:
            movi_end = self._pos
            idx = b"".join(struct.pack("<4sIII", b"00dc", _AVIIF_KEYFRAME, off, size)
                           for off, size in self._index)
            self._write(b"idx1" + struct.pack("<I", len(idx)) + idx)
            head = _header(self.width, self.height, fps or self.fps, len(self._index),
                           movi_end - (_MOVI_LIST_AT + 8), self._pos - 8, indexed=True)
            os.pwrite(self._fd, head, 0)
        finally:
            os.close(self._fd)
            self._fd = -1

    def abandon(self) -> None:
        """Close without touching the header (after a write error: the file stays as a crash leaves it)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class AviInfo:
    width: int
    height: int
    fps: float
    chunks: list[tuple[int, int]]  # (absolute file offset of the JPEG bytes, size) per frame

    @property
    def frames(self) -> int:
        return len(self.chunks)


def scan(path: str | os.PathLike) -> AviInfo:
    """Frame chunks of an MJPEG AVI written by MjpegAviWriter, by walking the `movi` list (the
    index is not needed, so files cut short by a crash are read up to their last whole frame)."""
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[-4:] != b"movi":
            raise ValueError(f"{path}: not an MJPEG AVI written by dhcap")
        width, height = struct.unpack_from("<II", head, _AVIH_AT + 32)
        scale, rate = struct.unpack_from("<II", head, _STRH_AT + 20)
        movi_size = struct.unpack_from("<I", head, _MOVI_LIST_AT + 4)[0]
        size = os.fstat(f.fileno()).st_size
        end = min(size, _MOVI_LIST_AT + 8 + movi_size) if movi_size else size
        chunks = []
        pos = HEADER_BYTES
        while pos + 8 <= end:
            f.seek(pos)
            tag, n = struct.unpack("<4sI", f.read(8))
            if tag != b"00dc" or pos + 8 + n > end:
                break
            chunks.append((pos + 8, n))
            pos += 8 + n + (n & 1)
    return AviInfo(width, height, rate / scale if scale else 0.0, chunks)


def read_jpeg(f, chunk: tuple[int, int]) -> bytes:
    f.seek(chunk[0])
    return f.read(chunk[1])


def decode(jpeg: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def join(parts: list[Path], dst: Path, fps: float | None = None, frames: list[int] | None = None) -> int:
    """Concatenate MJPEG AVI files into one by copying their JPEG bytes; returns the frame count.
    frames: how many frames to take from the start of each part (default: all of them)."""
    infos = [scan(p) for p in parts]
    w, h = infos[0].width, infos[0].height
    out = MjpegAviWriter(dst, w, h, fps or infos[0].fps)
    try:
        for k, (p, info) in enumerate(zip(parts, infos)):
            with open(p, "rb") as f:
                for c in info.chunks[:None if frames is None else frames[k]]:
                    out.write_jpeg(read_jpeg(f, c))
        out.close(fps)
    except BaseException:
        out.abandon()
        dst.unlink(missing_ok=True)
        raise
    return out.frames
