"""Revenue by region from a real SQLite database, computed by a script instead of by the model.

The story: asked "which region brings in the most revenue, and what is the total?", a model with
only a ``query_database(sql)`` tool lists the regions, then pulls each region's orders, one tool
call per turn, and every row lands in its context. With ptcd the model writes one short script that
makes those same calls (concurrently), adds the numbers up in Python, and prints two lines.

Run it against a local daemon (no network needed):  ptcd serve &  python revenue_by_region.py
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import ptcd
from _context import ContextMeter, report

REGIONS = ["North America", "EMEA", "LATAM", "APAC", "Oceania"]
ORDERS = 5_000


def build_database(path: Path) -> None:
    """A small sales database: regions and orders, amounts in cents, deterministic contents."""
    rng = random.Random(42)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, region_id INTEGER NOT NULL REFERENCES regions(id),"
            " customer TEXT NOT NULL, amount_cents INTEGER NOT NULL, ordered_at TEXT NOT NULL)"
        )
        db.executemany("INSERT INTO regions (id, name) VALUES (?, ?)", list(enumerate(REGIONS, start=1)))
        weights = [5, 4, 2, 3, 1]
        db.executemany(
            "INSERT INTO orders (region_id, customer, amount_cents, ordered_at) VALUES (?, ?, ?, ?)",
            [
                (
                    rng.choices(range(1, len(REGIONS) + 1), weights)[0],
                    f"customer-{rng.randrange(1, 800):04d}",
                    rng.randrange(500, 250_000),
                    f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                )
                for _ in range(ORDERS)
            ],
        )


def make_query_tool(path: Path):  # type: ignore[no-untyped-def]
    def query_database(sql: str) -> list[dict[str, Any]]:
        """Run a read-only SQL query against the sales database and return the rows.

        Tables: regions(id, name); orders(id, region_id, customer, amount_cents, ordered_at).

        Args:
            sql: A single SELECT statement.
        """
        uri = f"file:{path}?mode=ro"
        with sqlite3.connect(uri, uri=True) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql)]

    return query_database


# What the model writes: the same calls a tool-per-turn loop would make, but aggregated in code.
CODE = """
import asyncio
regions = await query_database("SELECT id, name FROM regions")
per_region = await asyncio.gather(*(
    query_database(f"SELECT customer, amount_cents, ordered_at FROM orders WHERE region_id = {r['id']}")
    for r in regions
))
totals = {r["name"]: sum(o["amount_cents"] for o in orders) for r, orders in zip(regions, per_region)}
top = max(totals, key=totals.get)
print(f"Top region: {top} (${totals[top] / 100:,.2f})")
print(f"Total revenue: ${sum(totals.values()) / 100:,.2f} across {len(regions)} regions")
"""


def ground_truth(path: Path) -> tuple[str, int, int]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT r.name, SUM(o.amount_cents) FROM orders o JOIN regions r ON r.id = o.region_id"
            " GROUP BY r.name ORDER BY 2 DESC"
        ).fetchall()
    return rows[0][0], rows[0][1], sum(total for _, total in rows)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sales.db"
        build_database(path)
        meter = ContextMeter()
        query_database = meter.metered(make_query_tool(path))

        async with ptcd.AsyncClient() as client:
            result = await client.run(CODE, tools=[query_database])
            print(result.render())
            if not result.ok:
                raise SystemExit(1)
            await report(client, CODE, result, meter, [query_database])
        top, top_cents, total_cents = ground_truth(path)
        assert f"Top region: {top} (${top_cents / 100:,.2f})" in result.stdout, "wrong top region"
        assert f"Total revenue: ${total_cents / 100:,.2f}" in result.stdout, "wrong total"


if __name__ == "__main__":
    asyncio.run(main())
