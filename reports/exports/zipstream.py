"""A zip archive written as a stream: members go out as they are produced, and nothing is kept but the
compressor's window and the bytes not yet handed on.

zipfile writes to a file object that cannot seek by putting each member's sizes in a data descriptor after
its data, which every unzip tool reads; force_zip64 lets a member pass 4 GiB without knowing its size first.
"""

import time
import zipfile
from collections.abc import Iterable, Iterator

# Level 1: CSV compresses to about a fifth either way, and the higher levels cost more time than the bytes saved.
COMPRESS_LEVEL = 1
FLUSH_BYTES = 256 * 1024


class _Sink:
    """The archive's output: collects what zipfile writes until the stream hands it on."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts, self.size = [], 0
        return data


def zip_stream(members: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
    """The archive of (name, chunks of content) members, in order, as chunks of bytes."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w") as archive:
        for name, chunks in members:
            with archive.open(_member(name), "w", force_zip64=True) as member:
                for chunk in chunks:
                    member.write(chunk)
                    if sink.size >= FLUSH_BYTES:
                        yield sink.take()
            yield sink.take()
    yield sink.take()  # the central directory, written when the archive closes


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = COMPRESS_LEVEL  # public as `compress_level` only from Python 3.13
    info.external_attr = 0o644 << 16  # a plain file readable by all, once unpacked
    return info
