"""API parameters given straight to an operator, and arguments nobody accepts.

``AnyFastChatOperator(temperature=0)`` reads as the API does, so the operators take the
API's parameters as keyword arguments besides ``completion_params``. Whatever is left
must be a BaseOperator argument: a misspelt name fails here with the names it may have
meant, rather than as Airflow's generic "Invalid arguments" naming a private class.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from airflow_provider_anyfast.compat import BaseOperator
from airflow_provider_anyfast.core.params import PARAM_NAMES


@cache
def base_operator_arguments() -> frozenset[str]:
    """Every keyword BaseOperator (and its bases) takes: ``retries``, ``pool``, ``task_id``..."""
    names: set[str] = set()
    for cls in BaseOperator.__mro__:
        init = vars(cls).get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD) and param.name != "self":
                names.add(param.name)
    return frozenset(names)


def own_arguments(cls: type) -> frozenset[str]:
    """The keyword arguments the operator's own ``__init__`` methods name."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is BaseOperator:
            break
        init = vars(klass).get("__init__")
        if init is not None:
            names.update(p.name for p in inspect.signature(init).parameters.values() if p.name != "self")
    return frozenset(names)


def operator_label(cls: type, kwargs: Mapping[str, Any]) -> str:
    """How messages name the task: ``@task.anyfast`` for the decorator, never its private class."""
    name = getattr(cls, "custom_operator_name", None) or cls.__name__
    task_id = kwargs.get("task_id")
    return f"{name}(task_id={task_id!r})" if task_id else name


def split_api_params(
    kwargs: dict[str, Any], completion_params: Mapping[str, Any] | None, *, owner: str, accepted: Iterable[str]
) -> dict[str, Any]:
    """Move API parameters out of ``kwargs`` into the completion parameters; refuse unknown names.

    ``kwargs`` is changed in place: what remains goes to BaseOperator. A parameter given both
    ways must agree, so neither silently wins.
    """
    params = dict(completion_params or {})
    for name in sorted(PARAM_NAMES & set(kwargs)):
        value = kwargs.pop(name)
        if name in params and params[name] != value:
            raise TypeError(
                f"{owner}: {name!r} is given twice, as {name}={value!r} and in completion_params "
                f"({params[name]!r}); keep one"
            )
        params[name] = value
    unknown = sorted(set(kwargs) - base_operator_arguments())
    if unknown:
        known = sorted(PARAM_NAMES | set(accepted) | base_operator_arguments())
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
        raise TypeError(
            f"{owner} got unknown argument(s) {', '.join(hints)}. API parameters it takes directly (or in "
            f"completion_params): {', '.join(sorted(PARAM_NAMES))}; its own arguments: "
            f"{', '.join(sorted(set(accepted) - {'kwargs'}))}; plus any BaseOperator argument (retries, pool, ...)."
        )
    return params
