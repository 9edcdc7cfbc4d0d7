"""typer's parameter coercion, built only for a value that needs it; plain text and paths without pydantic.

typer (0.2x) coerces every parameter it parses through a pydantic ``TypeAdapter`` it builds first, even a
parameter no one gave (its value is ``None``, which typer returns untouched) and a text or a path, which
need no pydantic: ``trialflow protocol validate FILE`` imported pydantic for the group's unused ``--help``
and for ``FILE``, some 45 ms of a 100 ms budget (issue 12, Speed). typer offers no per-parameter way
around it (a ``parser=`` is wrapped in a ``TypeAdapter`` too). Here each parameter's coercion is built
when a value arrives: an ``str`` value of a ``str`` parameter is itself, a path parameter's ``str`` value
goes through typer's own path checks (existence, file or folder, resolution, the same messages) and
becomes the ``Path`` typer would return, a whole number or decimal spelt plainly and inside its ``min`` /
``max`` becomes the ``int`` or ``float`` pydantic would make of it (``trialflow simulate --patients 30
--runs 334`` then loads no pydantic), a default that is such a number, inside its range, is itself
(``next --horizon``'s 28 loaded pydantic for a value no one gave: ~20 ms of the worklist's start-up), and
a list of any of these takes each item so. Every other value and type (other spellings of numbers, values
out of range, clamps, choices, files, a ``parser=``, any other default) is coerced by typer's own
coercion, built then, as before. A test compares both on each kind of parameter trialflow declares. With
a typer that has no such layer (before 0.2x, coercion was click's) :func:`install` does nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

__all__ = ["install"]

#: the spellings of a whole number and of a decimal that mean the same to Python and to pydantic; any other
#: spelling (signs, blanks, underscores, exponents, "nan") is left to typer's coercion and its messages
_WHOLE = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,14})\.[0-9]{1,15}|" + _WHOLE.pattern)


def _inside(number: float, info: Any) -> bool:
    """Whether ``number`` lies within the parameter's ``min`` and ``max`` (those it has)."""
    return (info.min is None or number >= info.min) and (info.max is None or number <= info.max)


def install() -> None:
    """Make typer build a parameter's coercion only when a value needs it (idempotent)."""
    try:
        from typer import _coercion, _param_types, core
    except ImportError:  # a typer whose coercion is click's: nothing to defer
        return
    if not hasattr(core, "_TyperParameter") or not hasattr(_coercion, "RuntimeParam"):
        return

    @dataclass(frozen=True)
    class _Deferred(_coercion.RuntimeParam):
        """Plain text and paths coerced here; anything else by typer's coercion, built on first use."""

        descriptor: Any = None
        _typers: list[Any] = field(default_factory=list, compare=False, repr=False)

        def _typer(self) -> Any:
            if not self._typers:
                self._typers.append(_coercion.build_runtime_param(self.descriptor))
            return self._typers[0]

        def _plain(self, annotation: Any, value: Any, param: Any, ctx: Any) -> tuple[bool, Any]:
            info = self.parameter_info
            if info.parser is not None:
                return False, None
            if type(value) is not str:
                # a whole number or decimal default (``next --horizon``'s 28), inside its range: pydantic
                # gives it back as it is; anything else (another type, out of range, clamped) goes to typer
                if (annotation is int or annotation is float) and type(value) is annotation and not info.clamp \
                        and _inside(value, info):
                    return True, value
                return False, None
            if annotation is str:
                return True, value  # typer: str(value), which pydantic's str check keeps as it is
            if annotation is int or annotation is float:
                # a number inside its range, spelt plainly: what pydantic's lax int/float gives it;
                # out of range, clamped, or spelt otherwise, typer's coercion (and its message)
                spelling = _WHOLE if annotation is int else _DECIMAL
                if info.clamp or spelling.fullmatch(value) is None:
                    return False, None
                number = annotation(value)
                return (True, number) if _inside(number, info) else (False, None)
            if annotation is Path and info.path_type in (None, Path) and not info.allow_dash and value:
                # typer: coerce_cli_path with pydantic's Path(value) (the same as Path(value)); "" and
                # a dash are left to typer (os.stat("") and "-" differ between a str and a Path)
                checked = _param_types.coerce_cli_path(value, info, path_type=None, param=param, ctx=ctx)
                return True, Path(checked)  # type: ignore[arg-type]  # (path_type=None: the str given)
            return False, None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation = self.annotation
            if get_origin(annotation) is list and len(get_args(annotation)) == 1:
                items = value if isinstance(value, list | tuple) else [value]
                done = []
                for item in items:  # in order, as typer: the first bad item is the one reported
                    ok, coerced = self._plain(get_args(annotation)[0], item, param, ctx)
                    if not ok:
                        break  # typer coerces the whole list (the items before again: the same checks)
                    done.append(coerced)
                else:
                    if done:
                        return done
            else:
                ok, coerced = self._plain(annotation, value, param, ctx)
                if ok:
                    return coerced
            return self._typer()._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            d = self.type_descriptor
            self._runtime_param = _Deferred(parameter_info=d.parameter_info, annotation=d.annotation, descriptor=d)
        return self._runtime_param

    core._TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]
