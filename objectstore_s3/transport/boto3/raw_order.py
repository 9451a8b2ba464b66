"""The place of each entry in a raw ListObjectVersions answer, kept for versions.py.

botocore parses the page into two lists (versions, delete markers) and drops how they
were interleaved; listings give Last-Modified to the second, so within one second only
the raw answer says whether a marker came before or after a version (see versions.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

__all__ = ["record_order"]


def record_order(http_response: Any, parsed: Any, **_: Any) -> None:
    """botocore's after-call hook for ListObjectVersions: the place of each (key, version)
    in the raw answer, as `parsed["EntryOrder"]` (see the module docstring)."""
    if not isinstance(parsed, dict) or getattr(http_response, "status_code", 0) != 200:
        return
    try:
        root = ET.fromstring(http_response.content)  # noqa: S314 (our server's answer)
    except ET.ParseError:
        return
    order: dict[tuple[str, str], int] = {}
    for child in root:
        if child.tag.rsplit("}", 1)[-1] in ("Version", "DeleteMarker"):
            fields = {field.tag.rsplit("}", 1)[-1]: field.text or "" for field in child}
            order[(fields.get("Key", ""), fields.get("VersionId") or "null")] = len(order)
    parsed["EntryOrder"] = order
