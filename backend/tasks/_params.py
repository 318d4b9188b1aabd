"""Parameter checks shared by the job kinds: one place, messages with name, range and value."""

from __future__ import annotations

from typing import Any

from backend.errors import InvalidParameterError


def take_int(params: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    v = params.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            raise InvalidParameterError(f"{name} must be an integer in [{lo}, {hi}]; got {v!r}.")
    if not lo <= v <= hi:
        raise InvalidParameterError(f"{name} must be in [{lo}, {hi}]; got {v}.")
    return v


def take_float(params: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    v = params.get(name, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidParameterError(f"{name} must be a number in [{lo}, {hi}]; got {v!r}.")
    if not lo <= v <= hi:
        raise InvalidParameterError(f"{name} must be in [{lo}, {hi}]; got {v}.")
    return float(v)


def take_choice(params: dict[str, Any], name: str, default: Any, choices: tuple) -> Any:
    v = params.get(name, default)
    if v not in choices:
        raise InvalidParameterError(f"{name} must be one of {list(choices)}; got {v!r}.")
    return v


def take_seed(params: dict[str, Any], name: str = "random_state", default: int | None = 42):
    v = params.get(name, default)
    if v is None:
        return None
    return take_int({name: v}, name, 0, 0, 2**32 - 1)


def reject_unknown(params: dict[str, Any], known: set[str], kind: str) -> None:
    extra = sorted(set(params) - known - {"device"})
    if extra:
        raise InvalidParameterError(
            f"unknown parameter(s) for {kind}: {extra}; allowed: {sorted(known)}."
        )


def check_rows(n_rows: int, n_neighbors: int) -> None:
    from backend.errors import InvalidInputError

    if n_rows < n_neighbors + 1:
        raise InvalidInputError(
            f"the dataset has {n_rows:,} rows, too few for n_neighbors={n_neighbors} "
            f"(needs at least {n_neighbors + 1}); lower n_neighbors."
        )
