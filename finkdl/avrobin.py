"""The few pieces of Avro's binary encoding finkdl writes itself (container headers, longs).

Schemaless values joined are exactly a container file's data block, so finkdl writes Avro
files, and hands batches to the fast decoder, without re-encoding any alert.
"""
from __future__ import annotations

MAGIC = b"Obj\x01"


def long_bytes(n: int) -> bytes:
    """Avro's zig-zag varint encoding of a long."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def container_header(meta: dict[bytes, bytes], sync: bytes) -> bytes:
    """Magic, the metadata map (``avro.schema``, ``avro.codec``, ...) and the sync marker."""
    return b"".join([MAGIC, long_bytes(len(meta)),
                     *(long_bytes(len(k)) + k + long_bytes(len(v)) + v for k, v in meta.items()),
                     long_bytes(0), sync])


def block(count: int, data: bytes, sync: bytes) -> bytes:
    """One data block: record count, byte size, the records, the sync marker."""
    return b"".join([long_bytes(count), long_bytes(len(data)), data, sync])
