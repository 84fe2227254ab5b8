"""Settings of the chat room the tests and the benchmark serve (``tests/chat_asgi.py``): the
project's, with the channel layer ``ECHO_CHAT_CHANNEL_LAYER`` names, ``memory`` (the default,
Channels' ``InMemoryChannelLayer``) or the ``redis://`` URL of a Redis server (channels-redis).
"""

from __future__ import annotations

from typing import Any

from project.env import InvalidSetting, env_str
from project.settings import *  # noqa: F403


def channel_layers(layer: str) -> dict[str, dict[str, Any]]:
    """``CHANNEL_LAYERS`` for ``layer``: ``memory``, or a Redis server's URL."""
    if layer == "memory":
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    if layer.startswith("redis://"):
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # redis-py 8 reads with a 5-s timeout by default, which ends channels-redis's
                # blocking wait for a consumer's next group message, and the consumer with it,
                # after 5 s without one (django/channels_redis#422): no timeout, as before.
                "CONFIG": {"hosts": [{"address": layer, "socket_timeout": None}]},
            }
        }
    raise InvalidSetting(
        f"ECHO_CHAT_CHANNEL_LAYER={layer!r} is invalid: it accepts memory or a redis:// URL."
    )


CHANNEL_LAYERS = channel_layers(env_str("ECHO_CHAT_CHANNEL_LAYER") or "memory")
