"""Actuators: where :class:`~edge.records.Command` records go.

An actuator is whatever acts on the world for the agent: the station controller
behind the firmware bridge (divert a parcel), a local firewall (block an address), a
carrier API (suspend a SIM). The pipeline hands each command to the actuator whose
``name`` equals ``command.target`` and routes the :class:`~edge.records.CommandOutcome`
records it returns, now (``submit``) or later (``poll``, called on every tick of event
time), like any other record. Exceptions an actuator raises are caught and counted by
the pipeline (``actuator.<name>.errors``) and become a ``failed`` outcome.

Both methods run on the pipeline thread; an actuator doing I/O that can block hands
the work to its own thread and reports back through ``poll``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from edge.records import Command, CommandOutcome


@runtime_checkable
class Actuator(Protocol):
    name: str

    def submit(self, cmd: Command) -> Sequence[CommandOutcome]:
        """Take a command; outcomes known at once are returned (may be empty: async)."""
        ...

    def poll(self, now: float) -> Sequence[CommandOutcome]:
        """Outcomes that arrived since the last call (``now`` is event time)."""
        ...

    def counters(self) -> dict[str, int | float]: ...

    def close(self) -> None: ...


def outcome(cmd: Command, status: str, now: float, detail: str = "",
            latency_s: float | None = None) -> CommandOutcome:
    """The outcome record for ``cmd`` (one place that copies the identifying fields)."""
    return CommandOutcome(ts=now, correlation_id=cmd.correlation_id, target=cmd.target,
                          action=cmd.action, status=status, detail=detail,
                          latency_s=latency_s)


class DryRunActuator:
    """Records what it would have done and answers ``dry_run``: for sites that want to
    see the commands before letting the agent act, and for tests."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[Command] = []

    def submit(self, cmd: Command) -> Sequence[CommandOutcome]:
        self.commands.append(cmd)
        return (outcome(cmd, "dry_run", cmd.ts, "not executed (dry run)"),)

    def poll(self, now: float) -> Sequence[CommandOutcome]:
        return ()

    def counters(self) -> dict[str, int | float]:
        return {"commands": len(self.commands)}

    def close(self) -> None:
        pass
