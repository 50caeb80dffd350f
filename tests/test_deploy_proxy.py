"""deploy/nginx.conf in front of gunicorn (config/gunicorn.conf.py), both real, on loopback.

nginx (Debian's package) runs as the current user with the shipped site configuration,
rendered into a temporary folder: only addresses and paths are changed (``render_site``).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_api import build_directory

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HOST = "directory.example.org"  # the server_name in deploy/nginx.conf

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """The shipped gunicorn (config/gunicorn.conf.py) serving wsgi:app with ``env``, its output
    in ``log_path``, in a process group of its own (stop it with ``os.killpg``)."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listening on {port}:\n{log.read_text()[-3000:]}")


def render_site(tmp: Path, *, listen: int, upstream: int) -> Path:
    """The shipped configuration with loopback addresses and this checkout's paths, inside a
    main nginx.conf that a non-root user can run."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
        "listen 80 default_server;": f"listen 127.0.0.1:{listen} default_server;",
        "listen 80;": f"listen 127.0.0.1:{listen};",
        "listen [::]:80 default_server;": "",
        "listen [::]:80;": "",
        "/srv/hpcsa-directory/directory/web/static/": f"{ROOT}/directory/web/static/",
        "/etc/nginx/hpcsa-directory-proxy.conf": str(ROOT / "deploy" / "nginx-proxy.conf"),
        "/var/log/nginx/hpcsa-directory.access.log": str(tmp / "site-access.log"),
    }
    for old, new in replacements.items():
        assert old in site, f"deploy/nginx.conf no longer has {old!r}: update this test"
        site = site.replace(old, new)
    (tmp / "site.conf").write_text(site)
    main = tmp / "nginx.conf"
    temp = {name: tmp / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    # Started by root, nginx's workers would drop to "nobody", who may not read a checkout
    # in a private folder (mktemp's 0700): they keep this test's own user instead.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    main.write_text(
        f"""
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_processes 1;
daemon off;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp}/access.log;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {tmp}/site.conf;
}}
"""
    )
    return main


@pytest.fixture
def stack(app, tmp_path):
    """gunicorn (2 sync workers, the shipped settings) behind nginx; yields nginx's port."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip(f"nginx is not installed ({NGINX}): apt-get install nginx")
    build_directory(app)
    app_port, proxy_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIRECTORY_")},
        "DIRECTORY_SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "DIRECTORY_SEARCH_INDEX_DIR": app.config["SEARCH_INDEX_DIR"],
        "DIRECTORY_MAIL_FILE_DIR": app.config["MAIL_FILE_DIR"],
        "DIRECTORY_SECRET_KEY": "test-secret",
        "DIRECTORY_INCLUDES": "[]",
        "DIRECTORY_PROXY_HOPS": "1",
        "DIRECTORY_TRUSTED_HOSTS": f'["{HOST}"]',
        "GUNICORN_BIND": f"127.0.0.1:{app_port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": str(tmp_path / "gunicorn-access.log"),
    }
    processes = []
    try:
        app_log = tmp_path / "gunicorn.log"
        gunicorn = start_gunicorn(env, app_log)
        processes.append(gunicorn)
        wait_for_port(app_port, gunicorn, app_log)
        main = render_site(tmp_path, listen=proxy_port, upstream=app_port)
        nginx_log = tmp_path / "nginx.log"
        with nginx_log.open("w") as log:
            nginx = subprocess.Popen(
                [NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(main)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        processes.append(nginx)
        wait_for_port(proxy_port, nginx, nginx_log)
        yield proxy_port
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def get(port: int, path: str, *, host: str = HOST, headers=None, timeout: float = 5.0):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_idle_and_slow_clients_do_not_hold_up_the_site(stack):
    port = stack
    assert get(port, "/healthz")[0] == 200
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    stop = threading.Event()

    def trickle() -> None:  # one header line per client every half second, never finishing
        for sock in slow:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        while not stop.wait(0.5):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(1.0)  # every one of them is connected and waiting
        for path in ("/healthz", "/", "/search?q=botox", "/api/v1/services", "/healthz") * 2:
            started = time.monotonic()
            status, _, _ = get(port, path, timeout=3)
            elapsed = time.monotonic() - started
            assert status == 200, path
            assert elapsed < 1.0, f"{path} took {elapsed:.2f}s with 70 clients holding on"
    finally:
        stop.set()
        trickler.join()
        for sock in idle + slow:
            sock.close()


def test_an_eight_megabyte_request_line_is_refused_at_once(stack):
    port = stack
    line = b"GET /search?q=" + b"a" * (8 * 1024 * 1024) + b" HTTP/1.1\r\nHost: " + HOST.encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    started = time.monotonic()

    def send() -> None:
        with contextlib.suppress(OSError):  # refused before it was all sent: the point
            sock.sendall(line + b"\r\n\r\n")

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    elapsed = time.monotonic() - started
    sock.close()
    sender.join(5)
    assert answer.startswith(b"HTTP/1.1 414"), answer[:200]
    assert elapsed < 2.0


def test_a_long_query_still_gets_the_apps_own_message(stack):
    """Bounded, but well above the app's 1,000 characters: the app says what it did."""
    words = "+".join(["physiotherapy"] * 300)  # 4,199 characters
    status, _, body = get(stack, f"/search?q={words}")
    assert status == 200
    assert "shortened to its first 1000 characters" in body.decode()


def test_a_spoofed_host_changes_no_url(stack):
    port = stack
    for host in ("evil.example", "127.0.0.1", f"{HOST}.evil.example"):
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            get(port, "/changes.atom", host=host)  # nginx closes without an answer (444)
    spoofs = {
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "666",
        "X-Forwarded-Prefix": "/evil",
        "X-Forwarded-For": "203.0.113.9",
    }
    for path in ("/changes.atom", "/api/v1/services/acne"):
        status, _, body = get(port, path, headers=spoofs)
        text = body.decode()
        assert status == 200
        # The port is nginx's own (443 or 80 when deployed; a free one here).
        assert f"http://{HOST}:{port}/" in text, text[:500]
        assert "evil" not in text and "https://" not in text and ":666" not in text


def test_no_log_holds_a_signed_links_query_string(stack, tmp_path):
    status, headers, _ = get(stack, "/check?number=MP0000101&token=signed-secret-4242&sig=feed")
    assert status == 303
    request_id = headers["X-Request-Id"]
    assert len(request_id) == 32  # nginx's $request_id, passed on and sent back by the app
    time.sleep(0.5)  # both servers write their access logs after answering
    nginx_log = (tmp_path / "site-access.log").read_text()
    gunicorn_log = (tmp_path / "gunicorn-access.log").read_text()
    assert "/check" in nginx_log and request_id in nginx_log
    assert "/check" in gunicorn_log
    for log in (nginx_log, gunicorn_log):
        assert "signed-secret-4242" not in log and "sig=feed" not in log


def test_static_files_come_from_nginx_and_pages_are_compressed(stack, tmp_path):
    status, headers, body = get(stack, "/assets/site.css")
    assert status == 200 and headers["Content-Type"] == "text/css"
    assert headers.get("Cache-Control") == "public" and "Expires" in headers
    assert body == (ROOT / "directory/web/static/site.css").read_bytes()
    status, headers, body = get(stack, "/search?q=botox", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    page = gzip.decompress(body)
    assert b"</html>" in page
    # The pages name the stylesheet by its content; nginx serves that name from disk too.
    fingerprinted = re.search(rb'href="(/assets/site\.[0-9a-f]{12}\.css)"', page).group(1)
    status, headers, body = get(stack, fingerprinted.decode())
    assert status == 200 and headers["Content-Type"] == "text/css"
    assert headers.get("Cache-Control") == "public, max-age=31536000, immutable"
    assert body == (ROOT / "directory/web/static/site.css").read_bytes()
    status, headers, _ = get(stack, "/assets/favicon.ico")
    assert status == 200
    time.sleep(0.5)  # gunicorn writes its access log after answering
    assert "/assets/" not in (tmp_path / "gunicorn-access.log").read_text()  # all from disk
