import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bothero.netguard import (
    FetchError,
    UnsafeURLError,
    check_url,
    fetch_url,
    is_public_address,
)

# check_url ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.1/",  # short form of 127.0.0.1
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",  # and in hexadecimal
        "http://localhost/",
        "http://LOCALHOST./admin",
        "http://api.localhost/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://169.254.1.1/",
        "http://224.0.0.1/",  # multicast
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",  # link-local
        "http://[fd12:3456::1]/",  # unique local
        "http://[ff02::1]/",  # multicast
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped metadata
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    ],
)
def test_it_refuses_urls_that_reach_non_public_addresses(url):
    with pytest.raises(UnsafeURLError) as caught:
        check_url(url, allow_private=False)

    assert caught.value.code == "url_host_not_allowed"


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://1.1.1.1/dns-query", ["1.1.1.1"]),
        ("http://8.8.8.8:8080/", ["8.8.8.8"]),
        ("https://[2606:4700:4700::1111]/", ["2606:4700:4700::1111"]),
        ("https://[::ffff:8.8.8.8]/", ["::ffff:8.8.8.8"]),
    ],
)
def test_it_accepts_public_addresses_and_returns_them(url, addresses):
    assert check_url(url, allow_private=False) == addresses


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/", "http://localhost/", "http://10.0.0.7/"])
def test_allow_private_permits_internal_hosts(url):
    assert check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://169.254.1.1/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/",
    ],
)
@pytest.mark.parametrize("allow_private", [True, False])
def test_link_local_and_cloud_metadata_addresses_are_refused_even_when_private_ones_are_allowed(url, allow_private):
    with pytest.raises(UnsafeURLError) as caught:
        check_url(url, allow_private=allow_private, must_resolve=False)
    assert caught.value.code == "url_host_not_allowed"


def test_a_host_that_does_not_resolve_may_be_saved_but_not_fetched():
    assert check_url("https://no-such-host.invalid/hook", allow_private=False, must_resolve=False) == []
    with pytest.raises(UnsafeURLError) as caught:
        check_url("https://no-such-host.invalid/hook", allow_private=False)
    assert caught.value.code == "invalid_url"


@pytest.mark.parametrize(
    "url", ["ftp://1.1.1.1/", "file:///etc/passwd", "gopher://1.1.1.1/", "javascript:alert(1)", "1.1.1.1/path"]
)
def test_it_refuses_schemes_other_than_http_and_https(url):
    with pytest.raises(UnsafeURLError) as caught:
        check_url(url, allow_private=True)

    assert caught.value.code == "url_scheme_not_allowed"


def test_it_can_restrict_the_schemes_further():
    with pytest.raises(UnsafeURLError) as caught:
        check_url("http://1.1.1.1/", allow_private=False, allowed_schemes=("https",))

    assert caught.value.code == "url_scheme_not_allowed"


@pytest.mark.parametrize(
    "url", ["http://", "http://[::1", "http://example.com:99999/", "http://does-not-exist.invalid/", "http://a\x00b/"]
)
def test_it_reports_malformed_or_unresolvable_urls_as_invalid(url):
    with pytest.raises(UnsafeURLError) as caught:
        check_url(url, allow_private=False)

    assert caught.value.code == "invalid_url"


@pytest.mark.parametrize(
    ("address", "public"),
    [("93.184.216.34", True), ("100.63.255.255", True), ("100.64.0.0", False), ("fe80::1%eth0", False)],
)
def test_is_public_address_knows_the_range_edges(address, public):
    assert is_public_address(address) is public


# fetch_url against a real loopback server ---------------------------------


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        port = self.server.server_address[1]
        routes = {
            "/doc": lambda: self.reply(200, b"<html><body>Hello</body></html>", "text/html; charset=utf-8"),
            "/host": lambda: self.reply(200, self.headers["Host"].encode(), "text/plain"),
            "/redirect": lambda: self.redirect("/doc"),
            "/redirect-to-metadata": lambda: self.redirect("http://169.254.169.254/latest/meta-data/"),
            "/redirect-to-file": lambda: self.redirect("file:///etc/passwd"),
            "/redirect-to-localhost": lambda: self.redirect(f"http://localhost:{port}/doc"),
            "/loop": lambda: self.redirect("/loop"),
            "/missing": lambda: self.reply(404, b"not found", "text/plain"),
            "/big-declared": lambda: self.reply(200, b"x" * 100_000, "text/plain"),
            "/big-streamed": self.stream_without_length,
            "/slow": self.slow,
        }
        routes[self.path]()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.reply(200, b"got " + body, "text/plain")

    def reply(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def stream_without_length(self):
        # HTTP/1.0 without Content-Length: the body ends when the connection closes.
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"y" * 10_000)
        except OSError:
            pass  # the client hung up once it had read enough

    def slow(self):
        time.sleep(1.5)
        try:
            self.reply(200, b"late", "text/plain")
        except OSError:
            pass

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.paths = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def base_url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def only_this_server_may_be_private(server):
    """A checker for tests: the loopback test server is allowed, every other hop gets the production rules."""
    prefix = base_url(server) + "/"
    return lambda url: check_url(url, allow_private=url.startswith(prefix))


