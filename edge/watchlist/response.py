"""Stage ``response``: act on watchlist hits at once, audited, dry-run by default.

Rules (``[response] rules``) map a hit to an action by list, entry kind and plane,
written ``"<list>/<kind>/<plane>=<action>"`` with ``*`` as a wildcard; the first
matching rule wins. Actions:

- ``suspend_request`` / ``reverify_request``: a ``response.sim_request`` report to the
  carrier's channel (route ``carrier``) naming the SIM or number (pseudonymised) and
  the case, for the carrier's provisioning to suspend or re-verify it;
- ``block_ip``: a :class:`~edge.records.Command` to the ``nftables`` actuator, with
  ``[response] block_ttl_s`` (the kernel expires it);
- ``divert``: a Command to the depot's station controller (``station``) for the parcel;
- ``report_only``: nothing beyond the hit itself.

Every action and its outcome go into the hash-chained audit log
(:mod:`edge.watchlist.audit`) and out as a ``response.action`` report (route ops and
police). With ``dry_run`` (the default) commands still reach the actuators, which
answer ``dry_run`` without acting, so a site sees exactly what would have happened.
An action can be undone with the downlink command ``response_undo {"seq": n}``
(``n`` from the audit log or the report): a block is lifted, a SIM request is
followed by a ``release`` request; the undo is audited too.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from edge.detection import Detection, Evidence, Subject
from edge.records import Command, CommandOutcome
from edge.watchlist.audit import AuditLog

log = logging.getLogger(__name__)
NOTHING: tuple[()] = ()
ACTIONS = ("suspend_request", "reverify_request", "block_ip", "divert", "report_only")
DEFAULT_RULES = ("*/imsi/*=suspend_request", "*/iccid/*=suspend_request",
                 "*/msisdn/call=suspend_request", "*/ip/*=block_ip", "*/*/depot=divert",
                 "*/*/*=report_only")


def parse_rules(rules: Sequence[str]) -> list[tuple[str, str, str, str]]:
    out = []
    for r in rules:
        pat, sep, action = r.partition("=")
        parts = pat.strip().split("/")
        if not sep or len(parts) != 3 or action.strip() not in ACTIONS:
            raise ValueError(f"response rule {r!r}: expected '<list>/<kind>/<plane>=<action>' "
                             f"with action one of {', '.join(ACTIONS)}")
        out.append((parts[0], parts[1], parts[2], action.strip()))
    return out


class ResponseStage:
    name = "response"
    consumes: tuple[type, ...] = (Detection, CommandOutcome)

    def __init__(self, audit: AuditLog, *, rules: Sequence[str] = DEFAULT_RULES,
                 dry_run: bool = True, block_ttl_s: float = 86400.0,
                 divert_deadline_s: float = 5.0, pseudonymise: Any = None) -> None:
        self.audit = audit
        self.rules = parse_rules(rules)
        self.dry_run = dry_run
        self.block_ttl_s = block_ttl_s
        self.divert_deadline_s = divert_deadline_s
        self._pseudo = pseudonymise  # (type, value) -> pseudonym, for the audit log
        self._pending: dict[str, dict[str, Any]] = {}  # correlation id -> audit context
        self._undo: deque[int] = deque()
        self._lock = threading.Lock()
        self._n = 0
        self.c = dict.fromkeys(("hits", "actions", "undone", "undo_refused"), 0)

    # -- downlink (any thread): queued, done on the pipeline thread
    def downlink_commands(self) -> dict[str, Any]:
        return {"response_undo": self._request_undo}

    def _request_undo(self, args: dict[str, Any]) -> dict[str, Any]:
        seq = args.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise ValueError("seq must be the audit sequence number of the action")
        if self.audit.find(seq) is None:
            raise ValueError(f"no audited action {seq}")
        with self._lock:
            self._undo.append(seq)
        return {"queued": seq}

    # -- pipeline
    def feed(self, rec: Any) -> Sequence[Any]:
        if type(rec) is CommandOutcome:
            return self._outcome(rec)
        if rec.kind != "watchlist.hit":
            return NOTHING
        self.c["hits"] += 1
        f = rec.evidence[0].features if rec.evidence else {}
        lst, kind, plane = str(f.get("list", "default")), str(f.get("kind", "")), \
            str(f.get("plane", ""))
        action = next((a for lp, kp, pp, a in self.rules
                       if fnmatch.fnmatchcase(lst, lp) and fnmatch.fnmatchcase(kind, kp)
                       and fnmatch.fnmatchcase(plane, pp)), "report_only")
        if action == "report_only":
            return NOTHING
        ctx = {"who": f.get("issuer", ""), "list": lst, "case": f.get("case", ""),
               "entry": {"kind": kind, "subject": self._subject_text(rec.subject)},
               "action": action, "plane": plane}
        return self._act(rec.ts, action, rec, ctx)

    def _act(self, ts: float, action: str, hit: Detection, ctx: dict[str, Any],
             undo_of: int | None = None) -> list[Any]:
        self.c["actions"] += 1
        self._n += 1
        cid = f"resp-{int(ts * 1000)}-{self._n}"
        if undo_of is not None:
            ctx = {**ctx, "undo_of": undo_of}
        if action in ("suspend_request", "reverify_request", "release_request"):
            args = {"type": hit.subject.type, "id": hit.subject.id}  # needed to undo
            entry = self.audit.append({**ctx, "ts": ts, "args": args, "correlation_id": cid,
                                       "outcome": "dry_run" if self.dry_run else "requested"})
            req = Detection(ts, "response.sim_request", "high", 1.0, hit.subject,
                            [Evidence(f"{action.split('_')[0]} requested for a SIM on "
                                      f"watchlist '{ctx['list']}'",
                                      {"request": action.removesuffix("_request"),
                                       "case": ctx.get("case", ""), "dry_run": self.dry_run,
                                       "audit_seq": entry["seq"]})],
                            ["carrier", "telecom"], related=hit.related, detector=self.name)
            return [req, self._report(entry, hit.subject)]
        if action in ("block_ip", "unblock_ip"):
            ip = hit.subject.id
            cmd = Command(ts, "nftables", action, {"ip": ip, "ttl_s": self.block_ttl_s},
                          ts + 5.0, cid, self.name)
        else:  # divert
            f = hit.evidence[0].features if hit.evidence else {}
            cmd = Command(ts, "station", "divert",
                          {"lane": f.get("lane"), "parcel_seq": f.get("parcel_seq"),
                           "reason": "watchlist"}, ts + self.divert_deadline_s, cid,
                          self.name)
        self._pending[cid] = {**ctx, "ts": ts, "args": dict(cmd.args), "subject": hit.subject}
        return [cmd]

    def _outcome(self, oc: CommandOutcome) -> list[Any]:
        ctx = self._pending.pop(oc.correlation_id, None)
        if ctx is None:
            return []
        subject = ctx.pop("subject")
        entry = self.audit.append({**ctx, "ts": oc.ts, "correlation_id": oc.correlation_id,
                                   "outcome": oc.status, "detail": oc.detail})
        return [self._report(entry, subject)]

    def _report(self, entry: dict[str, Any], subject: Subject) -> Detection:
        return Detection(entry["ts"], "response.action",
                         "medium" if entry["outcome"] in ("acted", "requested") else "low",
                         1.0, subject,
                         [Evidence(f"{entry['action']}: {entry['outcome']}",
                                   {"action": entry["action"], "outcome": entry["outcome"],
                                    "audit_seq": entry["seq"], "list": entry["list"],
                                    "case": entry.get("case", ""),
                                    "undo_of": entry.get("undo_of"),
                                    "detail": str(entry.get("detail", ""))[:200]})],
                         ["ops", "police"], detector=self.name)

    def tick(self, now: float) -> Sequence[Any]:
        if not self._undo:
            return NOTHING
        out: list[Any] = []
        with self._lock:
            todo = list(self._undo)
            self._undo.clear()
        for seq in todo:
            e = self.audit.find(seq)
            if e is None or e.get("outcome") not in ("acted", "requested", "dry_run"):
                self.c["undo_refused"] += 1
                continue
            undo = {"block_ip": "unblock_ip", "suspend_request": "release_request",
                    "reverify_request": "release_request"}.get(e["action"])
            if undo is None:
                self.c["undo_refused"] += 1
                continue
            self.c["undone"] += 1
            args = e.get("args", {})
            subj = Subject("ip", str(args.get("ip"))) if undo == "unblock_ip" else \
                Subject(str(args.get("type", "imsi")), str(args.get("id", "")))
            hit = Detection(now, "watchlist.hit", "info", 1.0, subj, [], ["ops"])
            out += self._act(now, undo, hit, {k: e.get(k) for k in
                                              ("who", "list", "case", "entry", "plane")}
                             | {"action": undo}, undo_of=seq)
        return out

    def flush(self, now: float) -> Sequence[Any]:
        return self.tick(now)

    def _subject_text(self, s: Subject) -> str:
        return self._pseudo(s.type, s.id) if self._pseudo is not None else s.id

    def counters(self) -> dict[str, int | float]:
        return {**self.c, "audit_seq": self.audit.seq, "audit_torn": self.audit.torn}

    def close(self) -> None:
        self.audit.close()
