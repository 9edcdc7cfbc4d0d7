"""``documents/_frozen.py``: a class made by ``frozen`` behaves as ``@dataclass(frozen=True, slots=True)``."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from trialflow.documents import _frozen
from trialflow.documents._frozen import frozen


@frozen
class Picklable:
    a: str
    b: tuple[int, ...] = ()


def _pair(kw_only: bool = False) -> tuple[type, type]:
    """The same class body twice: made by the stock decorator and by ``frozen``."""
    def body() -> type:
        class Sample:
            a: str
            b: int = 3
            c: tuple[str, ...] = field(default=(), hash=False)
            d: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
        return Sample
    return (dataclass(frozen=True, slots=True, kw_only=kw_only)(body()),
            frozen(kw_only=kw_only)(body()))


def _outcome(make: Callable[[], Any]) -> tuple[str, str]:
    try:
        obj = make()
    except Exception as e:  # (the very exception is what is compared)
        return type(e).__name__, str(e).split(".", 1)[-1]
    return "ok", repr(obj)


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("x",), {}), (("x", 1), {}), (("x", 1, ("p",), {"k": 1}), {}), ((), {"a": "x", "c": ("q",)}),
    ((), {}), (("x", 1, (), {}, 5), {}), (("x",), {"a": "y"}), (("x",), {"zz": 1}), ((), {"b": 1}),
]


@pytest.mark.parametrize("hot", [False, True], ids=["generic", "compiled"])
@pytest.mark.parametrize("kw_only", [False, True])
@pytest.mark.parametrize("call", CALLS, ids=repr)
def test_constructor_repr_and_errors_as_the_stock_dataclass(kw_only: bool, hot: bool,
                                                            call: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
    """The generic constructor, and the compiled one a class gets once it has made ``_HOT`` instances."""
    stock, ours = _pair(kw_only)
    first = ours.__init__
    if hot:
        made = [ours(a=str(i)) for i in range(_frozen._HOT)]
        assert ours.__init__ is not first and made[-1] == ours(a=str(_frozen._HOT - 1))
        assert made[0].d == {} and made[0].d is not made[1].d  # (a factory's value per instance, as before)
    args, kwargs = call
    assert _outcome(lambda: ours(*args, **kwargs)) == _outcome(lambda: stock(*args, **kwargs))
    assert (ours.__init__ is first) != hot


def test_equality_hash_frozenness_copy_pickle_and_fields() -> None:
    stock, ours = _pair()
    s1, s2, o1, o2 = stock("x", 1, ("p",), {"k": 1}), stock("x", 1, ("q",), {}), ours("x", 1, ("p",), {"k": 1}), \
        ours("x", 1, ("q",), {})
    assert (o1 == o2, o1 == ours("x", 2), o1 != ours("x", 1, ("p",))) == (s1 == s2, s1 == stock("x", 2),
                                                                          s1 != stock("x", 1, ("p",)))
    assert o1 != s1 and (o1 == object()) is False  # only the very same class compares
    assert hash(o1) == hash(s1) and hash(o1) == hash(o2)  # c is not hashed
    nan = float("nan")  # (compared as tuples, as the stock __eq__ does: the same object equals itself)
    assert (stock("x", 1, (nan,), {}) == stock("x", 1, (nan,), {})) == (ours("x", 1, (nan,)) == ours("x", 1, (nan,)))
    assert (stock(nan) == stock(nan)) == (ours(nan) == ours(nan))
    for obj in (o1,):
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.a = "y"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del obj.a  # type: ignore[misc]
        with pytest.raises(AttributeError):
            obj.other = 1  # type: ignore[attr-defined]
    assert copy.copy(o1) == o1 and copy.deepcopy(o1) == o1
    assert pickle.loads(pickle.dumps(Picklable("x", (1,)))) == Picklable("x", (1,))
    assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(stock)]
    assert dataclasses.replace(o1, b=9) == ours("x", 9, ("p",)) and dataclasses.asdict(o1) == dataclasses.asdict(s1)
    assert ours.__slots__ == stock.__slots__ and ours.__match_args__ == stock.__match_args__
    assert ours.__doc__ == stock.__doc__
    assert repr(o1) == repr(s1)


def test_recursive_repr_and_post_init_and_own_methods() -> None:
    made: list[str] = []

    def body() -> type:
        class Node:
            """A node."""
            items: list[Any]

            def __post_init__(self) -> None:
                made.append("post")

            def __repr__(self) -> str:
                return "own"
        return Node
    stock, ours = dataclass(frozen=True, slots=True)(body()), frozen(body())
    assert repr(ours([])) == repr(stock([])) == "own" and made == ["post", "post"]
    assert ours.__doc__ == "A node."

    def loop() -> type:
        class Loop:
            items: list[Any]
        return Loop
    s_cls, o_cls = dataclass(frozen=True, slots=True)(loop()), frozen(loop())
    s, o = s_cls([]), o_cls([])
    s.items.append(s)
    o.items.append(o)
    assert repr(o) == repr(s)


def test_a_class_with_its_own_init_keeps_it_as_the_stock_decorator_does() -> None:
    def body() -> type:
        class Scaled:
            x: int

            def __init__(self, v: int) -> None:
                object.__setattr__(self, "x", v * 10)
        return Scaled
    stock, made = dataclass(frozen=True, slots=True)(body()), frozen(body())
    assert made(1).x == stock(1).x == 10 and repr(made(1)) == repr(stock(1))


def test_a_field_without_a_default_after_one_with_is_refused_at_the_definition() -> None:
    class Body:
        a: int = 1
        b: int
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        frozen(Body)


def test_a_field_named_self_works_as_with_the_stock_decorator() -> None:
    class Body:
        self: int
    assert frozen(Body)(self=1).self == 1
