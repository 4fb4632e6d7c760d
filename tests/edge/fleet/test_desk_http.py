"""The desks over HTTP: login per role, roles kept to their desk, CSRF, audit."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import psycopg
import pytest

from edge.fleet.web.auth import hash_password, verify_password
from tests.edge.fleet.deskfix import USERS, DeskEnv, desk_env


@pytest.fixture(scope="module")
def env(pg_cluster) -> Iterator[DeskEnv]:  # type: ignore[no-untyped-def]
    yield from desk_env(pg_cluster.new_database("desk_http"))


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.base + path, body, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def login(self, user: str, password: str) -> tuple[int, str]:
        _, page = self.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        return self.post("/login", {"csrf": csrf.group(1), "user": user, "password": password})


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m
    return m.group(1)


def test_passwords_are_scrypt_and_checked() -> None:
    h = hash_password("correct horse")
    assert h.startswith("scrypt$") and "correct" not in h
    assert verify_password("correct horse", h) and not verify_password("wrong horse", h)
    assert not verify_password("x", "bcrypt$nonsense")


def test_each_role_lands_on_its_desk_and_only_there(env: DeskEnv) -> None:
    day = "?day=2026-12-01"
    for user, (role, pw) in USERS.items():
        b = Browser(env.url)
        status, page = b.login(user, pw)
        assert status == 200 and f"{user} ({role})" in page
        own = {"fraud": "/fraud", "inspection": "/inspection", "admin": "/fleet"}[role]
        for path in ("/fraud", "/inspection", "/fleet", "/admin/audit", "/fraud/cases"):
            code, _ = b.get(path + day)
            allowed = path == own or (role == "admin" and path == "/admin/audit") or \
                (role == "fraud" and path == "/fraud/cases")
            assert (code == 200) == allowed, (user, path, code)
    # a fraud user cannot open a parcel alert by its id, an inspector no SIM alert
    parcel = env.day.planted["depot_chain"][0]
    sim = env.day.planted["moving_sim"][0]
    f = Browser(env.url)
    f.login("fiona", USERS["fiona"][1])
    assert f.get(f"/alert/{parcel}")[0] == 404
    code, page = f.get(f"/alert/{sim}")
    assert code == 200 and "simbox.sim" in page and "h1:" in page
    i = Browser(env.url)
    i.login("ivan", USERS["ivan"][1])
    assert i.get(f"/alert/{sim}")[0] == 404
    code, page = i.get(f"/alert/{parcel}")
    assert code == 200 and 'data-testid="crop"' in page and "acted" in page


def test_wrong_password_no_session_and_csrf_refused(env: DeskEnv) -> None:
    b = Browser(env.url)
    assert b.login("fiona", "not-her-password")[0] == 401
    assert b.get("/fraud")[1].count('id="login"') == 1     # sent back to the login form
    b.login("fiona", USERS["fiona"][1])
    sim = env.day.planted["goip_two_sites"][0]
    code, _ = b.post(f"/alert/{sim}/status", {"status": "acknowledged", "csrf": "forged"})
    assert code == 403
    _, page = b.get(f"/alert/{sim}")
    code, page = b.post(f"/alert/{sim}/status", {"status": "acknowledged",
                                                 "csrf": csrf_of(page), "whole_case": "1"})
    assert code == 200 and 'data-testid="alert-status">acknowledged' in page
    with psycopg.connect(env.dsn) as conn:
        acked = {r[0] for r in conn.execute(
            "SELECT report_id FROM alert_state WHERE status = 'acknowledged'").fetchall()}
        assert acked == set(env.day.planted["goip_two_sites"])       # the whole case
        actions = {r[0] for r in conn.execute(
            "SELECT action FROM audit WHERE user_name = 'fiona'").fetchall()}
        assert {"login", "login_failed", "view", "csrf_refused", "acknowledged"} <= actions
    # logout ends the session server-side
    _, page = b.get("/fraud")
    b.post("/logout", {"csrf": csrf_of(page)})
    assert 'id="login"' in b.get("/fraud")[1]


def test_inspection_result_is_entered_back(env: DeskEnv) -> None:
    b = Browser(env.url)
    b.login("ivan", USERS["ivan"][1])
    rid = env.day.planted["depot_chain"][1]
    _, page = b.get(f"/alert/{rid}")
    assert "too_late" in page
    code, page = b.post(f"/alert/{rid}/inspect", {
        "csrf": csrf_of(page), "result": "confirmed", "found": "200 SIM cards", "note": ""})
    assert code == 200 and "200 SIM cards" in page and ">closed<" in page
    a = Browser(env.url)
    a.login("ada", USERS["ada"][1])
    code, page = a.get("/admin/audit")
    assert code == 200 and "inspect" in page and f"report:{rid}" in page
    code, page = a.get("/fleet")
    assert "1 of 2 boxes online" in page and "box.offline" in page
