"""Text made safe for XML, in one pass of str.translate (it runs in C, once per value of an export).

xml.sax.saxutils.escape does the three entity replacements, but two things more are needed here: an attribute
value keeps its line breaks and tabs only as character references (a parser turns a raw one into a space), and
characters XML 1.0 forbids outright (control characters, U+FFFE, U+FFFF) have no escape at all, so they become
U+FFFD rather than make the whole file unreadable.

Most values need no change at all; a regular expression finds that out faster than translate (whose mapping to
several characters runs per character), so translate runs only on the values that need it.
"""

import re

_FORBIDDEN = {code: "\ufffd" for code in range(32) if code not in (0x9, 0xA, 0xD)} | {
    0xFFFE: "\ufffd",
    0xFFFF: "\ufffd",
}
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;", **_FORBIDDEN})
_ATTRIBUTE = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;", **_FORBIDDEN}
)


_SPECIAL = re.compile(r'[&<>"\x00-\x1f\ufffe\uffff]')


def text(value: str) -> str:
    """Element content."""
    return value.translate(_TEXT) if _SPECIAL.search(value) else value


def attr(value: str) -> str:
    """An attribute value written between double quotes."""
    return value.translate(_ATTRIBUTE) if _SPECIAL.search(value) else value
