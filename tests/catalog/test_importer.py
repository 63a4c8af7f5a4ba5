from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from loopwise.catalog.importer import count_lines, read_items
from loopwise.errors import ValidationFailed


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_items_and_blank_lines(tmp_path: Path) -> None:
    lines = [
        orjson.dumps({"id": "a", "title": "A", "categories": ["x"], "price": 5}).decode(),
        "",
        "   ",
        orjson.dumps({"id": 2, "type": "article", "tags": ["news"]}).decode(),
    ]
    path = write(tmp_path, "items.jsonl", "\n".join(lines) + "\n")
    items = list(read_items(path))
    assert [i.id for i in items] == ["a", "2"]
    assert items[0].categories == ("x",) and items[0].price == 5.0
    assert items[1].type == "article" and items[1].tags == ("news",)


@pytest.mark.parametrize("name", ["items.ndjson", "items.json", "ITEMS.JSONL"])
def test_json_lines_suffixes(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, '{"id": "a"}\n{"id": "b"}')
    assert [i.id for i in read_items(path)] == ["a", "b"]


def test_format_argument_overrides_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "feed.txt", "id,title\n1,One\n")
    assert [i.title for i in read_items(path, format="csv")] == ["One"]
    jsonl = write(tmp_path, "feed.data", '{"id": "z"}\n')
    assert [i.id for i in read_items(jsonl, "ndjson")] == ["z"]


def test_unknown_format_is_rejected_before_reading(tmp_path: Path) -> None:
    missing = tmp_path / "feed.xml"  # never opened: the format check comes first
    with pytest.raises(ValidationFailed) as info:
        read_items(missing)
    assert info.value.field == "format"
    with pytest.raises(ValidationFailed, match="jsonl or csv"):
        read_items(missing, format="xml")


def test_jsonl_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "items.jsonl", '{"id": "a"}\n\n{"id": "b", "price": -2}\n')
    items = read_items(path)
    assert next(items).id == "a"
    with pytest.raises(ValidationFailed) as info:
        next(items)
    assert info.value.field == "line 3.price"
    assert info.value.detail.startswith("Line 3: price must be a number >= 0")
    assert info.value.extra == {"line": 3}


def test_jsonl_invalid_json_and_non_object(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.jsonl", '{"id": "a"}\n{"id": \n')
    with pytest.raises(ValidationFailed) as info:
        list(read_items(path))
    assert info.value.field == "line 2"
    assert "not valid JSON" in info.value.detail
    path = write(tmp_path, "list.jsonl", '["a"]\n')
    with pytest.raises(ValidationFailed) as info:
        list(read_items(path))
    assert info.value.field == "line 1"


HEADER = "id,type,title,text,url,image,categories,tags,price,margin,in_stock,created_at"
CSV = "\n".join(
    [
        "\ufeff" + HEADER + ",brand,rating,zip",  # Excel's byte order mark is tolerated
        'sku-1,product,Trail Runner,"Light, fast",https://s.example/1,https://c.example/1.jpg,'
        "Shoes > Running|Sale,trail| light ,89.90,12,yes,2024-01-02T03:04:05Z,Acme,4.5,00123",
        "sku-2,,Sock,,,,,,0,,0,,,7,",
        "",
    ]
)


def test_csv_conversion(tmp_path: Path) -> None:
    first, second = read_items(write(tmp_path, "items.csv", CSV))
    assert first.id == "sku-1" and first.title == "Trail Runner"
    assert first.text == "Light, fast"
    assert first.url == "https://s.example/1" and first.image == "https://c.example/1.jpg"
    assert first.categories == ("Shoes > Running", "Sale")
    assert first.tags == ("trail", "light")
    assert first.attributes == {
        "price": 89.9,
        "margin": 12,
        "in_stock": True,
        "brand": "Acme",
        "rating": 4.5,
        "zip": "00123",  # leading zeros: a code, kept as text
    }
    assert first.created_at is not None and first.created_at.year == 2024
    assert second.type == "product" and second.categories == () and second.text == ""
    assert second.attributes == {"price": 0, "in_stock": False, "rating": 7}


@pytest.mark.parametrize(
    ("cell", "expected"), [("TRUE", True), ("1", True), ("No", False), ("false", False)]
)
def test_csv_in_stock_values(tmp_path: Path, cell: str, expected: bool) -> None:
    [item] = read_items(write(tmp_path, "b.csv", f"id,in_stock\na,{cell}\n"))
    assert item.in_stock is expected


@pytest.mark.parametrize(
    ("text", "field", "column", "says"),
    [
        ("id,price\na,1\nb,$5\n", "line 3.price", "price", "not a number"),
        ("id,margin\na,1,5\n", "line 2", None, "3 cells"),
        ("id,in_stock\na,maybe\n", "line 2.in_stock", "in_stock", "yes/no"),
        ("id,price\na,-4\n", "line 2.price", "price", ">= 0"),
        ("id,created_at\na,tomorrow\n", "line 2.created_at", "created_at", "ISO 8601"),
        ("title,price\nA,1\n", "line 1", None, "id column"),
        ("", "line 1", None, "id column"),
        ('id,title\na,"multi\nline"\n,B\n', "line 4.id", "id", "Send an id"),
    ],
)
def test_csv_errors_name_line_and_column(
    tmp_path: Path, text: str, field: str, column: str | None, says: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        list(read_items(write(tmp_path, "bad.csv", text)))
    assert info.value.field == field
    assert info.value.extra.get("column") == column
    assert says in info.value.detail
    line = int(field.split()[1].split(".")[0])
    assert info.value.extra["line"] == line
    assert info.value.detail.startswith(f"Line {line}")


def test_csv_blank_rows_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "gaps.csv", "id,title\n\na,A\n,\nb,B\n")
    assert [i.id for i in read_items(path)] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "lines"), [("", 0), ("a", 1), ("a\n", 1), ("a\nb", 2), ("a\n\nb\n", 3)]
)
def test_count_lines(tmp_path: Path, text: str, lines: int) -> None:
    assert count_lines(write(tmp_path, "f.jsonl", text)) == lines