def fetch(url, **kwargs):
    options = {"allow_private": True, "max_bytes": 1_000_000, "timeout": 5}
    return fetch_url(url, **{**options, **kwargs})


def test_it_fetches_a_page(server):
    fetched = fetch(base_url(server) + "/doc")

    assert fetched.status_code == 200
    assert fetched.content == b"<html><body>Hello</body></html>"
    assert fetched.content_type == "text/html; charset=utf-8"
    assert fetched.url == base_url(server) + "/doc"


def test_it_refuses_a_private_address_before_connecting(server):
    with pytest.raises(UnsafeURLError) as caught:
        fetch(base_url(server) + "/doc", allow_private=False)

    assert caught.value.code == "url_host_not_allowed"
    assert server.paths == []


def test_it_follows_redirects_and_reports_the_final_url(server):
    fetched = fetch(base_url(server) + "/redirect")

    assert fetched.content.startswith(b"<html>")
    assert fetched.url == base_url(server) + "/doc"
    assert server.paths == ["/redirect", "/doc"]


def test_it_rechecks_every_redirect_and_refuses_one_to_the_metadata_service(server):
    with pytest.raises(UnsafeURLError) as caught:
        fetch(base_url(server) + "/redirect-to-metadata", url_checker=only_this_server_may_be_private(server))

    assert caught.value.code == "url_host_not_allowed"
    assert "169.254.169.254" in caught.value.message


def test_it_refuses_a_redirect_to_localhost_by_name(server):
    with pytest.raises(UnsafeURLError) as caught:
        fetch(base_url(server) + "/redirect-to-localhost", url_checker=only_this_server_may_be_private(server))

    assert caught.value.code == "url_host_not_allowed"
    assert server.paths == ["/redirect-to-localhost"]


def test_it_refuses_a_redirect_to_another_scheme(server):
    with pytest.raises(UnsafeURLError) as caught:
        fetch(base_url(server) + "/redirect-to-file")

    assert caught.value.code == "url_scheme_not_allowed"


def test_it_stops_after_too_many_redirects(server):
    with pytest.raises(FetchError, match="redirects") as caught:
        fetch(base_url(server) + "/loop", max_redirects=3)

    assert caught.value.code == "fetch_failed"
    assert len(server.paths) == 4


def test_it_connects_to_the_checked_address_and_keeps_the_host_name(server):
    # The host name does not resolve at all: only the checker's answer is
    # used, so a DNS rebinding cannot swap the address after the check.
    port = server.server_address[1]

    fetched = fetch(f"http://pinned.test:{port}/host", url_checker=lambda url: ["127.0.0.1"])

    assert fetched.content == f"pinned.test:{port}".encode()


def test_it_refuses_a_body_larger_than_max_bytes_declared_up_front(server):
    with pytest.raises(FetchError) as caught:
        fetch(base_url(server) + "/big-declared", max_bytes=1000)

    assert caught.value.code == "document_too_large"


def test_it_stops_streaming_a_body_once_it_passes_max_bytes(server):
    with pytest.raises(FetchError) as caught:
        fetch(base_url(server) + "/big-streamed", max_bytes=50_000)

    assert caught.value.code == "document_too_large"


def test_it_accepts_a_body_of_exactly_max_bytes(server):
    assert len(fetch(base_url(server) + "/big-declared", max_bytes=100_000).content) == 100_000


def test_it_reports_http_errors_with_their_status(server):
    with pytest.raises(FetchError) as caught:
        fetch(base_url(server) + "/missing")

    assert (caught.value.code, caught.value.status_code) == ("fetch_failed", 404)


def test_it_gives_up_at_the_time_limit(server):
    started = time.monotonic()

    with pytest.raises(FetchError) as caught:
        fetch(base_url(server) + "/slow", timeout=0.3)

    assert caught.value.code == "fetch_failed"
    assert time.monotonic() - started < 1


def test_it_can_post_a_body_for_webhooks(server):
    fetched = fetch(base_url(server) + "/hook", method="POST", content=b"payload", max_redirects=0)

    assert fetched.content == b"got payload"


def test_only_an_http_url_is_told_about_allow_private_urls(settings):
    settings.DEBUG = True
    with pytest.raises(UnsafeURLError) as http:
        check_url("http://example.com/", allow_private=False, allowed_schemes=("https",))
    with pytest.raises(UnsafeURLError) as ftp:
        check_url("ftp://example.com/", allow_private=False, allowed_schemes=("https",))
    assert "ALLOW_PRIVATE_URLS=true" in http.value.message
    assert "ALLOW_PRIVATE_URLS" not in ftp.value.message  # the switch would not help
