from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopwise.errors import ValidationFailed
from loopwise.models.datasets import read_csv, read_jsonl, read_movielens, read_otto, read_segments

OTTO = Path(__file__).resolve().parents[3] / "shared" / "data" / "otto" / "train.jsonl"


def test_movielens_100k_u_data(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    out = read_movielens(tmp_path)  # a folder: the ratings file is found by name
    assert [(i.user, i.item, i.timestamp, i.event) for i in out] == [
        ("196", "242", 881250949.0, "rating"),
        ("186", "302", 891717742.0, "rating"),
    ]


def test_movielens_in_recboles_atomic_file_with_its_header(tmp_path: Path) -> None:
    inter = tmp_path / "ml-100k.inter"
    inter.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n"
    )
    (only,) = read_movielens(inter)
    assert (only.user, only.item, only.timestamp) == ("196", "242", 881250949.0)


def test_movielens_1m_dat_and_csv_with_min_rating(tmp_path: Path) -> None:
    dat = tmp_path / "ratings.dat"
    dat.write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    assert [i.item for i in read_movielens(dat, min_rating=4)] == ["1193"]
    csv_file = tmp_path / "ratings.csv"
    csv_file.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n")
    (only,) = read_movielens(csv_file)
    assert (only.user, only.item, only.timestamp) == ("1", "31", 1260759144.0)


def test_movielens_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "u.data"
    bad.write_text("1\t2\t3\t4\n1\t2\tfive\t4\n")
    with pytest.raises(ValidationFailed, match="line 2") as info:
        read_movielens(bad)
    assert info.value.field == "line 2.rating"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValidationFailed, match="none of"):
        read_movielens(empty)


def test_csv_epoch_iso_event_and_weight(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "user,item,timestamp,event,weight\nu1,i1,100,purchase,2\nu1,i2,1970-01-01T00:01:40Z,,\n"
    )
    first, second = read_csv(path)
    assert (first.event, first.weight, first.timestamp) == ("purchase", 2.0, 100.0)
    assert (second.event, second.weight, second.timestamp) == ("view", 1.0, 100.0)


def test_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("user,item\nu,i\n")
    with pytest.raises(ValidationFailed, match="timestamp"):
        read_csv(path)
    path.write_text("user,item,timestamp\nu,i,1\nu,i,yesterday\n")
    with pytest.raises(ValidationFailed, match="line 3") as info:
        read_csv(path)
    assert info.value.field == "line 3.timestamp"


def test_jsonl_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    rows = [
        {"user": 7, "item": "i", "timestamp": 5},
        {"user": "u", "item": "j", "timestamp": "2026-01-01T00:00:00Z", "event": "add_to_cart"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    a, b = read_jsonl(path)
    assert (a.user, a.timestamp) == ("7", 5.0)
    assert b.event == "add_to_cart" and b.timestamp == 1767225600.0
    path.write_text(json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(ValidationFailed, match="line 2: invalid JSON"):
        read_jsonl(path)
    path.write_text(json.dumps({"item": "i", "timestamp": 1}) + "\n")
    with pytest.raises(ValidationFailed, match="user is missing") as info:
        read_jsonl(path)
    assert info.value.field == "line 1.user"


def test_otto_format_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "otto.jsonl"
    session = {
        "session": 3,
        "events": [
            {"aid": 11, "ts": 1659304800025, "type": "clicks"},
            {"aid": 12, "ts": 1659304900000, "type": "orders"},
        ],
    }
    path.write_text(json.dumps(session) + "\n")
    a, b = read_otto(path)
    assert (a.user, a.item, a.event, a.timestamp) == ("3", "11", "view", 1659304800.025)
    assert b.event == "purchase"
    session["events"].append({"aid": 1, "ts": 1, "type": "wishlist"})  # type: ignore[attr-defined]
    path.write_text("\n" + json.dumps(session) + "\n")
    with pytest.raises(ValidationFailed, match="line 2") as info:
        read_otto(path)
    assert info.value.field == "line 2.events[2].type"


@pytest.mark.skipif(not OTTO.exists(), reason=f"OTTO fixture not found at {OTTO}")
def test_real_otto_fixture() -> None:
    out = read_otto(OTTO)
    assert len(out) == 862
    assert len({i.user for i in out}) == 20
    counts = {e: sum(1 for i in out if i.event == e) for e in ("view", "add_to_cart", "purchase")}
    assert counts == {"view": 800, "add_to_cart": 52, "purchase": 10}
    assert all(1.6e9 < i.timestamp < 1.7e9 for i in out)  # milliseconds became seconds


def test_segment_memberships_csv(tmp_path: Path) -> None:
    path = tmp_path / "segments.csv"
    path.write_text("user,segment\nu1,jazz\nu1,vip\nu2,jazz\n")
    assert read_segments(path) == {"u1": {"jazz", "vip"}, "u2": {"jazz"}}
    path.write_text("user,segment\nu1,\n")
    with pytest.raises(ValidationFailed, match="segment is missing"):
        read_segments(path)
    path.write_text("user,cohort\nu1,a\n")
    with pytest.raises(ValidationFailed, match="lacks column"):
        read_segments(path)
