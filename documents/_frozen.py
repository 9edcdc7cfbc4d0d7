"""Frozen, slotted dataclasses made without compiling code for each class (issue 12: start-up).

``@dataclass(frozen=True, slots=True)`` writes the source of six methods (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) for every class and compiles each with
``exec``: some 4 M instructions a class, 2.6 M of them the compiler's, and a store command makes some 60
such classes before it reads a row. :func:`frozen` makes the same class from the same fields with
methods written once, here, which read the class's fields from a tuple: the dataclass machinery itself
(``dataclasses.dataclass`` with nothing to generate) still collects the fields and makes the slotted
class, so ``fields``, ``replace``, ``asdict``, ``is_dataclass``, ``__match_args__`` and ``__slots__`` are
the stock ones. A generic constructor is some 2 µs slower an instance than a compiled one, so a class
that makes many (a big store's events) gets the stock decorator's compiled constructor after its
``_HOT``-th instance: a short command makes few instances of most classes and compiles for none of them.

Behaviour is the stock frozen dataclass's, as ``tests/test_frozen.py`` checks against it: the same
constructor (positional and keyword arguments, defaults and default factories, keyword-only fields,
``__post_init__``, the same ``TypeError`` for a missing, repeated or unknown argument), the same ``repr``
(recursion guard included), equality only with an instance of the very same class over the compared
fields, the hash of the hashed fields' tuple, ``FrozenInstanceError`` on setting or deleting a field,
``copy``/``pickle`` through ``__getstate__``/``__setstate__``, and the same ``__doc__`` for a class without
a docstring. What differs is invisible to the code: ``inspect.signature`` of ``__init__`` is
``(self, *args, **kwargs)`` (the class's own signature, ``__doc__``, is written as the stock one) and
``__dataclass_params__`` records the flags the machinery was called with (so a dataclass cannot inherit
from one of these: a frozen child is refused as a child of a non-frozen base). A class with ``InitVar``
fields, a dataclass base, its own ``__init__`` or a field named ``self`` is made by the stock decorator
(none on the start-up path has any of these).
"""

from __future__ import annotations

import dataclasses
import inspect
from _thread import get_ident
from collections.abc import Callable
from itertools import pairwise
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["frozen"]

_T = TypeVar("_T", bound=type)
_super: Any = super  # (the stock methods' ``super(cls, self)``, over a class mypy sees as a plain ``type``)
_MISSING = dataclasses.MISSING


def _init(cls_name: str, names: tuple[str, ...], npos: int, defaults: dict[str, Any],
          factories: dict[str, Callable[[], Any]], no_init: tuple[tuple[str, Any, bool], ...],
          post_init: bool) -> Callable[..., None]:
    known = frozenset(names)
    setter = object.__setattr__
    made = [0]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        made[0] += 1
        if made[0] == _HOT:  # many instances: the compiled constructor is worth its compiling from now on
            owner = type(self) if type(self).__init__ is __init__ else None
            if owner is not None:
                owner.__init__ = _compiled_init(cls_name, names, npos, defaults, factories, no_init, post_init)
        if len(args) > npos or not known.issuperset(kwargs) or any(name in kwargs for name in names[:len(args)]):
            _stock_error(cls_name, names, npos, defaults.keys() | factories.keys(), args, kwargs)
        for name, value in zip(names, args, strict=False):
            setter(self, name, value)
        for i in range(len(args), len(names)):
            name = names[i]
            if name in kwargs:
                setter(self, name, kwargs[name])
            elif name in defaults:
                setter(self, name, defaults[name])
            elif name in factories:
                setter(self, name, factories[name]())
            else:
                _stock_error(cls_name, names, npos, defaults.keys() | factories.keys(), args, kwargs)
        for name, value, factory in no_init:
            setter(self, name, value() if factory else value)
        if post_init:
            self.__post_init__()

    return __init__


_HOT = 200  # instances made with the generic constructor before a class gets a compiled one
_FACTORY: Any = object()  # a field with a default factory was not given (as the stock ``_HAS_DEFAULT_FACTORY``)


def _compiled_init(qualname: str, names: tuple[str, ...], npos: int, defaults: dict[str, Any],
                   factories: dict[str, Callable[[], Any]], no_init: tuple[tuple[str, Any, bool], ...],
                   post_init: bool) -> Callable[..., None]:
    """The constructor the stock decorator compiles, for a class that makes many instances (a big store's
    events): the same signature and body, compiled once the generic one has made ``_HOT`` instances."""
    scope: dict[str, Any] = {"__set": object.__setattr__, "__FACTORY": _FACTORY}
    params, body = [], []
    for i, name in enumerate(names):
        if i == npos:
            params.append("*")
        if name in defaults:
            scope[f"__dflt_{name}"] = defaults[name]
            params.append(f"{name}=__dflt_{name}")
        elif name in factories:
            scope[f"__fac_{name}"] = factories[name]
            params.append(f"{name}=__FACTORY")
        else:
            params.append(name)
        value = f"__fac_{name}() if {name} is __FACTORY else {name}" if name in factories else name
        body.append(f"    __set(self, {name!r}, {value})")
    for name, value, factory in no_init:
        scope[f"__noinit_{name}"] = value
        body.append(f"    __set(self, {name!r}, __noinit_{name}{'()' if factory else ''})")
    if post_init:
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    namespace: dict[str, Any] = {}
    exec(source, scope, namespace)  # (our own text, as the stock decorator's)
    fn = namespace["__init__"]
    fn.__code__ = fn.__code__.replace(co_qualname=f"{qualname}.__init__")
    fn.__qualname__ = f"{qualname}.__init__"
    return fn


