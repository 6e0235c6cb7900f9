"""Request bodies as the server would read them: content-encoding undone once."""

from __future__ import annotations

import zlib
from types import ModuleType

from aipolicy._errors import AipolicyError

brotli: ModuleType | None
zstandard: ModuleType | None
try:
    import brotli  # type: ignore[import-untyped,no-redef]  # brought by mitmproxy
except ImportError:  # pragma: no cover
    brotli = None
try:
    import zstandard  # brought by mitmproxy
except ImportError:  # pragma: no cover
    zstandard = None


class BodyTooLarge(AipolicyError, ValueError):
    """A request body is larger than the policy lets the proxy read (``limit`` bytes). ``size`` is
    its size when known; a decoded body is only known to be larger (decoding stops past the limit)."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        self.limit = limit
        self.size = size
        what = f"body of {size:,} bytes" if size is not None else "decoded body"
        super().__init__(f"{what} larger than {limit} bytes")


def decode_body(data: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding (gzip, deflate, br, zstd; several in order), reading at most ``limit`` bytes.

    Raises BodyTooLarge for output over the limit, ValueError for an unknown or broken encoding."""
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            data = _inflate(data, zlib.MAX_WBITS | 16, limit)
        elif coding == "deflate":
            try:
                data = _inflate(data, zlib.MAX_WBITS, limit)
            except BodyTooLarge:
                raise  # a zlib stream past the limit is not broken: trying it as raw deflate would say so
            except ValueError:
                data = _inflate(data, -zlib.MAX_WBITS, limit)  # raw deflate, as some clients send it
        elif coding == "br" and brotli is not None:
            data = _unbrotli(data, limit)
        elif coding == "zstd" and zstandard is not None:
            data = _unzstd(data, limit)
        else:
            raise ValueError(f"unsupported content-encoding {coding!r}")
        if len(data) > limit:
            raise BodyTooLarge(limit)
    return data


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as error:
        raise ValueError(f"broken compressed body: {error}") from None
    if len(out) > limit:
        raise BodyTooLarge(limit)
    return out


def _unbrotli(data: bytes, limit: int) -> bytes:
    # brotli's Decompressor has no output cap: feed it small pieces and stop once over
    # the limit, so a bomb costs at most about one piece's output more than the limit.
    assert brotli is not None
    decompressor = brotli.Decompressor()
    parts: list[bytes] = []
    size = 0
    try:
        for start in range(0, len(data), _BROTLI_PIECE):
            part = decompressor.process(data[start : start + _BROTLI_PIECE])
            parts.append(part)
            size += len(part)
            if size > limit:
                break
        else:
            if not decompressor.is_finished():
                raise ValueError("broken compressed body: truncated brotli stream")
    except brotli.error as error:
        raise ValueError(f"broken compressed body: {error}") from None
    return b"".join(parts)


_BROTLI_PIECE = 64


def _unzstd(data: bytes, limit: int) -> bytes:
    assert zstandard is not None
    try:
        with zstandard.ZstdDecompressor().stream_reader(data) as reader:
            return bytes(reader.read(limit + 1))
    except zstandard.ZstdError as error:
        raise ValueError(f"broken compressed body: {error}") from None


__all__ = ["BodyTooLarge", "decode_body"]
