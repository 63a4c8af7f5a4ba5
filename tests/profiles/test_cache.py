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


def test_get_many_loads_only_the_missing_keys_in_one_call() -> None:
    cache: LruCache[str, int] = LruCache(10, {"a": 1, "b": 2})
    asked: list[list[str]] = []

    def load(missing: list[str]) -> dict[str, int]:
        asked.append(missing)
        cache["d"] = 40  # published meanwhile: newer than what the load read
        return {key: ord(key) for key in missing}

    assert cache.get_many(["b", "c", "d", "c", "a"], load) == {"b": 2, "c": 99, "d": 40, "a": 1}
    assert asked == [["c", "d"]]
    assert cache.get_many(["a", "c"], load) == {"a": 1, "c": 99} and len(asked) == 1
    assert list(cache)[-2:] == ["a", "c"]  # read keys move to the end
