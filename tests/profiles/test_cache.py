from loopwise.profiles.cache import LruCache


def test_drops_the_least_recently_used_entry_beyond_the_limit() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache["a"] = 1
    cache["b"] = 2
    assert cache.get("a") == 1  # "a" is now the most recent
    cache["c"] = 3
    assert dict(cache) == {"a": 1, "c": 3}


def test_setdefault_update_and_pop_respect_the_limit() -> None:
    cache: LruCache[str, int] = LruCache(3, {"a": 1, "b": 2})
    assert cache.setdefault("a", 9) == 1
    assert cache.setdefault("z", 26) == 26
    cache.update({"c": 3, "d": 4})
    assert list(cache) == ["z", "c", "d"]
    assert cache.pop("c") == 3
    assert cache.pop("missing", None) is None
    assert cache.get("missing", 0) == 0


def test_a_limit_below_one_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError):
        LruCache(0)
