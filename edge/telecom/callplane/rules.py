"""Explicit rules for what is certain, on the per-SIM feature vector.

In: a feature vector (FEATURES order). Out: a :class:`RuleHit` or None. Rules are
deliberately strict: each one combines two independent tells, of which at least one
is about the device, that no hard negative in domain.md shows together (a phone does
not carry four SIMs that only ever dial out; a SIM of a person is not re-inserted
into three devices with a slow remote authentication each time; a dual-SIM phone has
two SIMs, not three calling at once; a call centre's phones answer calls back and
authenticate at a phone's speed; a person does not place forty calls a day to forty
strangers around the clock with nothing coming back). Everything softer is left to
the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.telecom.callplane.cohort import group_tell
from edge.telecom.callplane.features import INDEX

_I = INDEX


@dataclass(slots=True, frozen=True)
class RuleHit:
    name: str
    reason: str
    features: tuple[str, ...]


def _outbound_only(x: list[float]) -> bool:
    return x[_I["mt_24h"]] == 0 and x[_I["sms_24h"]] == 0 and x[_I["data_24h"]] == 0


SIM_BANK = RuleHit(
    "shared_device_outbound",
    "one device carried 4+ SIMs in 24 h and this SIM only dials out, to distinct numbers",
    ("max_imsis_per_imei", "imeis_per_imsi", "mo_24h", "mt_24h", "sms_24h", "data_24h",
     "distinct_peer_ratio"),
)
BANK_ROTATION = RuleHit(
    "sim_bank_rotation",
    "this SIM moved over 3+ IMEIs in 24 h with 3+ attaches, every one slow (a SIM bank "
    "re-inserting it remotely), and only dials out: nothing incoming, no SMS",
    ("imeis_per_imsi", "attaches_24h", "slow_attach_only", "auth_mean_ms", "mt_24h",
     "sms_24h", "mo_24h"),
)
BANK_SWAP = RuleHit(
    "sim_bank_swap",
    "the SIM's IMEI carried 3+ SIMs in 24 h, most of them (and this one) attaching only "
    "slowly, and this SIM dials out with nothing incoming: a SIM bank swapping cards "
    "in a port",
    ("max_imsis_per_imei", "block_slow_share", "slow_attach_only", "mo_24h", "mt_24h"),
)
PARALLEL_PORTS = RuleHit(
    "parallel_ports",
    "3+ SIMs on one IMEI block (consecutive serials) were placing outgoing calls at the "
    "same instant with nothing coming in, and the block shows a device tell (slow "
    "banked attaches, a bad IMEI check digit or a module TAC): the ports of one box",
    ("block_imsis", "block_concurrent_mo", "block_mo_share", "block_slow_share",
     "block_luhn_bad_share", "module_tac"),
)
ROUND_THE_CLOCK = RuleHit(
    "outbound_round_the_clock",
    "40+ outgoing calls in 24 h to distinct numbers, night included, nothing incoming, "
    "no SMS, no data, static cell",
    ("mo_24h", "night_share", "distinct_peer_ratio", "mt_24h", "sms_24h", "data_24h",
     "cells_24h", "active_hours"),
)
LINKED_GROUP = RuleHit(
    "linked_group",
    "SIMs that attached together on this SIM's cell, more than the cell's attach rate "
    "explains, dial out in parallel with nothing coming in from outside the group, and "
    "2+ of them on this cell call or text this SIM, whose own calls go mostly to strangers: "
    "the ports of one box calling each other to look human",
    ("cohort_sims", "cohort_excess_z", "cohort_dialers", "cohort_concurrent_mo",
     "link_cell_sims", "local_links"),
)
LINK_TELL_SIMS = 3  # call-linked SIMs on its cell that open the gate (device_tell)
LINK_TELL_KNOWN = 0.25  # ... for a SIM whose calls go mostly to strangers


def _group(x: list[float]) -> bool:
    return group_tell(x[_I["cohort_sims"]], x[_I["cohort_excess_z"]],
                      x[_I["cohort_dialers"]], x[_I["cohort_concurrent_mo"]])


def certain(x: list[float]) -> RuleHit | None:
    """The first rule the SIM's features satisfy, or None."""
    no_incoming = x[_I["mt_24h"]] == 0 and x[_I["sms_24h"]] == 0
    mo = x[_I["mo_24h"]]
    if no_incoming and mo >= 1:
        if (x[_I["imeis_per_imsi"]] >= 3 and x[_I["attaches_24h"]] >= 3
                and x[_I["slow_attach_only"]] == 1):
            return BANK_ROTATION
        if (x[_I["max_imsis_per_imei"]] >= 3 and x[_I["block_slow_share"]] >= 0.6
                and x[_I["slow_attach_only"]] == 1):
            return BANK_SWAP
    if (x[_I["block_imsis"]] >= 3 and x[_I["block_concurrent_mo"]] >= 3
            and x[_I["block_mo_share"]] == 1.0 and mo >= 1
            and (x[_I["block_slow_share"]] >= 0.5 or x[_I["block_luhn_bad_share"]] > 0
                 or x[_I["module_tac"]] == 1)):
        return PARALLEL_PORTS
    if _linked_group(x):
        return LINKED_GROUP
    if not _outbound_only(x):
        return None
    if (x[_I["max_imsis_per_imei"]] >= 4 and x[_I["mo_24h"]] >= 5
            and x[_I["distinct_peer_ratio"]] >= 0.9):
        return SIM_BANK
    if (x[_I["mo_24h"]] >= 40 and x[_I["distinct_peer_ratio"]] >= 0.9
            and x[_I["night_share"]] >= 0.1 and x[_I["cells_24h"]] <= 2
            and x[_I["active_hours"]] >= 12):
        return ROUND_THE_CLOCK
    return None


