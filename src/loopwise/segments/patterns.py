"""Regular expressions for ``$regex``, ``$regexi``, ``$notRegex`` and ``$notRegexi``, run by RE2.

A backtracking engine (Python's ``re``, JavaScript's ``RegExp``) can take exponential time on a
pattern such as ``^([a-z0-9]+\\.?)+@shop\\.example$`` and a short hostile input, and a condition
is evaluated on every profile update and decision: one profile would stall every caller. RE2 runs
in time linear in the input, so patterns are compiled with it.

GrowthBook writes patterns for JavaScript's ``RegExp`` (no flags, or ``i``). RE2 already agrees
with it on ``$`` (end of input only), ``\\d``/``\\w``/``\\s`` (ASCII) and the common syntax;
:func:`translate` rewrites the JavaScript escapes RE2 spells differently. What RE2 cannot run in
linear time at all (backreferences, lookahead, lookbehind) is refused when the condition is
loaded, with a message saying how to rewrite it.
"""

from __future__ import annotations

from typing import Protocol

import re2

from loopwise.errors import ConditionError


class Pattern(Protocol):
    """A compiled RE2 pattern (the binding ships no type hints)."""

    def search(self, text: str) -> object | None: ...


#: RE2 program memory per pattern; a pattern needing more is refused at load, not at run time.
MAX_PATTERN_MEMORY = 8 << 20

_HEX = frozenset("0123456789abcdefABCDEF")

# RE2's error for a construct it lacks -> (its name, what to write instead)
_UNSUPPORTED: dict[str, tuple[str, str]] = {
    "(?=": ("lookahead", "join several conditions with $and, $notRegex for what must not match"),
    "(?!": ("negative lookahead", "add a $notRegex condition for the text that must not follow"),
    "(?<=": ("lookbehind", "anchor the pattern on the preceding text itself"),
    "(?<!": ("negative lookbehind", "add a $notRegex condition for the text that must not precede"),
}


def translate(pattern: str) -> str:
    """JavaScript ``RegExp`` syntax -> RE2 syntax, where the two spell one thing differently:
    ``\\uXXXX`` -> ``\\x{XXXX}``, ``\\cX`` -> its control character, ``[^]`` -> any character,
    ``[]`` -> no character."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            escaped = pattern[i + 1]
            if escaped == "u" and i + 6 <= n and all(c in _HEX for c in pattern[i + 2 : i + 6]):
                out.append("\\x{" + pattern[i + 2 : i + 6] + "}")
                i += 6
                continue
            if (
                escaped == "c"
                and i + 2 < n
                and pattern[i + 2].isascii()
                and pattern[i + 2].isalpha()
            ):
                out.append(f"\\x{{{ord(pattern[i + 2]) % 32:02X}}}")
                i += 3
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if not in_class and pattern.startswith("[^]", i):
            out.append(r"[\s\S]")
            i += 3
            continue
        if not in_class and pattern.startswith("[]", i):
            out.append(r"[^\x00-\x{10FFFF}]")  # JS: an empty class, which matches nothing
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
        elif char == "]" and in_class:
            in_class = False
            out.append(char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


def compile_pattern(pattern: str, *, insensitive: bool, op: str, path: str) -> Pattern:
    """Compile a condition's pattern with RE2 or raise :class:`ConditionError` saying what to
    write instead (``op``/``path`` name the operator and where it sits)."""
    options = re2.Options()
    options.log_errors = False  # the error is reported to the caller, not printed to stderr
    options.case_sensitive = not insensitive
    options.max_mem = MAX_PATTERN_MEMORY
    try:
        return re2.compile(translate(pattern), options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ConditionError(_refusal(op, pattern, reason), field=path) from None


def _refusal(op: str, pattern: str, reason: str) -> str:
    shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
    lead = f'{op} pattern "{shown}" cannot be used'
    linear = "patterns run on RE2, a linear-time engine, so one input cannot stall the server"
    for marker, (name, advice) in _UNSUPPORTED.items():
        if reason.endswith(marker):
            return f"{lead}: {name} is not supported ({linear}). Rewrite it: {advice}."
    escape = reason.removeprefix("invalid escape sequence: \\")
    if escape != reason and escape[:1] in tuple("123456789k"):
        return (
            f"{lead}: backreferences (\\1, \\k<name>) are not supported ({linear}). Spell the "
            f"repeated text out, or list the accepted values with $in."
        )
    if reason.startswith("invalid repetition size"):
        return (
            f"{lead}: {reason} (RE2 allows repetition counts up to 1000 and nested counts whose "
            f"product stays under that). Use a smaller count or + / *."
        )
    if "pattern too large" in reason:
        return f"{lead}: it needs more than {MAX_PATTERN_MEMORY >> 20} MB to compile. Simplify it."
    return (
        f"{lead}: it does not compile ({reason}). Escape special characters such as ( [ * + ? "
        f"with a backslash."
    )


def search(pattern: Pattern, text: str) -> bool:
    """Whether ``pattern`` occurs in ``text`` (RE2 works on UTF-8: a lone surrogate, which no
    UTF-8 text can hold, reads as U+FFFD)."""
    try:
        return pattern.search(text) is not None
    except UnicodeEncodeError:
        cleaned = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return pattern.search(cleaned) is not None
