"""The HTML policy: what a block may hold after rendering, and the one nh3 cleaner.

The allowlist matches a Tiptap editor with StarterKit + Table + Link + TaskList/TaskItem +
Mathematics (:data:`ALLOWED_TAGS`, :data:`ALLOWED_ATTRIBUTES`); ``img`` only with
``RenderConfig.allow_images``. :func:`make_cleaner` builds the one ``nh3.Cleaner`` (ammonia;
https://nh3.readthedocs.io/) a :class:`~streamer.render.markdown.Renderer` reuses for every
block. The renderer asks :func:`url_scheme` before it renders a link or an image; the cleaner
enforces the same URL rule a second time (``url_schemes``, ``url_relative="deny"``) and adds
:data:`LINK_REL` to every ``<a>``. The policy itself (why relative links become text, why
images are off by default) is told in :mod:`streamer.render.markdown`.

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote

import nh3

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "DATA_TYPES",
    "IMAGE_ATTRIBUTES",
    "IMAGE_SET_ATTRIBUTES",
    "IMAGE_URL_SCHEMES",
    "LINK_REL",
    "make_cleaner",
    "url_scheme",
]

#: Elements a Tiptap editor with StarterKit + Table + Link + TaskList/TaskItem + Mathematics
#: can hold (``img`` is added only with ``allow_images``). ``del`` and ``s`` both map to
#: StarterKit's Strike mark; ``span``/``div`` only carry math (:data:`DATA_TYPES`).
ALLOWED_TAGS: Final[frozenset[str]] = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "hr", "br", "a",
    "table", "thead", "tbody", "tr", "th", "td",
    "span", "div",
})

#: Attributes per element. ``rel`` on ``a`` is not listed: the sanitizer sets it itself.
ALLOWED_ATTRIBUTES: Final[Mapping[str, frozenset[str]]] = {
    "a": frozenset({"href", "title"}),
    "ol": frozenset({"start"}),
    "th": frozenset({"colspan", "rowspan"}),
    "td": frozenset({"colspan", "rowspan"}),
    "code": frozenset({"class"}),
    "ul": frozenset({"data-type"}),
    "li": frozenset({"data-type", "data-checked"}),
    "span": frozenset({"data-type", "data-latex"}),
    "div": frozenset({"data-type", "data-latex"}),
}

#: The one ``data-type`` value each element may carry: Tiptap's parse rules
#: (``@tiptap/extension-list`` TaskList ``ul[data-type="taskList"]``, TaskItem
#: ``li[data-type="taskItem"]`` with ``data-checked``; ``@tiptap/extension-mathematics``
#: ``span[data-type="inline-math"]`` / ``div[data-type="block-math"]`` with ``data-latex``).
DATA_TYPES: Final[Mapping[str, str]] = {
    "ul": "taskList", "li": "taskItem", "span": "inline-math", "div": "block-math",
}

#: ``img`` and its attributes, allowed only with ``RenderConfig.allow_images``.
IMAGE_ATTRIBUTES: Final[frozenset[str]] = frozenset({"src", "alt", "title"})
#: Set on every ``img`` by the sanitizer (whatever the input said): the browser fetches an
#: image only when it nears the viewport (HTML Living Standard §2.5.7 "Lazy loading
#: attributes"), so a long answer's images are not all fetched at once.
IMAGE_SET_ATTRIBUTES: Final[Mapping[str, str]] = {"loading": "lazy"}

#: The only URL schemes a link may carry (images: ``http``/``https`` only).
ALLOWED_URL_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https", "mailto"})
IMAGE_URL_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https"})

#: Added to every ``<a>`` by the sanitizer.
LINK_REL: Final = "noopener noreferrer nofollow"

_LANGUAGE_CLASS_RE: Final = re.compile(r"language-[A-Za-z0-9_+#.\-]+")
_DIGITS_RE: Final = re.compile(r"[0-9]{1,9}")
_SCHEME_RE: Final = re.compile(r"([a-z][a-z0-9+.\-]*):")
#: What a browser ignores inside a URL: ASCII whitespace and C0/C1 controls (WHATWG URL).
_URL_IGNORED_RE: Final = re.compile(r"[\x00-\x20\x7f-\x9f]+")
#: percent-decoding rounds before a URL is judged (``%2573`` → ``%73`` → ``s``)
_URL_DECODE_ROUNDS: Final = 4


def url_scheme(url: str) -> str | None:
    """The scheme a browser would see in ``url``, lower-cased, or ``None`` if it is relative.

    The URL is percent-decoded (repeatedly), entity-decoded and stripped of whitespace and
    control characters first, so encoding tricks cannot hide a ``javascript:`` scheme.
    """
    for _ in range(_URL_DECODE_ROUNDS):
        decoded = html.unescape(unquote(url))
        if decoded == url:
            break
        url = decoded
    url = _URL_IGNORED_RE.sub("", url).lower()
    m = _SCHEME_RE.match(url)
    return m.group(1) if m else None


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    """nh3 callback: keep an attribute value, or ``None`` to drop the attribute."""
    if attr == "data-type":
        return value if DATA_TYPES.get(tag) == value else None
    if attr == "data-checked":
        return value if value in ("true", "false") else None
    if attr == "class":
        return value if tag == "code" and _LANGUAGE_CLASS_RE.fullmatch(value) else None
    if attr in ("start", "colspan", "rowspan"):
        return value if _DIGITS_RE.fullmatch(value) else None
    return value


def make_cleaner(*, allow_images: bool) -> tuple[nh3.Cleaner, frozenset[str]]:
    """The sanitizer of this policy: ``(cleaner, allowed tags)``.

    ``cleaner.clean(html) -> str`` keeps :data:`ALLOWED_TAGS` (plus ``img`` with
    ``allow_images``) and :data:`ALLOWED_ATTRIBUTES` (values filtered: one ``data-type`` per
    element, ``language-*`` classes on ``code``, digits for ``start``/``colspan``/``rowspan``),
    sets ``loading="lazy"`` on every ``img`` (:data:`IMAGE_SET_ATTRIBUTES`), drops
    ``script``/``style`` with their content and comments, keeps absolute
    :data:`ALLOWED_URL_SCHEMES` URLs only and sets :data:`LINK_REL` on links. Idempotent.
    Build it once: the cleaner is reused for every block of every stream.
    """
    tags = set(ALLOWED_TAGS)
    attributes = {tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()}
    set_values: dict[str, dict[str, str]] = {}
    if allow_images:
        tags.add("img")
        attributes["img"] = set(IMAGE_ATTRIBUTES)
        set_values["img"] = dict(IMAGE_SET_ATTRIBUTES)
    cleaner = nh3.Cleaner(
        tags=tags,
        clean_content_tags={"script", "style"},
        attributes=attributes,
        attribute_filter=_attribute_filter,
        strip_comments=True,
        link_rel=LINK_REL,
        url_schemes=set(ALLOWED_URL_SCHEMES),
        url_relative="deny",
        set_tag_attribute_values=set_values,
    )
    return cleaner, frozenset(tags)
