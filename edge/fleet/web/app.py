"""The desks: a small Starlette app with Jinja2 templates, served by the collector.

Routes (every page needs a session; a role reaches only its own desk, anything else
answers 403 and is audited as ``denied``):

=====================================  ==========  =======================================
route                                  role        what
=====================================  ==========  =======================================
GET/POST ``/login``, POST ``/logout``  anyone      sign in / out
GET ``/fraud``                         fraud       alerts by day, site, kind, severity,
                                                   status; case of each alert
GET ``/fraud/cases``                   fraud       correlated cases of the day
GET ``/inspection``                    inspection  parcel alerts with divert outcome
GET ``/alert/<id>``                    its desk    evidence, crop, case, workflow
POST ``/alert/<id>/status``            its desk    acknowledge / close (or a whole case)
POST ``/alert/<id>/inspect``           inspection  the inspection result
GET ``/fleet``, ``/admin/audit``       admin       boxes, fleet alerts, the audit log
GET ``/healthz``, ``/metrics``         anyone      liveness; collector counters
=====================================  ==========  =======================================

Every POST carries the session's CSRF token (the login form a double-submit cookie);
cookies are HttpOnly, SameSite=Strict (Secure behind HTTPS); pages send a strict
Content-Security-Policy. Database work runs in the thread pool with a connection per
request. Identifiers are shown as the pseudonyms the boxes sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

import psycopg
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from edge.fleet.config import FleetConfig
from edge.fleet.web import auth, queries

COOKIE = "afe_desk"
LOGIN_COOKIE = "afe_login"
HOME = {"fraud": "/fraud", "inspection": "/inspection", "admin": "/fleet"}
CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def _templates() -> Environment:
    folder = resources.files("edge.fleet.web").joinpath("templates")
    env = Environment(loader=FileSystemLoader(str(folder)),
                      autoescape=select_autoescape(["html"]))
    env.filters["t"] = lambda d: d.strftime("%Y-%m-%d %H:%M:%S") if d else "-"
    return env


class Desk:
    """The app's state: config, templates, the collector's counters (if in-process)."""

    def __init__(self, cfg: FleetConfig, stats: Any = None) -> None:
        self.cfg = cfg
        self.stats = stats
        self.env = _templates()
        self.css = resources.files("edge.fleet.web").joinpath("desk.css").read_text()

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.cfg.db.dsn, autocommit=True,
                               application_name="afe-desk")

    def page(self, name: str, status: int = 200, **ctx: Any) -> Response:
        html = self.env.get_template(name).render(**ctx)
        return _secure(HTMLResponse(html, status_code=status))

    def cookie(self, resp: Response, name: str, value: str, max_age: int | None) -> None:
        resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                        secure=self.cfg.desk.secure_cookies, path="/")


def _secure(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _remote(request: Request) -> str:
    return request.client.host if request.client else ""


Handler = Callable[[Request, auth.DeskSession, psycopg.Connection[Any]], Response]


def make_app(cfg: FleetConfig, stats: Any = None) -> Starlette:
    desk = Desk(cfg, stats)
    idle = cfg.desk.session_idle_s

    def guarded(roles: tuple[str, ...], fn: Handler, post: bool = False
                ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            form = dict(await request.form()) if post else {}

            def work() -> Response:
                with desk.db() as conn:
                    sess = auth.session(conn, request.cookies.get(COOKIE), idle)
                    if sess is None:
                        return RedirectResponse("/login", status_code=303)
                    if sess.role not in roles:
                        auth.audit(conn, sess.user, sess.role, "denied", request.url.path,
                                   remote=_remote(request))
                        return desk.page("error.html", 403, sess=sess,
                                         message="This desk is not yours.")
                    if post and not auth.csrf_ok(sess, str(form.get("csrf", ""))):
                        auth.audit(conn, sess.user, sess.role, "csrf_refused",
                                   request.url.path, remote=_remote(request))
                        return desk.page("error.html", 403, sess=sess,
                                         message="The form expired; reload the page.")
                    request.state.form = form
                    return fn(request, sess, conn)
            return await run_in_threadpool(work)
        return endpoint

    def filters(request: Request) -> queries.Filters:
        q = request.query_params
        try:
            day = date.fromisoformat(q.get("day", "")) if q.get("day") else \
                datetime.now(UTC).date()
        except ValueError:
            day = datetime.now(UTC).date()
        return queries.Filters(day=day, site=q.get("site", "")[:64],
                               kind=q.get("kind", "")[:64],
                               severity=q.get("severity", "") if q.get("severity")
                               in queries.SEVERITIES else "",
                               status=q.get("status", "") if q.get("status")
                               in queries.STATUSES else "")

    def alerts_page(desk_name: str, template: str) -> Handler:
        def handler(request: Request, sess: auth.DeskSession,
                    conn: psycopg.Connection[Any]) -> Response:
            f = filters(request)
            rows = queries.list_alerts(conn, desk_name, f)
            auth.audit(conn, sess.user, sess.role, "view", f"{desk_name}:alerts",
                       {"day": f.day.isoformat(), "site": f.site, "kind": f.kind,
                        "severity": f.severity, "status": f.status, "rows": len(rows)},
                       _remote(request))
            return desk.page(template, sess=sess, rows=rows, f=f,
                             facets=queries.facets(conn, desk_name, f.day),
                             severities=queries.SEVERITIES, statuses=queries.STATUSES)
        return handler

    def cases_page(request: Request, sess: auth.DeskSession,
                   conn: psycopg.Connection[Any]) -> Response:
        f = filters(request)
        cases = queries.day_cases(conn, "fraud", f.day)
        auth.audit(conn, sess.user, sess.role, "view", "fraud:cases",
                   {"day": f.day.isoformat(), "cases": len(cases)}, _remote(request))
        return desk.page("cases.html", sess=sess, cases=cases, f=f)

    def may_see(sess: auth.DeskSession, kind: str) -> bool:
        return queries.desk_of(kind) == sess.role

    def alert_page(request: Request, sess: auth.DeskSession,
                   conn: psycopg.Connection[Any]) -> Response:
        rid = request.path_params["rid"]
        d = queries.alert(conn, rid)
        if d is None or not may_see(sess, d.row.kind):
            auth.audit(conn, sess.user, sess.role, "denied", f"report:{rid}",
                       remote=_remote(request))
            return desk.page("error.html", 404, sess=sess, message="No such alert on this "
                             "desk.")
        auth.audit(conn, sess.user, sess.role, "view", f"report:{rid}", remote=_remote(request))
        crop = None
        for ev in d.report.get("evidence", ()):
            b64 = ev.get("features", {}).get("crop_jpeg_b64")
            if isinstance(b64, str) and b64.isascii() and len(b64) < 400_000:
                crop = b64
        return desk.page("alert.html", sess=sess, d=d, crop=crop,
                         results=queries.INSPECTION_RESULTS)

    def status_post(request: Request, sess: auth.DeskSession,
                    conn: psycopg.Connection[Any]) -> Response:
        rid = request.path_params["rid"]
        form = request.state.form
        status = str(form.get("status", ""))
        d = queries.alert(conn, rid)
        if d is None or not may_see(sess, d.row.kind) or status not in queries.STATUSES:
            return desk.page("error.html", 400, sess=sess, message="Not possible.")
        ids = [rid]
        if form.get("whole_case") and d.case is not None:
            ids = [i for i in d.case.reports if i == rid or _same_desk(conn, i, sess.role)]
        with conn.transaction():
            queries.set_status(conn, ids, status, sess.user, str(form.get("note", "")))
            auth.audit(conn, sess.user, sess.role, status, f"report:{rid}",
                       {"reports": ids, "note": str(form.get("note", ""))[:200]},
                       _remote(request))
        return RedirectResponse(f"/alert/{rid}", status_code=303)

    def _same_desk(conn: psycopg.Connection[Any], rid: str, role: str) -> bool:
        row = conn.execute("SELECT kind FROM reports WHERE id = %s", (rid,)).fetchone()
        return row is not None and queries.desk_of(row[0]) == role

    def inspect_post(request: Request, sess: auth.DeskSession,
                     conn: psycopg.Connection[Any]) -> Response:
        rid = request.path_params["rid"]
        form = request.state.form
        d = queries.alert(conn, rid)
        result = str(form.get("result", ""))
        if d is None or not may_see(sess, d.row.kind) or \
                result not in queries.INSPECTION_RESULTS:
            return desk.page("error.html", 400, sess=sess, message="Not possible.")
        with conn.transaction():
            queries.record_inspection(conn, rid, result, str(form.get("found", "")),
                                      str(form.get("note", "")), sess.user)
            auth.audit(conn, sess.user, sess.role, "inspect", f"report:{rid}",
                       {"result": result}, _remote(request))
        return RedirectResponse(f"/alert/{rid}", status_code=303)

    def fleet_page(request: Request, sess: auth.DeskSession,
                   conn: psycopg.Connection[Any]) -> Response:
        bx = queries.boxes(conn)
        auth.audit(conn, sess.user, sess.role, "view", "fleet", {"boxes": len(bx)},
                   _remote(request))
        return desk.page("fleet.html", sess=sess, boxes=bx, alerts=queries.fleet_alerts(conn),
                         online=sum(1 for b in bx if b.state == "online"))

    def audit_page(request: Request, sess: auth.DeskSession,
                   conn: psycopg.Connection[Any]) -> Response:
        auth.audit(conn, sess.user, sess.role, "view", "audit", remote=_remote(request))
        return desk.page("audit.html", sess=sess, rows=queries.audit_rows(conn))

    def home(request: Request, sess: auth.DeskSession,
             conn: psycopg.Connection[Any]) -> Response:
        return RedirectResponse(HOME[sess.role], status_code=303)

    async def login_get(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        resp = desk.page("login.html", csrf=token, error=None)
        desk.cookie(resp, LOGIN_COOKIE, token, 900)
        return resp

    async def login_post(request: Request) -> Response:
        form = await request.form()
        sent, want = str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
        name, password = str(form.get("user", ""))[:64], str(form.get("password", ""))

        def work() -> Response:
            if not want or not secrets.compare_digest(sent, want):
                return desk.page("login.html", 403, csrf=want, error="The form expired; "
                                 "try again.")
            with desk.db() as conn:
                got = auth.login(conn, name, password, idle)
                if got is None:
                    auth.audit(conn, name, "", "login_failed", remote=_remote(request))
                    return desk.page("login.html", 401, csrf=want,
                                     error="Wrong user name or password.")
                token, sess = got
                auth.audit(conn, sess.user, sess.role, "login", remote=_remote(request))
            resp = RedirectResponse(HOME[sess.role], status_code=303)
            desk.cookie(resp, COOKIE, token, None)
            resp.delete_cookie(LOGIN_COOKIE, path="/")
            return resp
        return await run_in_threadpool(work)

    def logout_post(request: Request, sess: auth.DeskSession,
                    conn: psycopg.Connection[Any]) -> Response:
        auth.logout(conn, sess)
        auth.audit(conn, sess.user, sess.role, "logout", remote=_remote(request))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    async def css(request: Request) -> Response:
        return Response(desk.css, media_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def metrics(request: Request) -> Response:
        lines = []
        if stats is not None:
            for k, v in stats.as_dict().items():
                lines.append(f"afe_fleet_collector_{k} {v}")
        return PlainTextResponse("\n".join(lines) + "\n")

    everyone = ("fraud", "inspection", "admin")
    routes = [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", guarded(everyone, logout_post, post=True), methods=["POST"]),
        Route("/", guarded(everyone, home)),
        Route("/fraud", guarded(("fraud",), alerts_page("fraud", "alerts.html"))),
        Route("/fraud/cases", guarded(("fraud",), cases_page)),
        Route("/inspection", guarded(("inspection",),
                                     alerts_page("inspection", "alerts.html"))),
        Route("/alert/{rid:str}", guarded(("fraud", "inspection"), alert_page)),
        Route("/alert/{rid:str}/status", guarded(("fraud", "inspection"), status_post,
                                                 post=True), methods=["POST"]),
        Route("/alert/{rid:str}/inspect", guarded(("inspection",), inspect_post, post=True),
              methods=["POST"]),
        Route("/fleet", guarded(("admin",), fleet_page)),
        Route("/admin/audit", guarded(("admin",), audit_page)),
        Route("/static/desk.css", css),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
    ]
    return Starlette(routes=routes)