def _stock_error(qualname: str, names: tuple[str, ...], npos: int, optional: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
    """Raise the very ``TypeError`` the stock ``__init__`` raises for these arguments (a call that fails only).

    The interpreter words it from the signature, so a function with the same one is made and called."""
    params = [f"{n}=None" if n in optional else n for n in names]
    if len(names) > npos:
        params.insert(npos, "*")
    namespace: dict[str, Any] = {}
    exec(f"def __init__(self, {', '.join(params)}): pass", {}, namespace)  # (our own text, on the error path only)
    fn = namespace["__init__"]
    fn.__code__ = fn.__code__.replace(co_qualname=f"{qualname}.__init__")
    fn.__qualname__ = f"{qualname}.__init__"
    fn(None, *args, **kwargs)
    raise AssertionError("the arguments were refused, yet a function of the same signature took them")


def _doc(cls_name: str, pos: list[dataclasses.Field[Any]], kw: list[dataclasses.Field[Any]]) -> str:
    """The ``__doc__`` the stock decorator gives a class without one: its name and ``__init__``'s signature."""
    def one(f: dataclasses.Field[Any]) -> str:
        text = f"{f.name}: {inspect.formatannotation(f.type)}"
        if f.default is not _MISSING:
            return f"{text} = {f.default!r}"
        return f"{text} = <factory>" if f.default_factory is not _MISSING else text
    parts = [one(f) for f in pos] + (["*", *(one(f) for f in kw)] if kw else [])
    return f"{cls_name}({', '.join(parts)})"


def _tuple_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple of these attributes' values (what the stock methods compare and hash)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _methods(cls: type, fields: tuple[dataclasses.Field[Any], ...], own: frozenset[str]) -> None:
    """The methods, each unless the class body wrote its own (as the stock decorator does)."""
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    all_names = frozenset(f.name for f in fields)
    running: set[tuple[int, int]] = set()

    def __repr__(self: Any) -> str:
        key = (id(self), get_ident())
        if key in running:
            return "..."
        running.add(key)
        try:
            inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
            return f"{self.__class__.__qualname__}({inner})"
        finally:
            running.discard(key)

    compared_of, hashed_of = _tuple_of(compared), _tuple_of(hashed)

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return compared_of(self) == compared_of(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hashed_of(self))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in all_names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        _super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in all_names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        _super(cls, self).__delattr__(name)

    def __getstate__(self: Any) -> list[Any]:
        return [getattr(self, f.name) for f in fields]

    def __setstate__(self: Any, state: list[Any]) -> None:
        for f, value in zip(fields, state, strict=False):
            object.__setattr__(self, f.name, value)

    for method in (__repr__, __eq__, __hash__, __setattr__, __delattr__, __getstate__, __setstate__):
        if method.__name__ in own:
            if method.__name__ in ("__setattr__", "__delattr__"):
                raise TypeError(f"Cannot overwrite attribute {method.__name__} in class {cls.__name__}")
            continue
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)


@overload
def frozen(cls: _T, /) -> _T: ...
@overload
def frozen(*, kw_only: bool = False) -> Callable[[_T], _T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def frozen(cls: Any = None, /, *, kw_only: bool = False) -> Any:
    """``@dataclass(frozen=True, slots=True[, kw_only=...])``, without compiling methods for the class."""
    if cls is None:
        return lambda c: _make(c, kw_only)
    return _make(cls, kw_only)


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not _MISSING or f.default_factory is not _MISSING


def _make(cls: Any, kw_only: bool) -> Any:
    annotations = inspect.get_annotations(cls)
    if (any(isinstance(b, type) and dataclasses.is_dataclass(b) for b in cls.__mro__[1:])
            or any("InitVar" in str(a) for a in annotations.values())
            or "__init__" in cls.__dict__ or "self" in annotations):  # (the stock decorator keeps an own __init__)
        return dataclasses.dataclass(frozen=True, slots=True, kw_only=kw_only)(cls)
    body = cls.__dict__
    own = frozenset(n for n in ("__repr__", "__eq__", "__setattr__", "__delattr__", "__getstate__", "__setstate__")
                    if n in body)
    if body.get("__hash__", _MISSING) not in (_MISSING, None) or ("__hash__" in body and "__eq__" not in body):
        own |= {"__hash__"}  # an explicit __hash__ (None set by the class body's __eq__ is not one)
    had_doc = bool(body.get("__doc__"))
    if not had_doc:
        cls.__doc__ = "-"  # (the stock decorator would compute it from inspect.signature: written below instead)
    made = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True, kw_only=kw_only)(cls)
    fields = dataclasses.fields(made)
    init = [f for f in fields if f.init]
    pos, kw = [f for f in init if not f.kw_only], [f for f in init if f.kw_only]
    for before, after in pairwise(pos):  # the stock check, at the class's definition
        if _has_default(before) and not _has_default(after):
            raise TypeError(f"non-default argument {after.name!r} follows default argument")
    names = tuple(f.name for f in (*pos, *kw))
    defaults = {f.name: f.default for f in init if f.default is not _MISSING}
    factories = {f.name: f.default_factory for f in init if f.default_factory is not _MISSING}
    no_init = tuple((f.name, f.default_factory, True) if f.default_factory is not _MISSING
                    else (f.name, f.default, False) for f in fields
                    if not f.init and (f.default is not _MISSING or f.default_factory is not _MISSING))
    init_fn = _init(made.__qualname__, names, len(pos), defaults, factories, no_init,
                    hasattr(made, "__post_init__"))
    init_fn.__qualname__ = f"{made.__qualname__}.__init__"
    made.__init__ = init_fn
    _methods(made, fields, own)
    if not had_doc:
        made.__doc__ = _doc(made.__name__, pos, kw)
    return made
