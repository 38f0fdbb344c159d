"""Routing: rules that map a host and a decoded path to a target, and back to a path.

Generic: a rule's target is whatever the caller routes to (the application puts handler
classes and WSGI mounts there); nothing here looks at it.  Host patterns are matched,
case-insensitively, against the host name of the request's Host value.

Promises:

* a :class:`PathPattern` is a regular expression matched against the *whole* path
  (``re.fullmatch``); positional groups become positional arguments, named groups
  keyword arguments (a group that did not take part is passed as None);
* a :class:`PathPrefix` is a literal path that takes itself and everything under
  ``prefix/`` (no arguments); the empty prefix takes every path;
* host groups are tried in the order they were added, the catch-all ``.*`` group last;
  within a group the first rule that matches wins;
* :meth:`Router.reverse` rebuilds a path from a pattern made of literal text and
  top-level groups; arguments are percent-encoded (``/`` kept).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from ..http.hosts import host_name

__all__ = ["PathPattern", "PathPrefix", "Router", "Rule", "literal_prefix", "to_rule", "url"]

_SPECIAL = set(".^$*+?{}[]|()")

#: A match: the positional and the keyword arguments taken from the path.
Arguments = tuple[list[Any], dict[str, Any]]


class PathPattern:
    """A regular expression over the whole path (``^`` and ``$`` are optional)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.regex = re.compile(_strip_anchors(pattern))
        self._named_groups = frozenset(self.regex.groupindex.values())
        self._template = _reverse_template(_strip_anchors(pattern))
        #: The one path the pattern matches when it is literal text, else None.
        self.literal: str | None = None
        if self._template is not None and all(isinstance(p, str) for p in self._template):
            self.literal = "".join(self._template)  # type: ignore[arg-type]

    def match(self, path: str) -> Arguments | None:
        m = self.regex.fullmatch(path)
        if m is None:
            return None
        named = self._named_groups
        args = [group for i, group in enumerate(m.groups(), 1) if i not in named]
        return args, m.groupdict()

    def reverse(self, *args: Any, **kwargs: Any) -> str:
        template = self._template
        if template is None:
            raise ValueError(f"the pattern {self.pattern!r} cannot be reversed")
        slots = sum(1 for piece in template if not isinstance(piece, str))
        if len(args) + len(kwargs) != slots:
            raise ValueError(f"{self.pattern!r} takes {slots} argument(s), "
                             f"got {len(args) + len(kwargs)}")
        positional = list(args)
        out = []
        for piece in template:
            if isinstance(piece, str):
                out.append(piece)
                continue
            group_name = piece[0]
            if group_name is not None and group_name in kwargs:
                value = kwargs.pop(group_name)
            elif positional:
                value = positional.pop(0)
            else:
                raise ValueError(f"no value for group {group_name!r} of {self.pattern!r}")
            text = value if isinstance(value, str) else (
                value.decode("utf-8") if isinstance(value, bytes) else str(value))
            out.append(quote(text, safe="/"))
        if kwargs:
            raise ValueError(f"{self.pattern!r} has no groups named {sorted(kwargs)}")
        return "".join(out)


class PathPrefix:
    """A literal path prefix: the prefix itself and everything under ``prefix/``."""

    literal = None  # it matches more than one path

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/")

    def match(self, path: str) -> Arguments | None:
        prefix = self.prefix
        if not prefix or path == prefix or path.startswith(prefix + "/"):
            return [], {}
        return None

    def reverse(self) -> str:
        return self.prefix or "/"


