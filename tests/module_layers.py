"""The daemon's layers import one another top-down only.

Reads every `crate::<module>` reference in daemon/src outside `#[cfg(test)]` blocks and comments,
builds the graph of top-level modules, and fails on any reference from a lower layer to a
higher one (connection → run → child/sandbox → foundations must read top-down), and so on any
import cycle between layers. Cycles between modules of one layer are listed as notes. Run:
`python3 tests/module_layers.py` (exit 1 on an upward reference); `--graph` prints the edges.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "daemon" / "src"
REF = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


# Highest first. A module may use its own layer and the layers below it.
LAYERS = [
    ("process", {"service", "probe", "doctor", "mcp_host"}),
    ("connection", {"server", "connection", "client_source", "definitions"}),
    ("run", {"run", "relay", "tool_source", "session", "params", "tools", "error", "pool", "daemon", "mcp",
             "attach", "discovery", "stubs"}),
    ("child", {"confined", "forkserver", "control", "shim", "sandbox", "scratch", "policy", "limits", "python", "config"}),
    ("foundation", {"rpc", "budget", "memory", "secure_dir", "unwind"}),
]
RANK = {module: rank for rank, (_, modules) in enumerate(LAYERS) for module in modules}


def top_module(path: Path) -> str | None:
    rel = path.relative_to(SRC)
    if rel.parts[0] in ("lib.rs", "main.rs"):
        return None
    return rel.parts[0].removesuffix(".rs")


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.rs")):
        module = top_module(path)
        if module is None:
            continue
        text = path.read_text()
        text = text.split("#[cfg(test)]", 1)[0]
        code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
        targets = {m for m in REF.findall(code) if m != module}
        edges.setdefault(module, set()).update(targets)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, keeping those of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    edges = graph()
    if "--graph" in sys.argv:
        for module in sorted(edges):
            print(f"{module} -> {', '.join(sorted(edges[module])) or '-'}")
    unplaced = sorted(m for m in edges if m not in RANK)
    for module in unplaced:
        print(f"module {module} has no layer: add it to LAYERS")
    upward = [
        (m, t)
        for m in sorted(edges)
        for t in sorted(edges[m])
        if m in RANK and t in RANK and RANK[t] < RANK[m]
    ]
    for m, t in upward:
        print(f"upward reference: {m} ({LAYERS[RANK[m]][0]}) uses {t} ({LAYERS[RANK[t]][0]})")
    for component in cycles(edges):
        print("note: modules of one layer use one another: " + ", ".join(component))
    if not upward and not unplaced:
        print(f"{len(edges)} modules in {len(LAYERS)} layers: every reference points down")
    return 1 if upward or unplaced else 0


if __name__ == "__main__":
    sys.exit(main())
