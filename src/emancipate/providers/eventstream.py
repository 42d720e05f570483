"""The `application/vnd.amazon.eventstream` framing of AWS streaming answers (ConverseStream).

Pure: bytes in, messages out, no I/O. One message on the wire:

    total length (u32) | headers length (u32) | prelude CRC32 (u32, of the 8 bytes before)
    headers: name length (u8), name, value type (u8), value; repeated
    payload
    message CRC32 (u32, of everything before it)

all big-endian, CRC32 being zlib's (IEEE 802.3). Bedrock sends `:message-type` `event` (with
`:event-type`), `exception` (with `:exception-type`, the payload a JSON `{"message"}`) or
`error` (`:error-code`, `:error-message`). Tested against botocore's own decoder
(`tests/test_bedrock.py`).

Errors: `EventStreamError` for a frame that is not one (bad lengths or checksums): the bytes
after it cannot be trusted, so the caller ends the stream; `FrameTooLarge` (a subclass) for a
message declaring more than the decoder's bound.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

HeaderValue = bool | int | bytes | str
_PRELUDE = 12  # total length, headers length, prelude CRC
_MIN_MESSAGE = 16  # prelude plus the message CRC


class EventStreamError(Exception):
    """The bytes are not a valid event-stream message."""


class FrameTooLarge(EventStreamError):
    """A message declares more bytes than the decoder accepts."""


@dataclass(slots=True)
class EventMessage:
    headers: dict[str, HeaderValue]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str:
        """`:event-type` of an event, `:exception-type` of an exception, `:error-code` of an
        error."""
        for name in (":event-type", ":exception-type", ":error-code"):
            if name in self.headers:
                return str(self.headers[name])
        return ""


class EventStreamDecoder:
    """Feed it the body as it arrives; it returns the messages completed by each piece."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished message (a stream that ends with some was cut)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[EventMessage]:
        self._buffer += data
        out: list[EventMessage] = []
        while len(self._buffer) >= _PRELUDE:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("event-stream prelude checksum mismatch")
            if total < _MIN_MESSAGE or headers_length > total - _MIN_MESSAGE:
                raise EventStreamError(f"event-stream message lengths are inconsistent "
                                       f"(total {total}, headers {headers_length})")
            if total > self.max_message:
                raise FrameTooLarge(f"event-stream message of {total} bytes")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            out.append(decode_message(frame, headers_length))
        return out


def decode_message(frame: bytes, headers_length: int) -> EventMessage:
    """One whole message (its prelude already checked)."""
    (message_crc,) = struct.unpack_from(">I", frame, len(frame) - 4)
    if zlib.crc32(frame[:-4]) != message_crc:
        raise EventStreamError("event-stream message checksum mismatch")
    headers = decode_headers(frame[_PRELUDE:_PRELUDE + headers_length])
    return EventMessage(headers, frame[_PRELUDE + headers_length:-4])


def decode_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    at = 0
    try:
        while at < len(raw):
            size = raw[at]
            name = raw[at + 1:at + 1 + size].decode()
            at += 1 + size
            kind = raw[at]
            headers[name], at = _header_value(raw, kind, at + 1)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError("event-stream headers are malformed") from exc
    return headers


# value type -> struct format of a fixed-size value (2: byte, 3: short, 4: int, 5: long,
# 8: timestamp in ms)
_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


def _header_value(raw: bytes, kind: int, at: int) -> tuple[HeaderValue, int]:
    if kind in (0, 1):  # boolean true, false: no value bytes
        return kind == 0, at
    if kind in _FIXED:
        fmt = _FIXED[kind]
        return struct.unpack_from(fmt, raw, at)[0], at + struct.calcsize(fmt)
    if kind in (6, 7):  # byte array, string: u16 length
        (size,) = struct.unpack_from(">H", raw, at)
        value = raw[at + 2:at + 2 + size]
        if len(value) != size:
            raise IndexError("header value runs past the headers")
        return (value.decode() if kind == 7 else value), at + 2 + size
    if kind == 9:  # uuid
        if len(raw) < at + 16:
            raise IndexError("uuid runs past the headers")
        return raw[at:at + 16], at + 16
    raise EventStreamError(f"event-stream header value type {kind} is unknown")
