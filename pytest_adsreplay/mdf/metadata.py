"""A recording's header metadata, read from its header block without asammdf."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

#: Major MDF versions asammdf reads (2.x and 3.x share the classic block layout).
SUPPORTED_VERSIONS = ("2", "3", "4")
_MAX_COMMENT_BYTES = 1 << 20
#: MDF 3 HD block: id+size (4), 3 links (12), dg count (2), date (10), time (8); then
#: author, organization, project and subject (32 bytes each).
_V3_HD_FIELDS = 36
_ASAMMDF_NOTE = re.compile(r"\n?[^\n<>]*: updated by asammdf [\w.+-]+")


def _tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _properties(node: ET.Element) -> dict[str, Any]:
    """``<common_properties>`` content: ``e`` → text, ``tree`` → dict, ``list``/``elist`` → list."""
    out: dict[str, Any] = {}
    for el in node:
        name = el.get("name")
        tag = _tag(el)
        if not name:
            continue
        if tag == "e":
            out[name] = (el.text or "").strip()
        elif tag == "tree":
            out[name] = _properties(el)
        elif tag == "list":
            out[name] = [_properties(li) for li in el if _tag(li) == "li"]
        elif tag == "elist":
            out[name] = [(li.text or "").strip() for li in el if _tag(li) == "eli"]
    return out


def _non_empty(value: Any) -> bool:
    return value not in ("", None, {}, [])


def parse_header_comment(text: str) -> dict[str, Any]:
    """Metadata of an MDF header comment: ``description`` plus the common properties.

    ``<HDcomment><TX>free text</TX><common_properties><e name="vehicle">X</e>…`` gives
    ``{"description": "free text", "vehicle": "X", …}``; ``<tree name="t">`` becomes a
    nested dict. Plain (non-XML) text is the description. Empty values are left out, as
    are the "updated by asammdf" notes asammdf appends when it saves a file.
    """
    meta: dict[str, Any] = {}
    text = (text or "").strip()
    for _ in range(4):  # asammdf's MDF 3 writer may wrap an earlier <HDcomment> in the TX
        text = _ASAMMDF_NOTE.sub("", text).strip()
        if not text.startswith("<"):
            break
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            meta.setdefault("description", text)
            return meta
        props = next((el for el in root.iter() if _tag(el) == "common_properties"), None)
        if props is not None:
            meta.update({k: v for k, v in _properties(props).items() if _non_empty(v)})
        tx = next((el for el in root if _tag(el) == "TX"), None)
        text = (tx.text or "").strip() if tx is not None else ""
    else:
        text = ""
    text = _ASAMMDF_NOTE.sub("", text).strip()
    if text and not text.startswith("<"):
        meta.setdefault("description", text)
    return meta


def _read_block_text(fh: Any, address: int, size: int, v4: bool) -> str:
    """Text of a TX/MD block at ``address`` ('' when the link is empty or broken)."""
    if address <= 0 or address >= size:
        return ""
    fh.seek(address)
    if v4:
        head = fh.read(24)
        if len(head) < 24 or head[:4] not in (b"##TX", b"##MD"):
            return ""
        length = struct.unpack_from("<Q", head, 8)[0]
        raw = fh.read(max(0, min(length - 24, _MAX_COMMENT_BYTES)))
    else:
        head = fh.read(4)
        if len(head) < 4 or head[:2] != b"TX":
            return ""
        length = struct.unpack_from("<H", head, 2)[0]
        raw = fh.read(max(0, min(length - 4, _MAX_COMMENT_BYTES)))
    data: bytes = raw
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The header metadata of a recording (see :func:`parse_header_comment`).

    Reads only the header and its comment block (no asammdf import, no samples). MDF 3
    files add their author/organization/project/subject header fields. A file that cannot
    be read gives ``{}``: reading it for the replay reports what is wrong with it.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            head = fh.read(64 + 24 + 6 * 8)
            if len(head) < 64 + 8 or not head.startswith((b"MDF ", b"UnFinMF ")):
                return {}
            version = head[8:16].decode("ascii", "replace").strip(" \0")
            if version.startswith("4"):
                if head[64:68] != b"##HD" or len(head) < 64 + 24 + 6 * 8:
                    return {}
                comment_addr = struct.unpack_from("<Q", head, 64 + 24 + 5 * 8)[0]
                return parse_header_comment(_read_block_text(fh, comment_addr, size, True))
            if not version.startswith(("2", "3")) or head[64:66] != b"HD":
                return {}
            fh.seek(64)
            hd = fh.read(_V3_HD_FIELDS + 4 * 32)
            if len(hd) < _V3_HD_FIELDS + 4 * 32:
                return {}
            comment_addr = struct.unpack_from("<I", hd, 8)[0]
            meta: dict[str, Any] = {}
            fields = ("author", "organization", "project", "subject")
            for i, name in enumerate(fields):
                start = _V3_HD_FIELDS + 32 * i
                value = hd[start : start + 32].split(b"\0", 1)[0].decode("latin-1").strip()
                if value:
                    meta[name] = value
            meta.update(parse_header_comment(_read_block_text(fh, comment_addr, size, False)))
            return meta
    except (OSError, ValueError, struct.error):
        return {}
