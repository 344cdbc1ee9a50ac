"""The built-in web page over the alert history (issue #14): static files shipped in the package,
served by the app under a strict Content-Security-Policy. The page holds no data; everything it
shows comes from the history API, fetched by ``static/app.js`` with the user's credentials.

Paths: ``/``, ``/overview`` and ``/alerts/<fingerprint>`` answer the page (the script routes on
the path); ``/ui/<file>`` answers the page's scripts, style sheet and icon.
"""

from __future__ import annotations

from functools import partial
from importlib import resources

from webhookfast.http import Context, Response, Route

STATIC_PREFIX = "/ui/"
PAGE_PATHS = frozenset({"/", "/overview"})
ALERT_PAGE_PREFIX = "/alerts/"

# The page's own files only: no inline script or style, no other host, no plugins, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


class WebUI:
    """Matches the page's paths. ``protected``: whether the page itself needs credentials (see
    README, "Web page": with basic auth it does, so the browser asks; with bearer tokens only it
    does not, because a browser cannot send a token on navigation, and the page asks for one)."""

    def __init__(self, protected: bool) -> None:
        self.protected = protected
        self.files = _load_static()
        self._page = Route("ui_page", "/", {"GET": partial(self._serve, name="index.html")}, protected)
        self._assets = {
            STATIC_PREFIX + name: Route(
                "ui_static", STATIC_PREFIX + name, {"GET": partial(self._serve, name=name)}, protected
            )
            for name in self.files
            if name != "index.html"
        }

    def match(self, path: str) -> Route | None:
        if path in PAGE_PATHS:
            return self._page
        if path.startswith(ALERT_PAGE_PREFIX):
            fp = path[len(ALERT_PAGE_PREFIX) :]
            return self._page if fp and "/" not in fp and len(fp) <= 64 else None
        return self._assets.get(path)

    async def _serve(self, ctx: Context, name: str) -> Response:
        body, content_type = self.files[name]
        return Response(200, body, content_type, headers=[("content-security-policy", CSP)])
