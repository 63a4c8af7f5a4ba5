from __future__ import annotations

import re

from fastapi.testclient import TestClient

from loopwise.api.docs import ASSETS, SWAGGER_UI_VERSION

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


def test_docs_page_loads_only_from_this_server(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.text
    assert "https://" not in html and "http://" not in html and "//cdn" not in html
    urls = [a or b for a, b in URL.findall(html)]
    assert "/docs/static/swagger-ui-bundle.js" in urls
    assert "/docs/static/swagger-ui.css" in urls
    for url in urls:
        assert url.startswith("/"), url
        assert client.get(url).status_code == 200, url
    assert '"validatorUrl": null' in html  # no badge image from validator.swagger.io


def test_assets_are_served_with_their_types(client: TestClient) -> None:
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "SwaggerUIBundle" in script.text
    css = client.get("/docs/static/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")


def test_vendored_assets_carry_their_licence_and_version() -> None:
    assert "Apache License" in (ASSETS / "LICENSE").read_text()
    assert SWAGGER_UI_VERSION.count(".") == 2
    assert f"swagger-ui-dist@{SWAGGER_UI_VERSION}" in (ASSETS / "VERSION").read_text()


def test_redoc_from_a_cdn_is_not_served(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404