def _linked_group(x: list[float]) -> bool:
    return (x[_I["link_cell_sims"]] >= 2 and x[_I["known_peer_share"]] < LINK_TELL_KNOWN
            and _group(x))


def device_tell(x: list[float]) -> bool:
    """Whether the SIM shows any device-level tell: it moved between IMEIs, its
    IMEI carried other SIMs, its IMEI sits in a block of 3+ consecutive-serial
    devices whose SIMs place calls with nothing coming in to the block in the last
    hour, every attach was
    slow over two or more timed attaches (a remote SIM bank, or a roamer; one slow
    attach is what congestion gives anyone), an IMEI fails its Luhn check, or a
    module TAC; or a group tell with no device at all: SIMs that attached together
    on its cell, more than the cell's rate explains, dialling out in parallel with
    nothing coming in (:func:`~edge.telecom.callplane.cohort.group_tell`), or 3+
    judged SIMs on its cell that it calls or that call it while its own calls go
    mostly to strangers (a box's SIMs calling each other). The model's behaviour
    score alone never raises an alert (``require_device_evidence``): heavy outbound
    dialling to many numbers is what call centres and sales teams do too, and in the
    leave-one-family-out runs a model that had never seen call centres flagged most
    of them on behaviour alone. Batches of phones with consecutive IMEIs are what
    call centres buy too: their block counts only while the block takes no call in
    the hour and the SIM itself took none in 24 h (an agent's customers call back
    over the day, late in the day the office's last hour may be outgoing only; 75 %
    of boxes take no call at all), and a fleet of modules (most never place a call)
    only once its SIMs average a call."""
    return (x[_I["imeis_per_imsi"]] >= 2 or x[_I["max_imsis_per_imei"]] >= 2
            or (x[_I["block_imsis"]] >= 3 and x[_I["block_mo_share"]] == 1.0
                and x[_I["device_mo_per_sim"]] >= 1 and x[_I["mt_24h"]] == 0)
            or (x[_I["slow_attach_only"]] == 1 and x[_I["auth_cv"]] > 0)
            or x[_I["luhn_bad"]] == 1 or x[_I["module_tac"]] == 1
            or _group(x)
            or (x[_I["link_cell_sims"]] >= LINK_TELL_SIMS
                and x[_I["known_peer_share"]] < LINK_TELL_KNOWN))
