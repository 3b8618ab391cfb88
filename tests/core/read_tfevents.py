#!/usr/bin/env python3
"""Decodes a TensorBoard event file with the Python standard library only.

An independent check of src/core/tensorboard.cpp: its own bit-at-a-time CRC-32C and protobuf decoder,
written from tensorboard/compat/proto/{event,summary,tensor}.proto and the TFRecord framing
(uint64 length LE, uint32 masked CRC of the length, data, uint32 masked CRC of the data).

    python3 tests/core/read_tfevents.py run/tb/events.out.tfevents.*

Prints one line per event, e.g.
    step=3 wall_time=1.5 tag=loss scalar=0.25
Exits 1 with a message on a bad CRC, a truncated record or a malformed protobuf.
Used by TensorBoardTest.PythonStdlibReaderAgrees in tests/core/tensorboard_test.cpp.
"""
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    with open(path, "rb") as f:
        buf = f.read()
    off, index = 0, 0
    while off < len(buf):
        if len(buf) - off < 12:
            raise ValueError(f"{path}: record {index} at byte {off}: truncated header")
        header = buf[off:off + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", buf[off + 8:off + 12])
        if length_crc != masked_crc32c(header):
            raise ValueError(f"{path}: record {index} at byte {off}: length CRC mismatch")
        if off + 12 + length + 4 > len(buf):
            raise ValueError(f"{path}: record {index} at byte {off}: truncated data")
        data = buf[off + 12:off + 12 + length]
        (data_crc,) = struct.unpack("<I", buf[off + 12 + length:off + 16 + length])
        if data_crc != masked_crc32c(data):
            raise ValueError(f"{path}: record {index} at byte {off}: data CRC mismatch")
        yield data
        off += 16 + length
        index += 1


def varint(buf, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def fields(msg):
    """{field_number: [raw values]}: ints for varints, bytes for the other wire types."""
    out, pos = {}, 0
    while pos < len(msg):
        key, pos = varint(msg, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(msg, pos)
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, pos = msg[pos:pos + n], pos + n
        elif wire == 2:
            n, pos = varint(msg, pos)
            value, pos = msg[pos:pos + n], pos + n
        else:
            raise ValueError(f"unexpected wire type {wire}")
        if pos > len(msg):
            raise ValueError("field runs past the end of its message")
        out.setdefault(number, []).append(value)
    return out


def one(f, number, default=None):
    values = f.get(number)
    return values[-1] if values else default


def signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def describe_value(v):
    tag = one(v, 1, b"").decode()
    if 2 in v:  # simple_value
        return f"tag={tag} scalar={struct.unpack('<f', one(v, 2))[0]!r}"
    if 4 in v:  # image
        img = fields(one(v, 4))
        return (f"tag={tag} image={one(img, 1, 0)}x{one(img, 2, 0)}x{one(img, 3, 0)} "
                f"bytes={len(one(img, 4, b''))}")
    if 6 in v:  # audio
        aud = fields(one(v, 6))
        rate = struct.unpack("<f", one(aud, 1, b"\0\0\0\0"))[0]
        return (f"tag={tag} audio={rate!r}Hz channels={one(aud, 2, 0)} frames={one(aud, 3, 0)} "
                f"bytes={len(one(aud, 4, b''))} type={one(aud, 5, b'').decode()}")
    if 8 in v:  # tensor (text plugin: DT_STRING = 7)
        tensor = fields(one(v, 8))
        plugin = ""
        if 9 in v:
            plugin_data = fields(one(fields(one(v, 9)), 1, b""))
            plugin = one(plugin_data, 1, b"").decode()
        if one(tensor, 1) != 7:
            return f"tag={tag} tensor dtype={one(tensor, 1)} plugin={plugin}"
        texts = "|".join(s.decode() for s in tensor.get(8, []))
        return f"tag={tag} text={texts} plugin={plugin}"
    return f"tag={tag} unknown"


def describe_event(data):
    ev = fields(data)
    parts = [f"step={signed64(one(ev, 2, 0))}"]
    if 1 in ev:
        parts.append(f"wall_time={struct.unpack('<d', one(ev, 1))[0]!r}")
    if 3 in ev:
        parts.append(f"file_version={one(ev, 3).decode()}")
    for value in fields(one(ev, 5, b"")).get(1, []):
        parts.append(describe_value(fields(value)))
    return " ".join(parts)


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} EVENT_FILE", file=sys.stderr)
        return 2
    try:
        for data in read_records(argv[1]):
            print(describe_event(data))
    except (OSError, ValueError, UnicodeDecodeError, struct.error) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
