"""The console's guard, through Starlette's TestClient: the token and its cookie, the
Host header, CSRF, the headers every response carries, hostile keys and values shown as
text, no secret on any page, and the permissions deciding which actions exist."""

from __future__ import annotations

import re

import pytest

from objectstore_s3.ui.security import CSP
from tests.ui.conftest import PORT, SECRET, Console, signed_in


def test_every_request_needs_the_token_or_its_cookie(console: Console) -> None:
    client, guard, store = console()
    store.save("a/b.txt", "hi")
    for path in ("/browse", "/object?key=a/b.txt", "/download?key=a/b.txt", "/static/console.js"):
        assert client.get(path).status_code == 403, path
    assert client.get("/browse", params={"token": "wrong"}).status_code == 403
    response = client.get("/browse", params={"token": guard.token, "prefix": "a/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/browse?prefix=a%2F"  # the token leaves the URL
    cookie = response.headers["set-cookie"]
    assert f"objectstore_console_{PORT}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert guard.token not in cookie
    assert client.get("/browse", params={"prefix": "a/"}).status_code == 200
    client.cookies.clear()
    client.cookies.set(f"objectstore_console_{PORT}", "forged")
    assert client.get("/browse").status_code == 403


def test_another_host_name_is_refused(console: Console) -> None:
    client, guard, _ = console()
    signed_in(client, guard)
    for host in ("evil.example:8123", "127.0.0.1:9999", "attacker.test"):
        assert client.get("/browse", headers={"host": host}).status_code == 400
    assert client.get("/browse", headers={"host": f"localhost:{PORT}"}).status_code == 200


def test_a_post_needs_the_csrf_token_and_the_consoles_origin(console: Console) -> None:
    client, guard, store = console()
    signed_in(client, guard)
    store.save("victim", "keep me")
    assert client.post("/delete", data={"key": "victim"}).status_code == 403
    assert client.post("/delete", data={"key": "victim", "csrf": "guess"}).status_code == 403
    other_site = {"origin": "http://evil.example", "sec-fetch-site": "cross-site"}
    refused = client.post("/delete", data={"key": "victim", "csrf": guard.csrf}, headers=other_site)
    assert refused.status_code == 403
    assert client.post("/upload?key=x", content=b"data").status_code == 403
    assert client.get("/delete", params={"key": "victim", "csrf": guard.csrf}).status_code == 405
    assert store.read("victim") == "keep me"
    assert "x" not in store
    done = client.post("/delete", data={"key": "victim", "csrf": guard.csrf})
    assert done.status_code == 303
    assert "victim" not in store


def test_every_response_carries_the_strict_headers(console: Console) -> None:
    client, guard, store = console()
    store.save("k.txt", "v")
    signed_in(client, guard)
    for path in (
        "/browse",
        "/object?key=k.txt",
        "/usage",
        "/node",
        "/static/console.css",
        "/object?key=missing",
        "/nowhere",
    ):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in CSP
    assert "unsafe" not in CSP
    assert "default-src 'none'" in CSP
    refused = client.get("/browse", headers={"host": "evil.example"})
    assert refused.headers["content-security-policy"] == CSP  # refusals too


HOSTILE_KEY = "123/<script>alert('key')</script>"


def test_hostile_keys_and_values_are_shown_as_text(console: Console) -> None:
    client, guard, store = console()
    signed_in(client, guard)
    hostile = "<script>alert('value')</script><img src=x onerror=alert(1)>"
    store.save("123/page.html", hostile)
    store.save("123/logo.svg", "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>")
    store.save("123/data.json", '{"<b>name</b>": "<script>x</script>"}')
    store.save("123/x$y=z#1", hostile)  # a key of odd (allowed) characters
    pages = [
        client.get("/browse", params={"prefix": "123/"}).text,
        client.get("/object", params={"key": "123/page.html"}).text,
        client.get("/object", params={"key": "123/logo.svg"}).text,
        client.get("/object", params={"key": "123/data.json"}).text,
        client.get("/object", params={"key": "123/x$y=z#1"}).text,
    ]
    for page in pages:
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "<svg " not in page
        assert "<b>name" not in page
    assert "&lt;script&gt;alert(&#39;value&#39;)" in pages[1]
    assert "never rendered" in pages[1]
    assert "never rendered" in pages[2]
    assert client.get("/image", params={"key": "123/logo.svg"}).status_code == 415
    assert client.get("/browse", params={"prefix": HOSTILE_KEY}).status_code == 400  # not a key
    download = client.get("/download", params={"key": "123/page.html"})
    assert download.headers["content-disposition"] == 'attachment; filename="page.html"'
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.content == hostile.encode()


def test_no_secret_reaches_a_page(console: Console) -> None:
    client, guard, store = console()
    signed_in(client, guard)
    store.save("1/a", "x")
    texts = [
        client.get(path).text
        for path in ("/browse", "/object?key=1/a", "/usage", "/node", "/object?key=nope")
    ]
    for text in texts:
        assert SECRET not in text
        assert "hunter2" not in text
        assert "AKIA-console" not in text
    assert "127.0.0.1:9" in texts[0]  # the endpoint, without its user information


def test_permissions_decide_which_actions_exist(console: Console) -> None:
    client, guard, store = console(read_only=True)
    signed_in(client, guard)
    store.save("1/a", "x")  # the store itself may write; the console may not
    page = client.get("/browse", params={"prefix": "1/"}).text
    assert 'id="dropzone"' not in page
    assert 'id="read-only"' in page
    assert 'id="delete"' not in client.get("/object", params={"key": "1/a"}).text
    assert client.post("/delete", data={"key": "1/a", "csrf": guard.csrf}).status_code == 403
    upload = client.post("/upload?key=1/b", content=b"x", headers={"x-csrf-token": guard.csrf})
    assert upload.status_code == 403
    assert "permission" in upload.json()["error"]
    assert client.get("/confirm-delete", params={"key": "1/a"}).status_code == 403
    assert store.keys == ["1/a"]


def test_a_store_without_read_permission_shows_nothing(console: Console) -> None:
    client, guard, _ = console(permissions={"read": False, "write": True, "delete": True})
    signed_in(client, guard)
    response = client.get("/browse")
    assert response.status_code == 403
    assert "does not have permission to read" in response.text


@pytest.mark.parametrize("key", ["../escape", "a//b", "a/", "bad?key"])
def test_an_invalid_key_is_a_clear_400(console: Console, key: str) -> None:
    client, guard, _ = console()
    signed_in(client, guard)
    response = client.get("/object", params={"key": key})
    assert response.status_code == 400
    assert re.search(r"key", response.text, re.I)
