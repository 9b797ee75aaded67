"""Workflow names as the scheduler core's integer ids.

The core keys its per-job, per-agent and per-type records by small integers. Names are interned
here on first sight; a forgotten job's id goes back to a free list and is reused, so that ids stay
small however many jobs a long-running server has seen.
"""

from __future__ import annotations

KINDS = ("type", "job", "agent")


class TagTable:
    def __init__(self) -> None:
        self.ids: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self.seen = {kind: 0 for kind in KINDS}  # names ever interned, per kind
        self.free_job_ids: list[int] = []  # ids of forgotten jobs, reused first

    def intern(self, kind: str, value: str | None) -> int:
        """The id of `value`, assigned on first sight; -1 for None (not given)."""
        if value is None:
            return -1
        ids = self.ids[kind]
        tag = ids.get(value)
        if tag is None:
            # Ids in use and forgotten (free) ones together are exactly 0 .. n-1: with none free,
            # the next id is len(ids).
            free = self.free_job_ids if kind == "job" else []
            tag = ids[value] = free.pop() if free else len(ids)
            self.seen[kind] += 1
        return tag

    def lookup(self, kind: str, value: str | None) -> int:
        """The id of an interned name, -1 when it has none."""
        return -1 if value is None else self.ids[kind].get(value, -1)

    def release_job(self, job_id: str) -> int | None:
        """Drops the job's id for reuse; returns it (None: it had none)."""
        tag = self.ids["job"].pop(job_id, None)
        if tag is not None:
            self.free_job_ids.append(tag)
        return tag
