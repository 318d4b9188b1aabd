"""A form generated from a parameter declaration (:class:`backend.kinds.ParamSpec`).

Widgets, labels, defaults, bounds and help texts all come from the declaration, so a kind's
parameters are written once: the page only says which to show and what the data narrows
(e.g. ``n_neighbors`` at most the rows minus one).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from backend.kinds import AUTO, Param, ParamSpec

__all__ = ["param_form", "NONE"]

NONE = "(none)"
_SLIDER_MAX_STEPS = 500


def param_form(
    spec: ParamSpec,
    *,
    key: str,
    where: Any = st,
    only: list[str] | tuple[str, ...] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    columns: list[str] | None = None,
) -> dict[str, Any]:
    """Render one widget per parameter and return the values chosen.

    Parameters
    ----------
    spec : ParamSpec
        The declaration (``backend.kinds.params_of(kind)``).
    key : str
        Prefix of the widget keys (``f"{key}-{name}"``).
    where : streamlit container, default=st
        Where to draw (``st.sidebar``, a column, inside ``st.form``).
    only : sequence of str, optional
        The parameters to show, in this order (default: all, in declaration order).
    overrides : dict of name -> dict, optional
        Changes to a declaration for this form, e.g. ``{"n_neighbors": {"high": n - 1}}``.
    columns : list of str, optional
        The dataset's columns, for parameters that name a column.

    Returns
    -------
    dict
        Parameter name -> value, ready for a :class:`~backend.kinds.JobSpec`.
    """
    overrides = overrides or {}
    names = list(only) if only is not None else spec.names
    out: dict[str, Any] = {}
    for name in names:
        p = replace(spec[name], **overrides.get(name, {}))
        out[name] = _widget(p, f"{key}-{name}", where, columns or [])
    return out


def _help(p: Param) -> str | None:
    text = p.help + (f" Unit: {p.unit}." if p.unit else "")
    return text.strip() or None


def _widget(p: Param, wkey: str, where: Any, columns: list[str]) -> Any:
    label = p.label or p.name
    help_ = _help(p)
    if p.column:
        options = ([NONE] if p.nullable or p.auto else []) + list(columns)
        default = p.default if p.default in columns else options[0] if options else None
        value = where.selectbox(label, options, index=options.index(default) if default in options
                                else 0, key=wkey, help=help_)
        return None if value == NONE else value
    if p.type is bool:
        return where.checkbox(label, value=bool(p.default), key=wkey, help=help_)
    if p.choices is not None:
        options = list(p.choices)
        return where.selectbox(label, options, index=options.index(p.default)
                               if p.default in options else 0, key=wkey, help=help_)
    if p.type in (int, float):
        if p.auto:
            auto = where.checkbox(f"{label}: automatic", value=p.default == AUTO,
                                  key=f"{wkey}-auto", help=help_)
            number = _number(replace(p, default=None if p.default == AUTO else p.default),
                             f"{label} (when not automatic)", wkey, where, help_)
            return AUTO if auto else number
        return _number(p, label, wkey, where, help_)
    if p.type in (list, object):
        default = p.default
        text = ", ".join(str(v) for v in default) if isinstance(default, list) else str(default)
        raw = where.text_input(label, text, key=wkey, help=help_)
        if isinstance(default, list):
            return raw
        try:
            return float(raw)
        except ValueError:
            return raw.strip()
    return where.text_input(label, "" if p.default is None else str(p.default), key=wkey,
                            help=help_)


def _number(p: Param, label: str, wkey: str, where: Any, help_: str | None) -> Any:
    is_int = p.type is int
    cast = int if is_int else float
    step = p.step if p.step is not None else (1 if is_int else None)
    lo = None if p.low is None else cast(p.low + (step or 1e-6) if p.low_open else p.low)
    hi = None if p.high is None else cast(p.high - (step or 1e-6) if p.high_open else p.high)
    default = p.default
    if default is None:  # a nullable number: start at the lower bound
        default = lo if lo is not None else 0
    default = cast(default)
    if lo is not None:
        default = max(default, lo)
    if hi is not None:
        default = min(default, hi)
    small = (lo is not None and hi is not None and step is not None
             and (hi - lo) / step <= _SLIDER_MAX_STEPS)
    if small and hi > lo:
        return where.slider(label, lo, hi, default, step, key=wkey, help=help_)
    value = where.number_input(label, min_value=lo, max_value=hi, value=default, step=step,
                               key=wkey, help=help_)
    return cast(value)
