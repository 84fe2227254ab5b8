"""Client-supplied text in a log line: whatever it holds, the line stays one line of its own pairs.

The rule (``project.logfields.escaped``): a value is percent-encoded except for ASCII letters,
digits and ``-._~!$&()*+,/:;?@[]``, so it is printable ASCII with no space, ``=`` or quote, and
percent-decoding gives the client's text back.
"""

from __future__ import annotations

from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from project.logfields import escaped, peer_name

# Any text, lone surrogates included: they are what undecodable bytes become in some decoders.
ANY_TEXT = st.text(st.characters(exclude_categories=()))


def keys_of(line: str) -> list[str]:
    """The keys of a ``key=value`` line, read as a log reader reads it: pairs split at spaces,
    each at its one ``=``."""
    pairs = [pair.split("=") for pair in line.split(" ")]
    assert all(len(pair) == 2 for pair in pairs), line
    return [key for key, _ in pairs]


def assert_one_value(value: str) -> None:
    line = f"event=refused client=192.0.2.1:5000 value={value} reason=unknown_path"
    assert line.splitlines() == [line]
    assert keys_of(line) == ["event", "client", "value", "reason"]
    assert value.isascii()
    assert value.isprintable()
    assert not set(value) & set("\"'\\`")


@given(ANY_TEXT)
def test_any_text_is_one_value(text: str) -> None:
    """Any text escapes to one printable ASCII value: no line break, no pair, no quote."""
    assert_one_value(escaped(text))


@given(ANY_TEXT)
def test_escaped_text_reads_back(text: str) -> None:
    """Percent-decoding an escaped value gives the client's text back, character for character."""
    assert unquote(escaped(text), errors="surrogatepass") == text


@given(ANY_TEXT, st.integers(min_value=0, max_value=65535))
def test_any_client_name_is_one_value(host: str, port: int) -> None:
    """Whatever address a proxy names, the client's name in a line is one value."""
    assert_one_value(peer_name((host, port)))


def test_ordinary_values_read_as_they_are() -> None:
    """Paths, origins, subprotocol lists and addresses need no escape, and get none."""
    for value in ("/echo", "http://localhost:8000", "chat,echo", "-"):
        assert escaped(value) == value
    assert peer_name(("198.51.100.4", 5000)) == "198.51.100.4:5000"
    assert peer_name(("2001:db8::1", 5000)) == "[2001:db8::1]:5000"
    assert peer_name(None) == "unknown"
