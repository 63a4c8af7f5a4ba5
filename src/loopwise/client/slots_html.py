"""Server-side slot rendering: fill a page's ``data-loopwise-slot`` elements from a decision, with
the same markup conventions loopwise.js uses in the browser (docs/delivery.md):

- a block slot's ``[data-loopwise-field=NAME]`` elements get the variant's ``content[NAME]`` as
  text (an ``<img>`` its ``src``), ``[data-loopwise-href=NAME]`` gets it as ``href``;
- a list slot's ``[data-loopwise-items]`` element gets one copy of the slot's ``<template>`` per
  item, filled from the item (``id title url image`` and its attributes), with
  ``data-loopwise-item`` set to the item id;
- every decided slot gets ``data-loopwise-decision`` and ``data-loopwise-state="filled"``, so
  loopwise.js neither hides nor decides it again, and attributes impressions and clicks to it.

Values are escaped; only ``http(s)://`` and site-relative URLs are written into ``href``/``src``.
A slot the decision does not cover keeps its default content (``data-loopwise-state="default"``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip
SAFE_URL = re.compile(r"^(https?://|/(?!/))", re.IGNORECASE)


@dataclass(slots=True)
class Token:
    kind: str  # start | end | text (anything else: comments, doctype, raw text)
    raw: str
    tag: str = ""
    attrs: tuple[tuple[str, str | None], ...] = ()


class _Tokenizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.tokens: list[Token] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tokens.append(Token("start", self.get_starttag_text() or "", tag, tuple(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(Token("end", f"</{tag}>", tag))

    def handle_data(self, data: str) -> None:
        self.tokens.append(Token("text", data))

    def handle_entityref(self, name: str) -> None:
        self.tokens.append(Token("text", f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.tokens.append(Token("text", f"&#{name};"))

    def handle_comment(self, data: str) -> None:
        self.tokens.append(Token("text", f"<!--{data}-->"))

    def handle_decl(self, decl: str) -> None:
        self.tokens.append(Token("text", f"<!{decl}>"))

    def handle_pi(self, data: str) -> None:
        self.tokens.append(Token("text", f"<?{data}>"))


def tokenize(document: str) -> list[Token]:
    parser = _Tokenizer()
    parser.feed(document)
    parser.close()
    return parser.tokens


def _attr(token: Token, name: str) -> str | None:
    return next((value for key, value in token.attrs if key == name), None)


def _start(tag: str, attrs: Sequence[tuple[str, str | None]]) -> str:
    parts = "".join(
        f" {key}" if value is None else f' {key}="{html.escape(value, quote=True)}"'
        for key, value in attrs
    )
    return f"<{tag}{parts}>"


def _with(token: Token, changes: Mapping[str, str]) -> str:
    attrs = [(k, v) for k, v in token.attrs if k not in changes]
    return _start(token.tag, [*attrs, *changes.items()])


def _subtree_end(tokens: Sequence[Token], start: int) -> int:
    """Index just past the element whose start tag is at ``start``."""
    if tokens[start].tag in VOID:
        return start + 1
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.kind == "start" and token.tag not in VOID:
            depth += 1
        elif token.kind == "end":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(tokens)


def _fill_fields(tokens: Sequence[Token], content: Mapping[str, Any], item_id: str | None) -> str:
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind != "start":
            out.append(token.raw)
            index += 1
            continue
        changes: dict[str, str] = {}
        href = _attr(token, "data-loopwise-href")
        target = content.get(href) if href is not None else None
        if isinstance(target, str) and SAFE_URL.match(target):
            changes["href"] = target
        if item_id is not None and any(k == "data-loopwise-item" for k, _ in token.attrs):
            changes["data-loopwise-item"] = item_id
        field = _attr(token, "data-loopwise-field")
        value = content.get(field) if field is not None else None
        if value is not None and token.tag == "img":
            if isinstance(value, str) and SAFE_URL.match(value):
                changes["src"] = value
            value = None
        out.append(_with(token, changes) if changes else token.raw)
        if value is None:
            index += 1
            continue
        end = _subtree_end(tokens, index)
        out.append(html.escape(str(value)))
        out.append(tokens[end - 1].raw if end - 1 > index else "")
        index = end
    return "".join(out)


def _item_content(item: Mapping[str, Any]) -> dict[str, Any]:
    content = {k: item.get(k) for k in ("id", "title", "url", "image")}
    content.update(item.get("attributes") or {})
    return content


def _fill_list(tokens: Sequence[Token], slot: Mapping[str, Any]) -> str:
    template: Sequence[Token] = ()
    for index, token in enumerate(tokens):
        if token.kind == "start" and token.tag == "template":
            template = tokens[index + 1 : _subtree_end(tokens, index) - 1]
            break
    items = slot.get("items") or []
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        boxed = token.kind == "start" and any(k == "data-loopwise-items" for k, _ in token.attrs)
        if not (boxed and template and items):
            out.append(token.raw)
            index += 1
            continue
        end = _subtree_end(tokens, index)
        out.append(token.raw)
        out.extend(_fill_fields(template, _item_content(i), str(i.get("id"))) for i in items)
        out.append(tokens[end - 1].raw)
        index = end
    return "".join(out)


def slot_keys(document: str) -> list[str]:
    """The slot keys a page marks, in document order, each once."""
    keys = [_attr(t, "data-loopwise-slot") for t in tokenize(document) if t.kind == "start"]
    return list(dict.fromkeys(k for k in keys if k))


def fill_slots(document: str, decision: Mapping[str, Any] | None) -> str:
    """``document`` with its slots filled from ``decision`` (a /v1/decide reply; None: every
    slot keeps its default)."""
    tokens = tokenize(document)
    by_slot = {s["slot"]: s for s in (decision or {}).get("slots", [])}
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        key = _attr(token, "data-loopwise-slot") if token.kind == "start" else None
        if key is None:
            out.append(token.raw)
            index += 1
            continue
        end = _subtree_end(tokens, index)
        slot = by_slot.get(key)
        if slot is None or decision is None:
            out.append(_with(token, {"data-loopwise-state": "default"}))
            out.extend(t.raw for t in tokens[index + 1 : end])
        else:
            out.append(
                _with(
                    token,
                    {
                        "data-loopwise-decision": decision["decision_id"],
                        "data-loopwise-state": "filled",
                    },
                )
            )
            inner = tokens[index + 1 : end]
            if slot.get("kind") == "block":
                content = (slot.get("variant") or {}).get("content") or {}
                out.append(_fill_fields(inner, content, None))
            else:
                out.append(_fill_list(inner, slot))
        index = end
    return "".join(out)
