"""The text a reportlab PDF shows, page by page: enough of a reader for checking our prints (no pypdf here)."""

import base64
import re
import zlib


def _streams(pdf: bytes) -> dict[int, bytes]:
    """Every object's stream, decoded (ASCII85 and Flate, as reportlab writes them), by object number."""
    found = {}
    for match in re.finditer(rb"\n(\d+) 0 obj\b", pdf):
        end = pdf.find(b"endobj", match.end())
        body = pdf[match.end() : end]
        head = re.match(rb"\s*<<(.*?)>>\s*stream\r?\n", body, re.S)
        if head is None:
            continue
        length = re.search(rb"/Length (\d+)", head[1])
        assert length is not None
        data = body[head.end() : head.end() + int(length[1])]
        for name in re.findall(rb"/(\w+)Decode", head[1]):
            if name == b"ASCII85":
                data = base64.a85decode(data.strip(), adobe=True)
            elif name == b"Flate":
                data = zlib.decompress(data)
        found[int(match[1])] = data
    return found


def _unescape(literal: bytes) -> str:
    simple = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}

    def one(match: re.Match[bytes]) -> bytes:
        escape = match[1]
        if escape[:1].isdigit():
            return bytes([int(escape, 8)])
        return simple.get(escape, escape)

    return re.sub(rb"\\([0-7]{1,3}|.)", one, literal, flags=re.S).decode("cp1252")


def pages(pdf: bytes) -> list[str]:
    """Each page's strings, in drawing order, joined by single spaces."""
    streams = _streams(pdf)
    kids = re.search(rb"/Kids \[([^\]]*)\]", pdf)
    assert kids is not None
    texts = []
    for page in re.findall(rb"(\d+) 0 R", kids[1]):
        ref = re.compile(rb"/Contents (\d+) 0 R").search(pdf, pdf.index(b"\n%s 0 obj" % page))
        assert ref is not None
        content = streams[int(ref[1])]
        strings = [_unescape(s) for s in re.findall(rb"\(((?:\\.|[^\\()])*)\)\s*Tj", content)]
        texts.append(" ".join(strings))
    return texts
