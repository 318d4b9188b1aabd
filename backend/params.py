"""Parameters declared once: type, default, bounds or choices, unit and help of each.

A :class:`ParamSpec` is the single declaration of an algorithm's (or a job kind's)
parameters, in the spirit of scikit-learn's ``_parameter_constraints``. Everything reads
it: the estimator's own validation at its public boundary, the job validator
(:func:`backend.jobs.resolve_spec`), the service's request schema and the generic form
(``components/form.py``). Nothing is ever fixed silently: a value out of range raises
:class:`~backend.errors.InvalidParameterError` naming the parameter, the allowed values
and the value received.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping

from backend.errors import InvalidParameterError

__all__ = ["AUTO", "Param", "ParamSpec"]

AUTO = "auto"


@dataclass(frozen=True)
class Param:
    """One parameter.

    Parameters
    ----------
    name : str
        The field's standard name (``n_neighbors``, ``n_components``, ``t``, ``random_state``).
    type : {int, float, str, bool, list, object}
        The JSON type of a value (``object``: any, normalised by ``parse``). ``float`` accepts integers; ``int`` accepts integral floats
        (``3.0``, as JSON may send them).
    default : object
        Used when the parameter is absent. ``None`` needs ``nullable``, ``"auto"`` needs ``auto``.
    help : str
        One sentence for the form's help text and the service schema.
    low, high : float, optional
        Inclusive bounds (``low_open``/``high_open`` make them exclusive).
    choices : tuple, optional
        The allowed values (for ``str``, ``int`` or ``float``).
    nullable : bool, default=False
        ``None`` is allowed (e.g. ``random_state=None``: not reproducible).
    auto : bool, default=False
        The string ``"auto"`` is allowed (resolved by the algorithm, recorded in its result).
    unit : str
        Unit of the value, shown beside it.
    column : bool, default=False
        The value names a column of the dataset (checked against it by the job layer).
    store_id : bool, default=False
        The value is a dataset or artifact id (16 hex digits).
    label : str, optional
        The form's label (default: ``name``).
    step : float, optional
        The form's step for numbers.
    parse : callable, optional
        For structured values (``type=list``): ``parse(value, name) -> value`` normalises or
        raises :class:`InvalidParameterError`.
    """

    name: str
    type: type
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    nullable: bool = False
    auto: bool = False
    unit: str = ""
    column: bool = False
    store_id: bool = False
    low_open: bool = False
    high_open: bool = False
    label: str = ""
    step: float | None = None
    parse: Callable[[Any, str], Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type not in (int, float, str, bool, list, object):
            raise TypeError(f"Param {self.name}: type must be int, float, str, bool, list or object")
        if self.type is object and self.parse is None:
            raise TypeError(f"Param {self.name}: a structured value (object) needs parse")
        if self.default is not None or self.nullable:
            self.validate(self.default)  # a declaration error is a bug: fail at import

    # -- description -------------------------------------------------------------------
    def allowed(self) -> str:
        """The allowed values in words, e.g. ``"an integer in [2, 200]"``."""
        if self.choices is not None:
            text = f"one of {list(self.choices)}"
        elif self.type is bool:
            text = "true or false"
        elif self.type in (int, float):
            noun = "an integer" if self.type is int else "a number"
            if self.low is not None and self.high is not None:
                lo = "(" if self.low_open else "["
                hi = ")" if self.high_open else "]"
                text = f"{noun} in {lo}{_fmt(self.low)}, {_fmt(self.high)}{hi}"
            elif self.low is not None:
                text = f"{noun} {'>' if self.low_open else '>='} {_fmt(self.low)}"
            elif self.high is not None:
                text = f"{noun} {'<' if self.high_open else '<='} {_fmt(self.high)}"
            else:
                text = noun
        elif self.store_id:
            text = "an id of 16 hex digits"
        elif self.column:
            text = "a column name"
        elif self.type is list:
            text = "a list"
        else:
            text = "a text"
        if self.auto:
            text = f"'auto' or {text}"
        if self.nullable:
            text += " (or null)"
        return text

    def _error(self, value: Any) -> InvalidParameterError:
        return InvalidParameterError(f"{self.name} must be {self.allowed()}; got {value!r}.")

    # -- validation --------------------------------------------------------------------
    def validate(self, value: Any) -> Any:
        """The value as stored (ints as int, floats as float); raises InvalidParameterError."""
        if value is None:
            if self.nullable:
                return None
            raise self._error(value)
        if self.auto and isinstance(value, str) and value == AUTO:
            return AUTO
        if self.parse is not None:
            return self.parse(value, self.name)
        if self.type is bool:
            if isinstance(value, bool):
                return value
            raise self._error(value)
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise self._error(value)
            if isinstance(value, numbers.Integral):
                value = int(value)
            elif math.isfinite(float(value)) and float(value).is_integer():
                value = int(value)
            else:
                raise self._error(value)
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise self._error(value)
            value = float(value)
            if not math.isfinite(value):
                raise self._error(value)
        elif self.type is str:
            if not isinstance(value, str):
                raise self._error(value)
            if self.store_id and not _is_store_id(value):
                raise self._error(value)
        elif self.type is list:
            if not isinstance(value, (list, tuple)):
                raise self._error(value)
            value = list(value)
        if self.choices is not None:
            if value not in self.choices:
                raise self._error(value)
            return value
        if self.type in (int, float):
            if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
                raise self._error(value)
            if self.high is not None and (value > self.high
                                          or (self.high_open and value == self.high)):
                raise self._error(value)
        return value

    def json_schema(self) -> dict[str, Any]:
        """A JSON Schema of the value (for the service's OpenAPI document)."""
        base: dict[str, Any] = {int: {"type": "integer"}, float: {"type": "number"},
                                str: {"type": "string"}, bool: {"type": "boolean"},
                                list: {"type": "array"}, object: {}}[self.type]
        base = dict(base)
        if self.choices is not None:
            base["enum"] = list(self.choices)
        if self.low is not None:
            base["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.high is not None:
            base["exclusiveMaximum" if self.high_open else "maximum"] = self.high
        options = [base]
        if self.auto:
            options.append({"const": AUTO})
        if self.nullable:
            options.append({"type": "null"})
        schema: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
        schema["description"] = (self.help + (f" Unit: {self.unit}." if self.unit else "")).strip()
        if self.default is not None or self.nullable:
            schema["default"] = self.default
        return schema


class ParamSpec:
    """The parameters of one algorithm or job kind, in declaration order.

    Examples
    --------
    >>> spec = ParamSpec(Param("k", int, 10, low=1, high=100, help="neighbours"))
    >>> spec.validate({"k": 5.0}, owner="demo")
    {'k': 5}
    >>> spec.validate({}, owner="demo")
    {'k': 10}
    """

    def __init__(self, *params: Param):
        names = [p.name for p in params]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TypeError(f"duplicate parameter name(s) {dup} in one ParamSpec")
        self._params: dict[str, Param] = {p.name: p for p in params}

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params.values())

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"ParamSpec({', '.join(self._params)})"

    @property
    def names(self) -> list[str]:
        return list(self._params)

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self}

    def validate(self, raw: Mapping[str, Any], *, owner: str) -> dict[str, Any]:
        """Check ``raw`` and return every parameter resolved (defaults filled in).

        Raises
        ------
        InvalidParameterError
            For a parameter ``owner`` does not have, or a value out of range (the message
            names the parameter, the allowed values and the value received).
        """
        if not isinstance(raw, Mapping):
            raise InvalidParameterError(
                f"the parameters of {owner} must be a mapping of name to value; got "
                f"{type(raw).__name__}.")
        unknown = sorted(set(raw) - set(self._params))
        if unknown:
            raise InvalidParameterError(
                f"unknown parameter(s) for {owner}: {unknown}; allowed: {self.names}.")
        return {p.name: p.validate(raw[p.name] if p.name in raw else p.default) for p in self}

    def extend(self, *params: Param) -> "ParamSpec":
        """This spec with more parameters (a job kind adding its own to an algorithm's)."""
        return ParamSpec(*self, *params)

    def only(self, *names: str) -> "ParamSpec":
        """This spec restricted to ``names`` (a kind sharing part of another's)."""
        return ParamSpec(*(self[n] for n in names))

    def with_changes(self, name: str, **changes: Any) -> "ParamSpec":
        """This spec with one parameter's declaration changed (e.g. its default)."""
        return ParamSpec(*(replace(p, **changes) if p.name == name else p for p in self))

    def json_schema(self, title: str = "") -> dict[str, Any]:
        """A JSON Schema object of the parameters (every one optional: defaults apply)."""
        return {"type": "object", "title": title, "additionalProperties": False,
                "properties": {p.name: p.json_schema() for p in self}}


def _fmt(v: float) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        v = int(v)
    return f"{v:,}" if isinstance(v, int) and abs(v) >= 10_000 else f"{v:g}"


def _is_store_id(value: str) -> bool:
    from backend.store import valid_id

    return valid_id(value)
