"""Make untrusted message bodies safe to show: HTML through an nh3 allow-list, text linkified.

The sanitised HTML is still shown only inside ``<iframe sandbox>`` (no scripts, opaque origin)
under its own restrictive CSP: this module is the first of three walls, not the only one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

import nh3

TAGS = {
    "a", "abbr", "acronym", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption", "center",
    "cite", "code", "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "font", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s",
    "samp", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "tt", "u", "ul", "var", "wbr",
}  # fmt: skip

# Removed together with everything inside them: their content is code, or is parsed differently
# by browsers (raw text / foreign content), which is where mutation XSS hides.
DROPPED_WITH_CONTENT = {
    "script", "style", "noscript", "noembed", "noframes", "xmp", "plaintext", "textarea", "title",
    "template", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "select",
    "option", "head", "meta", "base", "link",
}  # fmt: skip

ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "dir", "lang", "align", "valign", "style", "width", "height", "bgcolor"},
    "a": {"href", "name"},
    "img": {"src", "alt", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "li": {"value"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "bdo": set(),
}

# Typography, colours and box only: nothing that positions, overlays, loads or computes.
STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "font-variant", "text-align", "text-decoration", "text-indent", "text-transform", "letter-spacing",
    "word-spacing", "line-height", "white-space", "vertical-align", "direction", "margin", "margin-top",
    "margin-right", "margin-bottom", "margin-left", "padding", "padding-top", "padding-right",
    "padding-bottom", "padding-left", "border", "border-top", "border-right", "border-bottom",
    "border-left", "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "border-radius", "width", "max-width", "min-width", "height", "max-height", "min-height",
    "list-style-type", "table-layout", "caption-side", "empty-cells", "word-break", "overflow-wrap",
}  # fmt: skip
# A value may call only colour functions; url(), var(), expression(), image-set() … are refused.
_STYLE_FUNCTION = re.compile(r"([a-z-]+)\s*\(", re.IGNORECASE)
_STYLE_ALLOWED_FUNCTIONS = {"rgb", "rgba", "hsl", "hsla"}
_STYLE_FORBIDDEN = re.compile(r"[\\@<>{}]|/\*|expression|javascript|behavior|-moz-binding", re.IGNORECASE)

LINK_SCHEMES = ("http:", "https:", "mailto:")
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|jpg|webp|bmp);base64,[a-z0-9+/=\s]+$", re.IGNORECASE)


@dataclass(frozen=True)
class SanitizedHtml:
    html: str
    # Remote images withheld until the user asks for them (0 when shown or none).
    blocked_images: int


def _clean_style(value: str) -> str | None:
    kept: list[str] = []
    for declaration in value.split(";"):
        name, sep, val = declaration.partition(":")
        name, val = name.strip().lower(), val.strip()
        if not sep or not val or name not in STYLE_PROPERTIES:
            continue
        if _STYLE_FORBIDDEN.search(val):
            continue
        if any(fn.lower() not in _STYLE_ALLOWED_FUNCTIONS for fn in _STYLE_FUNCTION.findall(val)):
            continue
        kept.append(f"{name}: {val}")
    return "; ".join(kept) or None


def _scheme(value: str) -> str:
    # Browsers ignore ASCII whitespace and control characters inside a URL's scheme.
    compact = re.sub(r"[\x00-\x20]+", "", value).lower()
    return compact.split(":", 1)[0] + ":" if ":" in compact else ""


def sanitize_html(
    html: str, *, show_remote_images: bool = False, cid_images: Mapping[str, str] | None = None
) -> SanitizedHtml:
    """Return the allow-listed subset of ``html`` and how many remote images were withheld.

    ``cid_images`` maps a Content-ID (no brackets) to a ``data:image/…`` URL, so inline
    images of the message show without any request. Links keep http, https and mailto only;
    images keep data:image (never SVG), known cid: parts, and http(s) only when
    ``show_remote_images`` is true.
    """
    blocked = 0
    cids = {key.strip("<>").lower(): value for key, value in (cid_images or {}).items()}

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if attribute == "style":
            return _clean_style(value)
        if attribute == "href" or attribute == "cite":
            return value if _scheme(value) in LINK_SCHEMES else None
        if attribute == "src":
            scheme = _scheme(value)
            if scheme == "data:":
                return value if _DATA_IMAGE.match(value.strip()) else None
            if scheme == "cid:":
                found = cids.get(value.strip()[4:].strip("<>").lower())
                return found if found and _DATA_IMAGE.match(found) else None
            if scheme in ("http:", "https:"):
                if show_remote_images:
                    return value
                blocked += 1
                return None
            return None
        return value

    cleaned = nh3.clean(
        html,
        tags=TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto", "data", "cid"},
        url_relative="deny",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
    return SanitizedHtml(html=cleaned, blocked_images=blocked)


_URL = re.compile(r"""(?:https?://|mailto:)[^\s<>"'`]+""", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def linkify_text(text: str) -> str:
    """Escape plain text and turn http, https and mailto URLs into links (returns safe HTML)."""
    out: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if len(url) <= len("mailto:"):
            continue
        start = match.start()
        out.append(escape(text[position:start]))
        out.append(
            f'<a href="{escape(url, quote=True)}" rel="noopener noreferrer nofollow" target="_blank">'
            f"{escape(url)}</a>"
        )
        position = start + len(url)
    out.append(escape(text[position:]))
    return "".join(out)


def frame_document(body_html: str) -> str:
    """Wrap sanitised HTML in a standalone document for the message frame."""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        "<style>body{font:15px/1.45 system-ui,sans-serif;margin:8px;color:#1d2433;"
        "word-wrap:break-word;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
        "pre{white-space:pre-wrap}table{max-width:100%}</style>"
        f"</head><body>{body_html}</body></html>"
    )
