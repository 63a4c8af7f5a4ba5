"""Server-side slot filling uses loopwise.js's markup conventions and escapes what it writes."""

from __future__ import annotations

from typing import Any

from loopwise.client.slots_html import fill_slots, slot_keys

PAGE = """<!doctype html><html><body>
<div data-loopwise-slot="hero"><h2 data-loopwise-field="headline">Default</h2>
<img data-loopwise-field="image" src="/default.png"><a data-loopwise-href="cta_url" href="/">Go</a>
</div>
<ul data-loopwise-slot="recs"><template><li><a data-loopwise-item data-loopwise-href="url">
<span data-loopwise-field="title">t</span> <b data-loopwise-field="price"></b></a></li></template>
<div data-loopwise-items><li>Default item</li></div></ul>
<div data-loopwise-slot="other">Kept &amp; safe</div>
</body></html>"""

DECISION: dict[str, Any] = {
    "decision_id": "d_1",
    "slots": [
        {"slot": "hero", "kind": "block", "variant": {"id": "v", "content": {
            "headline": "<script>x</script> Hi", "image": "javascript:alert(1)",
            "cta_url": "/sale"}}},
        {"slot": "recs", "kind": "list", "items": [
            {"id": "a1", "title": "Shoe", "url": "/items/a1", "attributes": {"price": 10}},
            {"id": "b2", "title": "Hat", "url": "//evil.example", "attributes": {}},
        ]},
    ],
}  # fmt: skip


def test_slot_keys_in_document_order() -> None:
    assert slot_keys(PAGE) == ["hero", "recs", "other"]


def test_block_fields_are_filled_as_escaped_text_with_safe_urls_only() -> None:
    out = fill_slots(PAGE, DECISION)
    assert '<h2 data-loopwise-field="headline">&lt;script&gt;x&lt;/script&gt; Hi</h2>' in out
    assert 'src="/default.png"' in out and "javascript:" not in out
    assert 'href="/sale"' in out
    assert 'data-loopwise-decision="d_1" data-loopwise-state="filled"' in out


def test_list_items_come_from_the_template() -> None:
    out = fill_slots(PAGE, DECISION)
    assert "Default item" not in out
    assert out.count("<li>") == 2 + 1  # two items plus the template's own copy
    assert 'data-loopwise-item="a1"' in out and 'href="/items/a1"' in out
    assert '<b data-loopwise-field="price">10</b>' in out
    assert "evil.example" not in out


def test_undecided_slots_and_a_missing_decision_keep_the_defaults() -> None:
    out = fill_slots(PAGE, DECISION)
    assert (
        '<div data-loopwise-slot="other" data-loopwise-state="default">Kept &amp; safe</div>' in out
    )
    fallback = fill_slots(PAGE, None)
    assert "Default item" in fallback and ">Default</h2>" in fallback
    assert fallback.count('data-loopwise-state="default"') == 3
