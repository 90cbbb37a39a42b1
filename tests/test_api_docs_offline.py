"""`/docs` (Swagger UI) and `/redoc` (ReDoc) work offline: every script, style and icon they
load is served by the app itself from the `fastapi-offline` package, never from a CDN. The
pages and each of their assets are fetched with the network cut off (pytest-socket: no
socket but the event loop's own Unix sockets); the browser test renders both pages in
Chromium with every non-loopback request blocked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_socket import disable_socket, enable_socket
from test_api_support import api_client, make_home


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = make_home(tmp_path_factory.mktemp("docs-offline"), None)
    with api_client(home, None, checkpoint_interval=3600) as test_client:
        yield test_client


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url)=["\']([^"\']+)["\']', html) + re.findall(
        r"url: *['\"]([^'\"]+)['\"]", html)


@pytest.mark.parametrize("path, script", [("/docs", "swagger-ui-bundle.js"),
                                          ("/redoc", "redoc.standalone.js")])
def test_docs_pages_and_their_assets_are_served_offline(client: Any, path: str,
                                                        script: str) -> None:
    disable_socket(allow_unix_socket=True)
    try:
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # the browser may fetch nothing but this server's own assets
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assets = _assets(page.text)
        assert any(a.endswith(script) for a in assets), assets
        assert "/openapi.json" in assets
        for asset in assets:
            assert asset.startswith("/"), f"{path} loads {asset} from elsewhere"
            answer = client.get(asset)
            assert answer.status_code == 200, asset
            assert len(answer.content) > 100, asset
        assert not re.search(r"https?://(?!127\.0\.0\.1)[^\s\"'<>]*\.(?:js|css)", page.text)
    finally:
        enable_socket()


def test_the_assets_come_from_the_declared_package() -> None:
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"} <= {
        p.name for p in static.iterdir()}
