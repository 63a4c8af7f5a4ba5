"""``/docs``: the Swagger UI page, served with its own assets (no CDN).

FastAPI's default page loads Swagger UI from a CDN, so ``/docs`` is blank wherever the browser
cannot reach it (offline, an intranet, a strict proxy). The assets are vendored from the npm
package ``swagger-ui-dist`` (version in :data:`SWAGGER_UI_VERSION`, Apache-2.0 licence beside
them in ``static/swagger-ui/``) and served under ``/docs/static``. ReDoc is not served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

SWAGGER_UI_VERSION = "5.36.0"
ASSETS = Path(__file__).parent / "static" / "swagger-ui"
ASSETS_URL = "/docs/static"


def install_docs(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve ``/docs`` and its assets on ``app`` (create the app with ``docs_url=None`` and
    ``redoc_url=None`` so FastAPI's CDN pages are not served)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            # the validator badge would load an image from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )
