"""One signature for each seed-API method, taken where it is needed instead of written again.

A protocol member (`same_as`, `awaited_as`) or a manager's method (worker.state.faces) takes
the parameters, their names and types, and the docstring of the method it stands for: mypy
checks every call and every implementation against that one signature, and `help()` and
`inspect.signature` show it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
Self_ = TypeVar("Self_")
Method = TypeVar("Method", bound=Callable[..., Any])


def same_as(
    source: Callable[Concatenate[Any, P], R],
) -> Callable[[Callable[[Self_], R]], Callable[Concatenate[Self_, P], R]]:
    """A protocol member with `source`'s parameters and text: decorates a `(self)` stub whose
    return type, checked against `source`'s, says what the member answers."""
    return functools.partial(_stand_in, source)


def awaited_as(
    source: Callable[Concatenate[Any, P], R],
) -> Callable[
    [Callable[[Self_], Coroutine[Any, Any, R]]],
    Callable[Concatenate[Self_, P], Coroutine[Any, Any, R]],
]:
    """As same_as, for the asyncio face: decorates an `async def (self)` stub; the member takes
    `source`'s arguments and is awaited."""
    return functools.partial(_stand_in, source)


def named_as(function: Method, source: Callable[..., Any]) -> Method:
    """`function`, bearing `source`'s name, docstring and (for inspect) signature."""
    functools.update_wrapper(function, source)
    return function


def _stand_in(source: Callable[..., Any], stub: Callable[..., Any]) -> Callable[..., Any]:
    # Only the type checker reads a protocol member; at run time the stub stays, named as
    # the method it stands for.
    return named_as(stub, source)
