"""Routing: rules that map a host and a decoded path to a handler or a mounted WSGI app.

Promises:

* a rule's pattern is a regular expression matched against the *whole* percent-decoded
  path (``re.fullmatch``); positional groups become positional arguments, named groups
  keyword arguments (a group that did not take part is passed as None);
* a rule whose target is a WSGI application (any callable that is not a handler class)
  is a *mount*: its pattern must be a literal prefix, and it takes the prefix itself
  and everything under ``prefix/``.  The app runs behind
  ``WSGIGateway(app, root_path=prefix)``, so ``SCRIPT_NAME`` is the prefix and
  ``PATH_INFO`` the rest, exactly as the WSGI server runs apps;
* host groups are tried in the order they were added, the catch-all ``.*`` group last;
  the first rule that matches wins;
* :meth:`Router.reverse` rebuilds a path from a pattern made of literal text and
  top-level groups; arguments are percent-encoded (``/`` kept).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote

from ..wsgi import WSGIGateway
from .handler import RequestHandler

__all__ = ["Match", "Router", "Rule", "WSGIMount", "mount", "url"]

_SPECIAL = set(".^$*+?{}[]|()")


class WSGIMount:
    """A WSGI application served under ``prefix`` through a :class:`WSGIGateway`.

    ``gateway_options`` go to the gateway (``threads=N`` to run the app on a pool).
    """

    def __init__(self, app: Callable[..., Any], prefix: str = "", **gateway_options: Any) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.gateway = WSGIGateway(app, root_path=self.prefix, **gateway_options)

    def matches(self, path: str) -> bool:
        prefix = self.prefix
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def __call__(self, request: Any, responder: Any) -> None:
        """The request delegate: the gateway runs the app for this request."""
        self.gateway(request, responder)

    def __repr__(self) -> str:
        return f"WSGIMount({self.prefix!r}, {self.app!r})"


class Rule:
    """One route: ``pattern`` -> ``target`` (a handler class, or a :class:`WSGIMount`),
    with keyword arguments for the handler's ``initialize`` and an optional ``name``
    for :meth:`Router.reverse`."""

    def __init__(self, pattern: str | re.Pattern[str], target: Any,
                 kwargs: dict[str, Any] | None = None, name: str | None = None) -> None:
        if isinstance(pattern, re.Pattern):
            pattern = pattern.pattern
        self.pattern = pattern
        self.name = name
        self.kwargs = dict(kwargs or {})
        #: The one path a handler rule matches when its pattern is literal text, else None.
        self.literal: str | None = None
        self._named_groups: frozenset[int] = frozenset()
        if isinstance(target, type) and issubclass(target, RequestHandler):
            self.target: Any = target
            self.regex: re.Pattern[str] | None = re.compile(_strip_anchors(pattern))
            self._template = _reverse_template(_strip_anchors(pattern))
            if self._template is not None and all(isinstance(piece, str)
                                                   for piece in self._template):
                self.literal = "".join(self._template)  # type: ignore[arg-type]
            self._named_groups = frozenset(self.regex.groupindex.values())
        elif isinstance(target, WSGIMount) or callable(target):
            if not isinstance(target, WSGIMount):
                target = WSGIMount(target, literal_prefix(pattern), **self.kwargs)
            self.target = target
            self.regex = None
            self._template = [target.prefix or "/"]
        else:
            raise TypeError(f"a rule's target must be a RequestHandler subclass or a WSGI "
                            f"application, not {target!r}")

    @property
    def is_mount(self) -> bool:
        return self.regex is None

    def match(self, path: str) -> tuple[list[Any], dict[str, Any]] | None:
        """The handler arguments when ``path`` matches, else None."""
        if self.regex is None:
            return ([], {}) if self.target.matches(path) else None
        m = self.regex.fullmatch(path)
        if m is None:
            return None
        named = self._named_groups
        if named:
            kwargs = m.groupdict()
            args = [g for i, g in enumerate(m.groups(), 1) if i not in named]
            return args, kwargs
        return list(m.groups()), {}

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

    def __repr__(self) -> str:
        return f"Rule({self.pattern!r}, {self.target!r}, name={self.name!r})"


def url(pattern: str, handler: Any, kwargs: dict[str, Any] | None = None,
        name: str | None = None) -> Rule:
    """A :class:`Rule` (the spelled-out form of a rule tuple)."""
    return Rule(pattern, handler, kwargs, name)


def mount(prefix: str, app: Callable[..., Any], name: str | None = None,
          **gateway_options: Any) -> Rule:
    """A rule serving WSGI ``app`` under ``prefix`` (``SCRIPT_NAME`` = ``prefix``)."""
    return Rule(literal_prefix(prefix), WSGIMount(app, literal_prefix(prefix), **gateway_options),
                name=name)


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


class Match:
    """What :meth:`Router.find` found: the rule and the handler's arguments."""

    __slots__ = ("rule", "args", "kwargs")

    def __init__(self, rule: Rule, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.rule = rule
        self.args = args
        self.kwargs = kwargs


class Router:
    """Rules grouped by host pattern."""

    def __init__(self) -> None:
        self._groups: list[tuple[re.Pattern[str], list[Rule]]] = []
        self._default: tuple[re.Pattern[str], list[Rule]] | None = None
        self._named: dict[str, Rule] = {}
        self._index: list[tuple[re.Pattern[str], dict[str, tuple[int, Rule]],
                                list[tuple[int, Rule]]]] | None = None
        #: Path -> ``(handler class, kwargs)`` for literal paths (starting with "/", no
        #: "%") whose rule wins on any host (no other rule before it takes the path);
        #: None: to rebuild.
        self.exact_targets: dict[str, tuple[type[RequestHandler], dict[str, Any]]] | None = None

    def add(self, host_pattern: str, rules: Iterable[Rule | Sequence[Any]]) -> None:
        """Add rules for hosts matching ``host_pattern`` (``.*`` is the catch-all)."""
        compiled = [to_rule(r) for r in rules]
        self._index = None  # rebuilt on the next find
        self.exact_targets = None
        pattern = _strip_anchors(host_pattern)
        for group in self._groups + ([self._default] if self._default else []):
            if group[0].pattern == pattern:
                group[1].extend(compiled)
                break
        else:
            group = (re.compile(pattern, re.IGNORECASE), compiled)
            if pattern == ".*":
                self._default = group
            else:
                self._groups.append(group)
        for rule in compiled:
            if rule.name:
                if rule.name in self._named:
                    raise ValueError(f"two rules are named {rule.name!r}")
                self._named[rule.name] = rule

    def find(self, host: str, path: str) -> Match | None:
        found = self.lookup(host, path)
        return None if found is None else Match(*found)

    def lookup(self, host: str, path: str
               ) -> tuple[Rule, list[Any], dict[str, Any]] | None:
        """:meth:`find` as a tuple ``(rule, args, kwargs)``, or None."""
        index = self._index
        if index is None:
            index = self._build_index()
        for host_regex, exact, others in index:
            if not host_regex.fullmatch(host):
                continue
            hit = exact.get(path)
            if hit is None:
                for _, rule in others:
                    found = rule.match(path)
                    if found is not None:
                        return rule, found[0], found[1]
                continue
            position = hit[0]
            for i, rule in others:  # rules before the literal one still come first
                if i > position:
                    break
                found = rule.match(path)
                if found is not None:
                    return rule, found[0], found[1]
            return hit[1], [], {}
        return None

    def _build_index(self) -> list[tuple[re.Pattern[str], dict[str, tuple[int, Rule]],
                                         list[tuple[int, Rule]]]]:
        """Per host group, in order: literal paths in a dict (the first rule for a path
        wins), and the other rules with their positions."""
        index = []
        for group in self._groups + ([self._default] if self._default else []):
            host_regex, rules = group
            exact: dict[str, tuple[int, Rule]] = {}
            others: list[tuple[int, Rule]] = []
            for i, rule in enumerate(rules):
                if rule.literal is not None and rule.regex is not None \
                        and type(rule).match is Rule.match:
                    exact.setdefault(rule.literal, (i, rule))
                else:
                    others.append((i, rule))
            index.append((host_regex, exact, others))
        self._index = index
        return index

    def build_exact_targets(self) -> dict[str, tuple[type[RequestHandler], dict[str, Any]]]:
        """Fill :attr:`exact_targets` (empty when some rules are for particular hosts)."""
        targets: dict[str, tuple[type[RequestHandler], dict[str, Any]]] = {}
        if not self._groups and self._default is not None:
            rules = self._default[1]
            seen: set[str] = set()
            for i, rule in enumerate(rules):
                literal = rule.literal
                if literal is None or rule.regex is None or literal in seen \
                        or type(rule).match is not Rule.match:
                    continue
                if not literal.startswith("/") or "%" in literal:
                    # Left to the general look-up, so that a key here is also what the
                    # request target spells (no percent-decoding, no "*").
                    continue
                seen.add(literal)
                if any(earlier.match(literal) is not None for earlier in rules[:i]):
                    continue  # an earlier pattern takes this path (with its own arguments)
                targets[literal] = (rule.target, rule.kwargs)
        self.exact_targets = targets
        return targets

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
