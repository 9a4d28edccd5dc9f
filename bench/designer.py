"""What one designer gesture costs the server as a flow grows: the edit, the compiler's check and the redraw
the browser receives, for flows of 20 (the baseline), 200 and 1000 steps.

    .venv/bin/python -m bench.designer [--repeat 30]

A drag costs the browser one event when the gesture ends (the e2e test counts it) and the server only the edit;
a structural edit (connect, add, apply a form) also runs the compiler and sends the redrawn nodes back. Prints
p50/p95 ms per gesture, the bytes of the redraw, and ratios to the 20-step flow. The target ("a 200-node flow
stays smooth") is read as: a structural edit under 50 ms on the server and a redraw under 100 KB.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.services import accounts, designer
from app.services.catalog import TenantCatalog
from app.services.component_upgrades import newest_imported, upgrades
from app.storage import migrations
from app.storage.db import Database
from bench.common import percentile
from designer import edits
from designer.view import canvas_edges, canvas_nodes

SIZES = (20, 200, 1000)


def _graph(size: int) -> dict:
    nodes = [{"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}}]
    edges = []
    for i in range(1, size):
        nodes.append({"id": f"shape_{i}", "component": "jsonata", "function": "transform",
                      "fields": {"expression": f"{{'n': n + {i}}}"},
                      "position": {"x": 280.0 * (i % 20), "y": 120.0 * (i // 20)}})  # fmt: skip
        edges.append({"source": nodes[(i - 1) // 2]["id"], "target": f"shape_{i}"})
    return {"nodes": nodes, "edges": edges}


def _timed(repeat: int, gesture: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        gesture()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-designer-"))
    url = f"sqlite:///{folder / 'hub.db'}"
    migrations.upgrade(url)
    db = Database.connect(url)
    tenant = accounts.create_tenant(db, "Bench").id

    def redraw(graph: dict) -> str:
        """What DesignerState does after a structural edit: pins, the compiler, upgrades, the drawing."""
        graph = edits.with_pins(graph, newest_imported(db, tenant, {n["component"] for n in graph["nodes"]}))
        upgrades(db, tenant, graph)
        catalog = designer.designer_catalog(db, tenant, graph.get("pins"))
        found = designer.draft_problems(db, TenantCatalog(db, tenant), tenant, None, graph)
        by_node: dict[str, list[str]] = {}
        for problem in found:
            by_node.setdefault(problem.node_id or "", []).append(problem.message)
        return json.dumps([canvas_nodes(graph, catalog.looks(), by_node), canvas_edges(graph)])

    rows = {}
    for size in SIZES:
        graph = _graph(size)
        last = graph["nodes"][-1]["id"]
        # The state copies the draft out of Reflex's change tracking (a JSON round trip) for the edit and undo.
        move = _timed(args.repeat, lambda g=graph: edits.move_nodes(json.loads(json.dumps(g)),
                                                                    [{"id": "start", "x": 40, "y": 40}]))  # fmt: skip

        def structural(g: dict = graph, tip: str = last) -> str:
            added, new_id = edits.add_node(json.loads(json.dumps(g)), "log", "log", 0, 0)
            return redraw(edits.connect(added, tip, new_id, lambda n: n.get("component") == "manual"))

        edit = _timed(args.repeat, structural)
        rows[size] = (percentile(move, 50), percentile(edit, 50), percentile(edit, 95), len(structural()))
    base = rows[SIZES[0]]
    print(f"designer gestures, server side (p50 of {args.repeat}); ratios to the {SIZES[0]}-step flow")
    print(
        f"{'steps':>6} {'drag stop ms':>13} {'edit p50 ms':>12} {'edit p95 ms':>12} {'redraw KB':>10} {'edit x':>7}"
    )
    for size, (move_ms, edit_ms, edit_p95, size_bytes) in rows.items():
        print(f"{size:>6} {move_ms:>13.3f} {edit_ms:>12.1f} {edit_p95:>12.1f} {size_bytes / 1024:>10.1f} "
              f"{edit_ms / base[1]:>6.1f}x")  # fmt: skip
    edit_200, bytes_200 = rows[200][1], rows[200][3]
    met = edit_200 < 50 and bytes_200 < 100 * 1024
    print(f"200 steps: edit {edit_200:.1f} ms (target < 50), redraw {bytes_200 / 1024:.0f} KB (target < 100): "
          f"{'met' if met else 'NOT met'}")  # fmt: skip
    db.dispose()


if __name__ == "__main__":
    main()
