"""The HTTP side of the project through Django's test client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from pytest_django import Settings


def test_index_page_connects_to_echo(client: Client) -> None:
    """GET / renders the page with the subprotocol, the size limit and its local script."""
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'data-subprotocol="echo"' in page
    assert 'data-max-message-size="1048576"' in page
    assert re.search(r'src="/static/echo/app\.[0-9a-f]{12}\.js"', page), "not content-hashed"
    assert "https://" not in page, "the page must not load anything from a CDN"


def test_index_page_refuses_post(client: Client) -> None:
    """The index page only answers safe methods."""
    assert client.post("/").status_code == 405


def test_unknown_path_is_404(client: Client) -> None:
    """An unknown path gets 404."""
    assert client.get("/no-such-page").status_code == 404


@pytest.fixture
def behind_https(settings: Settings) -> None:
    """Production as deploy/channels-echo.env configures it: a public host name, HTTPS only."""
    settings.ALLOWED_HOSTS = ["echo.example.com"]
    settings.SECURE_SSL_REDIRECT = True


@pytest.mark.usefixtures("behind_https")
@pytest.mark.parametrize("host", ["10.0.0.7:8001", "127.0.0.1:8001", "localhost", "[::1]:8001"])
def test_probe_reaches_healthz_by_any_address(client: Client, host: str) -> None:
    """A load balancer's probe over plain HTTP to the backend's own address gets 200 and the
    JSON, whatever Host it sends."""
    response = client.get("/healthz", HTTP_HOST=host)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.usefixtures("behind_https")
def test_other_paths_keep_host_validation_and_https(client: Client) -> None:
    """Every other path still refuses a Host outside ALLOWED_HOSTS and redirects to https."""
    assert client.get("/", HTTP_HOST="10.0.0.7:8001").status_code == 400
    response = client.get("/", HTTP_HOST="echo.example.com")
    assert response.status_code == 301
    assert response["Location"] == "https://echo.example.com/"
    assert client.get("/", HTTP_HOST="echo.example.com", secure=True).status_code == 200


def test_healthz_refuses_post(client: Client) -> None:
    """The probe answers safe methods only, ahead of the rest of the middleware as well."""
    assert client.post("/healthz").status_code == 405


@pytest.mark.parametrize("manifest", [None, "not json"], ids=["missing", "unreadable"])
def test_healthz_fails_without_a_static_files_manifest(
    client: Client, settings: Settings, tmp_path: Path, manifest: str | None
) -> None:
    """With static files not collected (DEBUG off), the page cannot be served: /healthz answers
    503 and names the problem, so that no load balancer sends clients there."""
    settings.STATIC_ROOT = str(tmp_path)
    if manifest is not None:
        (tmp_path / "staticfiles.json").write_text(manifest)
    response = client.get("/healthz")
    assert response.status_code == 503
    answer = response.json()
    assert answer["status"] == "unavailable"
    assert "collectstatic" in answer["problem"]
    assert response["Cache-Control"].startswith("max-age=0")
