"""Typed readers for environment variables, used only by ``project/settings.py``.

Each reader turns one variable into a Python value or stops start-up with ``InvalidSetting``
naming the variable and what it accepts, so a typo in a deployment fails loudly instead of
silently falling back to a default. The entry points (``manage.py``, ``project/asgi.py``) turn it
into a one-line message on stderr and a failed exit, not a traceback.
"""

from __future__ import annotations

import os
from ipaddress import ip_network

from django.core.exceptions import ImproperlyConfigured

from project.networks import Network

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _raw(name: str) -> str | None:
    """An unset variable and one set to blank both mean "use the default"."""
    value = os.environ.get(name, "").strip()
    return value or None


class InvalidSetting(ImproperlyConfigured):
    """A setting from the environment is missing or has a value it does not accept."""


def _invalid(name: str, value: str, accepted: str) -> InvalidSetting:
    return InvalidSetting(f"{name}={value!r} is invalid: {name} accepts {accepted}.")


def env_bool(name: str, *, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _invalid(name, value, "true/false, yes/no, on/off or 1/0")


def env_str(name: str, *, default: str | None = None) -> str | None:
    return _raw(name) or default


def env_list(name: str, *, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_positive_int(
    name: str, *, default: int, unit: str, maximum: int | None = None, maximum_text: str = ""
) -> int:
    """A whole number above 0 and, where ``maximum`` is given, not above it (``maximum_text``
    says it in words for the message)."""
    value = _raw(name)
    if value is None:
        return default
    accepted = f"a whole number of {unit} greater than 0"
    if maximum is not None:
        accepted += f" and at most {maximum}{maximum_text}"
    try:
        number = int(value)
    except ValueError:
        raise _invalid(name, value, accepted) from None
    if number <= 0 or (maximum is not None and number > maximum):
        raise _invalid(name, value, accepted)
    return number


def env_seconds(name: str, *, default: float) -> float:
    value = env_optional_seconds(name)
    return default if value is None else value


def env_optional_seconds(name: str) -> float | None:
    """Unset means "no limit", mirroring a timeout that is off unless asked for."""
    value = _raw(name)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise _invalid(name, value, "a number of seconds greater than 0, or unset") from None
    if not 0 < seconds < float("inf"):
        raise _invalid(name, value, "a number of seconds greater than 0, or unset")
    return seconds


def env_choice(name: str, *, choices: tuple[str, ...], default: str) -> str:
    """Matches case-insensitively and returns the choice as spelled in ``choices``."""
    value = _raw(name)
    if value is None:
        return default
    if value.upper() not in choices:
        raise _invalid(name, value, "one of " + ", ".join(choices))
    return value.upper()


def env_networks(name: str, *, default: list[str] | None = None) -> list[Network]:
    """A comma-separated list of addresses or CIDR networks; unset means ``default``, or none."""
    networks = []
    for item in env_list(name, default=default or []):
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise _invalid(
                name,
                _raw(name) or "",
                "comma-separated IP addresses or networks, such as 127.0.0.1,10.0.0.0/8 "
                f"({item!r} is neither)",
            ) from None
    return networks
