"""The HTTP side of the project through Django's test client."""

from __future__ import annotations

from django.test import Client


def test_index_page_connects_to_echo(client: Client) -> None:
    """GET / renders the page with the subprotocol, the size limit and its local script."""
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'data-subprotocol="echo"' in page
    assert 'data-max-message-size="1048576"' in page
    assert 'src="/static/echo/app.js"' in page
    assert "https://" not in page, "the page must not load anything from a CDN"


def test_index_page_refuses_post(client: Client) -> None:
    """The index page only answers safe methods."""
    assert client.post("/").status_code == 405


def test_unknown_path_is_404(client: Client) -> None:
    """An unknown path gets 404."""
    assert client.get("/no-such-page").status_code == 404
