"""Name -> constructor table, so configs and weight files refer to models by name."""

from __future__ import annotations

from typing import Any, Callable

from facespot.errors import FacespotError

_BUILDERS: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make ``build(name, **options)`` call the decorated constructor."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = fn
        return fn

    return wrap


def build(name: str, **options: Any):
    """Build a registered model; unknown names and options give a clear error."""
    if name not in _BUILDERS:
        known = ", ".join(sorted(_BUILDERS))
        raise FacespotError(f"unknown model {name!r}; known models: {known}")
    try:
        model = _BUILDERS[name](**options)
    except TypeError as exc:  # an option the constructor does not take
        raise FacespotError(f"model {name!r}: {exc}") from None
    model.config = {"name": name, **model.config}
    return model


def available() -> list[str]:
    return sorted(_BUILDERS)
