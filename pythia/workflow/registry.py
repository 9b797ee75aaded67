"""Registered workflow topologies (POST /v1/workflows): agents and who may call whom."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


# Agents one workflow type may have, registered or learned. The profiler solves its automaton as a
# dense linear system after every request event (O(agents^3)): 256 agents cost milliseconds, 10,000
# cost tens of seconds of the engine loop. Real workflows have a handful.
MAX_AGENTS_PER_TYPE = 256


@dataclass(frozen=True)
class AgentSpec:
    name: str
    system_prompt: str = ""
    output_tokens: int | None = None  # typical output length, a prior for the profiler
    long_context: bool = False
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class EdgeSpec:
    src: str
    dst: str
    max_repeats: int | None = None  # set on loop edges: how often the loop may be taken


@dataclass(frozen=True)
class Topology:
    type: str
    agents: tuple[AgentSpec, ...]
    edges: tuple[EdgeSpec, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "agents": [asdict(a) for a in self.agents],
                "edges": [{"from": e.src, "to": e.dst, "max_repeats": e.max_repeats} for e in self.edges]}


def _field(raw: dict, name: str, kind: type | tuple, where: str, default: Any = None) -> Any:
    value = raw.get(name)
    if value is None:  # null is "not given", as for every optional field of the HTTP API
        value = default
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is int):
        raise ValueError(f"{where}.{name} has the wrong type: {value!r}")
    return value


def parse_topology(raw: Any) -> Topology:
    """Validates a registration body; ValueError naming the problem (unknown agent, duplicate
    name, a cycle with no bounded loop edge, wrong types)."""
    if not isinstance(raw, dict):
        raise ValueError("the topology must be a JSON object")
    wf_type = _field(raw, "type", str, "topology")
    if not wf_type:
        raise ValueError("topology.type is required")
    agents_raw = _field(raw, "agents", list, "topology", [])
    if len(agents_raw) > MAX_AGENTS_PER_TYPE:
        raise ValueError(f"topology.agents has {len(agents_raw)} agents; at most {MAX_AGENTS_PER_TYPE} are served")
    agents: list[AgentSpec] = []
    for i, a in enumerate(agents_raw):
        where = f"agents[{i}]"
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"]:
            raise ValueError(f"{where}.name is required")
        tools = _field(a, "tools", list, where, [])
        if not all(isinstance(t, str) for t in tools):
            raise ValueError(f"{where}.tools must be a list of strings")
        output_tokens = _field(a, "output_tokens", int, where)
        if output_tokens is not None and output_tokens < 0:
            raise ValueError(f"{where}.output_tokens must be >= 0")
        agents.append(AgentSpec(a["name"], _field(a, "system_prompt", str, where, ""), output_tokens,
                                bool(_field(a, "long_context", bool, where, False)), tuple(tools)))
    names = [a.name for a in agents]
    known = set(names)  # membership per edge end: a list would make a long topology quadratic
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate agent name(s): {', '.join(duplicates)}")
    edges: list[EdgeSpec] = []
    for i, e in enumerate(_field(raw, "edges", list, "topology", [])):
        where = f"edges[{i}]"
        if not isinstance(e, dict):
            raise ValueError(f"{where} must be an object")
        src, dst = _field(e, "from", str, where), _field(e, "to", str, where)
        for end, value in (("from", src), ("to", dst)):
            if value is None:
                raise ValueError(f"{where}.{end} is required")
            if value not in known:
                raise ValueError(f"{where}.{end} names unknown agent {value!r}")
        repeats = _field(e, "max_repeats", int, where)
        if repeats is not None and repeats < 1:
            raise ValueError(f"{where}.max_repeats must be >= 1")
        edges.append(EdgeSpec(src, dst, repeats))
    cycle = _unbounded_cycle(names, edges)
    if cycle:
        raise ValueError("unbounded cycle " + " -> ".join(cycle) + ": give one of its edges max_repeats")
    return Topology(wf_type, tuple(agents), tuple(edges))


def _unbounded_cycle(names: list[str], edges: list[EdgeSpec]) -> list[str] | None:
    """A cycle made only of edges without max_repeats, if any. Depth-first with an explicit stack,
    so that a long chain of agents is no recursion limit; O(agents + edges)."""
    graph: dict[str, list[str]] = {n: [] for n in names}
    for e in edges:
        if e.max_repeats is None:
            graph[e.src].append(e.dst)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in names:
        if root in state:
            continue
        state[root] = 1
        path, stack = [root], [iter(graph[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph[nxt]))
    return None