class Rule:
    """One route: ``pattern`` -> ``target``, with keyword arguments for the target
    (a handler's ``initialize``) and an optional ``name`` for :meth:`Router.reverse`.

    The path is matched by ``matcher``: a :class:`PathPattern` of ``pattern`` unless
    another is given (a :class:`PathPrefix` for a mount).
    """

    def __init__(self, pattern: str | re.Pattern[str], target: Any,
                 kwargs: dict[str, Any] | None = None, name: str | None = None, *,
                 matcher: PathPattern | PathPrefix | None = None) -> None:
        if isinstance(pattern, re.Pattern):
            pattern = pattern.pattern
        self.pattern = pattern
        self.target = target
        self.kwargs = dict(kwargs or {})
        self.name = name
        self.matcher = matcher if matcher is not None else PathPattern(pattern)

    @property
    def literal(self) -> str | None:
        """The one path this rule matches, if it matches only one."""
        return self.matcher.literal

    def match(self, path: str) -> Arguments | None:
        """The target's arguments when ``path`` matches, else None."""
        return self.matcher.match(path)

    def reverse(self, *args: Any, **kwargs: Any) -> str:
        return self.matcher.reverse(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Rule({self.pattern!r}, {self.target!r}, name={self.name!r})"


def url(pattern: str, handler: Any, kwargs: dict[str, Any] | None = None,
        name: str | None = None) -> Rule:
    """A :class:`Rule` (the spelled-out form of a rule tuple)."""
    return Rule(pattern, handler, kwargs, name)


def to_rule(spec: Rule | Sequence[Any]) -> Rule:
    """A rule from a :class:`Rule` or a tuple ``(pattern, target[, kwargs][, name])``."""
    if isinstance(spec, Rule):
        return spec
    if not isinstance(spec, (tuple, list)) or not 2 <= len(spec) <= 4:
        raise TypeError(f"a rule is (pattern, handler[, kwargs][, name]), not {spec!r}")
    pattern, target, *rest = spec
    kwargs: dict[str, Any] | None = None
    name: str | None = None
    for extra in rest:
        if isinstance(extra, dict):
            kwargs = extra
        elif isinstance(extra, str) or extra is None:
            name = extra
        else:
            raise TypeError(f"a rule's extras are a kwargs dict and a name, not {extra!r}")
    return Rule(pattern, target, kwargs, name)


class _HostGroup:
    """The rules for one host pattern, with literal paths indexed: ``exact`` maps each
    literal path to the match the group's rules give it (the first rule that matches it,
    literal or not), ``others`` holds the rules that are not literal, in order."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        #: None for the catch-all ``.*``: every host.
        self.host_regex = None if pattern == ".*" else re.compile(pattern, re.IGNORECASE)
        self.rules: list[Rule] = []
        self.exact: dict[str, tuple[Rule, list[Any], dict[str, Any]]] = {}
        self.others: list[Rule] = []

    def extend(self, rules: list[Rule]) -> None:
        """Add ``rules`` after the group's others, and index the literal paths again."""
        self.rules.extend(rules)
        exact: dict[str, tuple[Rule, list[Any], dict[str, Any]]] = {}
        for rule in self.rules:
            path = rule.literal
            if path is not None and path not in exact:
                exact[path] = _first_match(self.rules, path)  # type: ignore[assignment]
        self.others = [rule for rule in self.rules if rule.literal is None]
        self.exact = exact


def _first_match(rules: list[Rule], path: str) -> tuple[Rule, list[Any], dict[str, Any]] | None:
    for rule in rules:
        found = rule.match(path)
        if found is not None:
            return rule, found[0], found[1]
    return None


class Router:
    """Rules grouped by host pattern."""

    def __init__(self) -> None:
        self._groups: list[_HostGroup] = []  # the catch-all group last
        self._named: dict[str, Rule] = {}

    def add(self, host_pattern: str, rules: Iterable[Rule | Sequence[Any]]) -> None:
        """Add rules for hosts matching ``host_pattern`` (``.*`` is the catch-all)."""
        compiled = [to_rule(r) for r in rules]
        for rule in compiled:
            if rule.name:
                if rule.name in self._named:
                    raise ValueError(f"two rules are named {rule.name!r}")
                self._named[rule.name] = rule
        pattern = _strip_anchors(host_pattern)
        group = next((g for g in self._groups if g.pattern == pattern), None)
        if group is None:
            group = _HostGroup(pattern)
            if self._groups and self._groups[-1].host_regex is None:
                self._groups.insert(len(self._groups) - 1, group)
            else:
                self._groups.append(group)
        group.extend(compiled)

    def lookup(self, host: str, path: str) -> tuple[Rule, list[Any], dict[str, Any]] | None:
        """The first rule that takes ``path`` on ``host`` (a Host value; the port does
        not count), with its arguments: ``(rule, args, kwargs)``; None when no rule does."""
        name = None  # worked out when a host pattern needs it
        for group in self._groups:
            if group.host_regex is not None:
                if name is None:
                    name = host_name(host)
                if not group.host_regex.fullmatch(name):
                    continue
            hit = group.exact.get(path)
            if hit is not None:
                rule, args, kwargs = hit
                return rule, [*args], {**kwargs}  # copies: the handler may keep them
            found = _first_match(group.others, path)
            if found is not None:
                return found
        return None

    def named(self, name: str) -> Rule:
        try:
            return self._named[name]
        except KeyError:
            raise KeyError(f"no rule is named {name!r}") from None

    def reverse(self, name: str, *args: Any, **kwargs: Any) -> str:
        return self.named(name).reverse(*args, **kwargs)


def _strip_anchors(pattern: str) -> str:
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    return pattern


def literal_prefix(pattern: str) -> str:
    """The literal path a mount pattern names: ``^/legacy/?(.*)$`` style suffixes and
    anchors are dropped; anything else that is not literal text raises ValueError."""
    pattern = _strip_anchors(pattern)
    for suffix in ("(.*)", ".*", "/?"):
        if pattern.endswith(suffix):
            pattern = pattern[: -len(suffix)]
    template = _reverse_template(pattern)
    if template is None or any(not isinstance(piece, str) for piece in template):
        raise ValueError(f"a WSGI mount needs a literal path prefix, not {pattern!r}")
    prefix = "".join(template)  # type: ignore[arg-type]
    if prefix and not prefix.startswith("/"):
        raise ValueError(f"a WSGI mount prefix must start with '/': {prefix!r}")
    return prefix.rstrip("/")


def _reverse_template(pattern: str) -> list[str | tuple[str | None]] | None:
    """Split ``pattern`` into literal strings and ``(group name or None,)`` slots; None
    when it holds anything else (alternation, quantifiers outside groups, nested or
    non-capturing groups, character classes)."""
    pieces: list[str | tuple[str | None]] = []
    literal: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n or pattern[i + 1].isalnum():
                return None  # \d, \w, backreferences...: not literal
            literal.append(pattern[i + 1])
            i += 2
            continue
        if c == "(":
            name: str | None = None
            if pattern.startswith("(?P<", i):
                close = pattern.find(">", i)
                if close < 0:
                    return None
                name = pattern[i + 4:close]
            elif pattern.startswith("(?", i):
                return None
            end = _group_end(pattern, i)
            if end is None:
                return None
            if end + 1 < n and pattern[end + 1] in "?*+{":
                return None  # an optional or repeated group has no single spelling
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append((name,))
            i = end + 1
            continue
        if c in _SPECIAL:
            return None
        literal.append(c)
        i += 1
    if literal:
        pieces.append("".join(literal))
    return pieces


def _group_end(pattern: str, start: int) -> int | None:
    """Index of the ``)`` closing the group opened at ``start``; None if nested groups."""
    i, n = start + 1, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            if i + 1 < n and pattern[i + 1] == "]":
                i += 1  # a literal "]" first in the class
        elif c == "(":
            return None
        elif c == ")":
            return i
        i += 1
    return None
