"""Real-browser helpers for the widget's tests and benchmark: headless Chromium and a customer's web page.

The page is served by a tiny HTTP server on loopback, on an origin other than the API's, so the widget
talks to the API across origins exactly as it does on a customer's site (CORS included).
"""

from __future__ import annotations

import shutil
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

SNIPPET_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme Widgets</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
/* A host page's CSS that would break a widget living in the page's own DOM. */
body {{ font: 20px Georgia, serif; background: #fffbea; margin: 2rem }}
button {{ background: #ff00ff !important; font-size: 40px !important; border: 6px dashed lime !important }}
div, section, textarea {{ display: block; border: 4px solid orange; padding: 30px !important }}
</style></head>
<body>
<h1>Acme Widgets</h1>
<p>Welcome to our shop. Questions? Ask our assistant.</p>
<script src="{api}/widget.js" data-bot-id="{bot_id}" data-key="{key}"{extra} async></script>
</body></html>
"""


def snippet_page(*, api: str, bot_id: str, key: str, user_id: str = "", user_hash: str = "") -> str:
    extra = f' data-user-id="{user_id}" data-user-hash="{user_hash}"' if user_id else ""
    return SNIPPET_PAGE.format(api=api, bot_id=bot_id, key=key, extra=extra)


class PageServer:
    """Serves `pages[path]` (HTML) on 127.0.0.1; reach it as http://localhost:PORT or http://127.0.0.1:PORT,
    two different origins of the same server."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"

    def origin(self, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def chromium(width: int = 1280, height: int = 900):
    """Headless Chromium driven by Selenium (Debian's chromium + chromium-driver), with its console logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):
        raise RuntimeError("needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def shadow(driver, selector: str):
    """The element matching `selector` inside the widget's (open) shadow root, or None."""
    return driver.execute_script(
        "var host = document.querySelector('bothero-chat');"
        "return host && host.shadowRoot ? host.shadowRoot.querySelector(arguments[0]) : null;",
        selector,
    )


def console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
