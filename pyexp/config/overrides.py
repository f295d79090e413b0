"""Parsing Hydra override strings (``key=value``, ``+k=v``, ``~k``, sweeps) with Hydra's own grammar."""

from __future__ import annotations

from typing import Any

from ..errors import OverrideError


def parser(config_loader: Any = None) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create(config_loader=config_loader)


def parse_overrides(overrides: list[str], config_loader: Any = None) -> list[Any]:
    from hydra.errors import HydraException

    parser_ = parser(config_loader)
    parsed = []
    for text in overrides:
        try:
            parsed += parser_.parse_overrides([text])
        except HydraException as exc:
            detail = " ".join(ln.strip() for ln in str(exc).strip().splitlines()[:3])
            raise OverrideError(
                f"cannot parse override {text!r} ({detail}); overrides look like key=value, "
                "+key=value, ++key=value or ~key (quote values with spaces or ,)"
            ) from None
        if not parsed[-1].key_or_group:  # Hydra's grammar lets "=3" through with an empty key
            raise OverrideError(f"override {text!r} has no key; overrides look like key=value")
    return parsed
