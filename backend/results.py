"""Typed results: what a job kind returns and what pages read.

A job kind's result is a frozen dataclass deriving from :class:`Result`. The job runner
stores ``result.to_dict()`` under the ``"result"`` key of the artifact's ``meta.json``
sidecar (beside, never over, the runner's own keys), and
``backend.result(artifact_id)`` gives it back as the same class. No pickle: plain JSON.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, TypeVar

import numpy as np

__all__ = ["Result", "EmptyResult", "json_safe"]

R = TypeVar("R", bound="Result")


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars and arrays unwrapped, NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Result):
        return value.to_dict()
    return value


@dataclasses.dataclass(frozen=True)
class Result:
    """Base of the typed results; subclasses are frozen dataclasses of JSON-able fields.

    Fields may be numbers, strings, booleans, None, lists, dicts or nested Results.
    Non-finite floats are stored as None.
    """

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON (nested Results as dicts)."""
        return {f.name: json_safe(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[R], d: dict[str, Any]) -> R:
        """The result from :meth:`to_dict`'s output (missing optional fields take their
        defaults; nested Result fields are rebuilt; unknown keys raise TypeError)."""
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in d.items():
            sub = _result_class(hints.get(key))
            kwargs[key] = sub.from_dict(value) if sub is not None and isinstance(value, dict) else value
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class EmptyResult(Result):
    """The result of a kind whose output is only its files."""


def _result_class(hint: Any) -> type[Result] | None:
    if isinstance(hint, type) and issubclass(hint, Result):
        return hint
    for arg in typing.get_args(hint):  # Optional[SomeResult]
        if isinstance(arg, type) and issubclass(arg, Result):
            return arg
    return None
