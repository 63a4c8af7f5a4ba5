"""Reading ``loopwise.yaml`` safely: bounded alias expansion, no duplicate keys, and every failure
as a :class:`~loopwise.errors.ConfigError` with the file and line.

PyYAML's ``safe_load`` shares an anchored node wherever it is aliased, so a 1 KB "billion laughs"
file is a graph whose tree has 10**9 values: validating or walking it takes minutes and gigabytes.
The composed graph is measured first (counting each alias as the values it stands for, memoised,
so the count itself is linear) and refused above :data:`MAX_VALUES`. A key given twice in one
mapping would silently keep the last value; it is refused with both lines.
"""

from __future__ import annotations

from typing import Any

import yaml

from loopwise.errors import ConfigError

#: Values (scalars, lists, mappings) the document may hold once aliases are expanded.
MAX_VALUES = 200_000
#: Digits an integer or number in the file may have (far beyond any real setting).
MAX_NUMBER_DIGITS = 100
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})

Lines = dict[tuple[int | str, ...], int]
"""Document path -> 1-based line, for naming the line of a validation error."""


def read_yaml(path_name: str, data: bytes) -> tuple[Any, Lines]:
    """The document in ``data`` and the line of every path in it. Raises ConfigError saying
    ``<path_name>:<line>: <what is wrong and what to do>``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _error(
            path_name,
            line,
            f"not UTF-8 text (byte {exc.start}); save the workspace as a UTF-8 YAML file",
        ) from None
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters already
        root = loader.get_single_node()
        if root is None:
            return {}, {}
        _check_tree(path_name, root)
        document = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = mark.line + 1 if mark is not None else None
        raise _error(path_name, at, f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise _error(
            path_name, line, f"not valid YAML: {exc.reason} (character #x{exc.character:04x})"
        ) from None
    except yaml.YAMLError as exc:
        raise _error(path_name, None, f"not valid YAML: {exc}") from None
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar its constructor refuses
        raise _error(path_name, None, f"a value cannot be read ({exc})") from None
    except RecursionError:
        raise _error(
            path_name, None, "nested too deeply to read; flatten the lists and mappings"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: Lines = {}
    _line_index(root, (), lines)
    return document, lines


def _error(path_name: str, line: int | None, detail: str) -> ConfigError:
    return ConfigError(f"{path_name}:{line or '?'}: {detail}.", field="", line=line)


def _check_tree(path_name: str, root: yaml.Node) -> None:
    """Refuse duplicate keys, over-long numbers and alias expansion beyond MAX_VALUES. Iterative
    and memoised on node identity, so a graph of shared nodes costs its size, not its tree's."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_DIGITS:
                raise _error(
                    path_name,
                    node.start_mark.line + 1,
                    f"a number with {len(node.value):,} characters; numbers here have at most "
                    f'{MAX_NUMBER_DIGITS} digits (quote it, "...", if it is meant as text)',
                )
            sizes[id(node)] = 1
            continue
        children = _children(node)
        if not children_done:
            if isinstance(node, yaml.MappingNode):
                _check_duplicate_keys(path_name, node)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(child), 0) for child in children)
        if total > MAX_VALUES:
            raise _error(
                path_name,
                node.start_mark.line + 1,
                f"this expands to more than {MAX_VALUES:,} values through aliases (*name "
                f"repeating an &name anchor); write the values out or use fewer aliases",
            )
        sizes[id(node)] = total


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_duplicate_keys(path_name: str, node: yaml.MappingNode) -> None:
    seen: dict[str, int] = {}
    for key_node, _value in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            raise _error(
                path_name,
                line,
                f"key {key_node.value!r} is given twice in this mapping (first on line "
                f"{seen[key_node.value]}); only one would count, so remove or rename one",
            )
        seen[key_node.value] = line


def _line_index(node: yaml.Node, path: tuple[int | str, ...], out: Lines) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _line_index(value_node, (*path, str(key_node.value)), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _line_index(child, (*path, i), out)
