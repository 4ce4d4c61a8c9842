"""Query the shop database through an MCP server, then look up each row's customer in the CRM.

The story: the shop's orders live in SQLite, served by the stock MCP server ``mcp-server-sqlite``
that the daemon's config declares (``[mcp_servers.sqlite]`` in ``mcp_shop.toml`` next to this
file); the customer records live in a CRM that this program serves as an ordinary client tool,
``lookup_customer(customer_id)``. Asked "which of this month's top customers are not on the gold
tier yet?", a model with one tool call per turn queries the database, then looks up the customers
one turn each, every CRM record landing in its context. With ptcd it writes one script: one
``await sqlite.read_query(...)`` (the daemon calls the MCP server itself; nothing goes through this
program), then every row's ``lookup_customer`` at once with ``asyncio.gather``, and prints three
lines.

Run it (no network needed once the server is installed):
    pip install mcp-server-sqlite 'mcp<2'   # its last release needs the 1.x MCP SDK
    ptcd serve --config mcp_shop.toml &
    python mcp_shop.py
``SHOP_DB`` (default ``/tmp/ptcd-example/shop.db``) is where the database is written: it must be
the ``--db-path`` of the config.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from pathlib import Path
from typing import TypedDict

import ptcd
from _context import ContextMeter, report

DB_PATH = Path(os.environ.get("SHOP_DB", "/tmp/ptcd-example/shop.db"))
MONTH = "2025-11"
TOP = 10


class Ticket(TypedDict):
    id: int
    subject: str
    status: str


class Address(TypedDict):
    kind: str
    street: str
    city: str
    postcode: str


class Customer(TypedDict):
    id: int
    name: str
    email: str
    phone: str
    tier: str
    country: str
    account_manager: str
    customer_since: str
    addresses: list[Address]
    notes: str
    recent_tickets: list[Ticket]


_rng = random.Random(11)
_NAMES = ["Ada", "Bea", "Cyd", "Dov", "Eun", "Fay", "Gil", "Hal", "Ida", "Jun", "Kai", "Lev", "Mia", "Noa",
          "Oto", "Pia", "Quy", "Rex", "Sol", "Tam", "Uma", "Vik", "Wen", "Xiu", "Yan", "Zoe"]
_SURNAMES = ["Lindqvist", "Okafor", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski"]
CRM: dict[int, Customer] = {
    cid: {
        "id": cid,
        "name": f"{_rng.choice(_NAMES)} {_rng.choice(_SURNAMES)}",
        "email": f"customer{cid}@example.com",
        "phone": f"+49 30 {_rng.randrange(1_000_000, 9_999_999)}",
        "tier": _rng.choices(["gold", "silver", "bronze"], [4, 3, 3])[0],
        "country": _rng.choice(["DE", "FR", "NL", "SE", "PL", "ES", "IT"]),
        "account_manager": _rng.choice(["Rosa", "Tomek", "Ingrid", "Malik"]),
        "customer_since": f"20{_rng.randrange(15, 25)}-{_rng.randrange(1, 13):02d}-01",
        "addresses": [
            {"kind": kind,
             "street": f"{_rng.randrange(1, 200)} {_rng.choice(['Hauptstrasse', 'Rue de la Paix', 'Kerkstraat'])}",
             "city": _rng.choice(["Berlin", "Lyon", "Utrecht", "Malmo", "Krakow", "Valencia", "Turin"]),
             "postcode": f"{_rng.randrange(10_000, 99_999)}"}
            for kind in ("billing", "shipping", "warehouse")
        ],
        "notes": f"Customer {cid}: prefers invoices by email, ships to two warehouses, asked about volume "
        "discounts at the last quarterly review; payment terms net 30; call before deliveries over 50 kg; "
        "has a standing order for packaging material at the start of each month.",
        "recent_tickets": [
            {"id": cid * 100 + t, "subject": _rng.choice(["late delivery", "invoice copy", "damaged item",
                                                        "address change", "bulk order quote"]),
             "status": _rng.choice(["open", "closed"])}
            for t in range(_rng.randrange(3, 8))
        ],
    }
    for cid in range(1, 61)
}


def build_database(path: Path) -> None:
    """The shop's orders (deterministic contents), rewritten in place on every run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(5)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS orders")
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
                   " day TEXT NOT NULL, total_cents INTEGER NOT NULL)")
        db.executemany(
            "INSERT INTO orders (customer_id, day, total_cents) VALUES (?, ?, ?)",
            [
                (rng.randrange(1, 61), f"2025-{rng.choice([10, 11])}-{rng.randrange(1, 29):02d}",
                 rng.randrange(1_500, 90_000))
                for _ in range(800)
            ],
        )


async def lookup_customer(customer_id: int) -> Customer:
    """The CRM record of a customer: name, tier, country, account manager, notes, recent tickets.

    Args:
        customer_id: The customer's id (``orders.customer_id`` in the shop database).
    """
    if customer_id not in CRM:
        raise KeyError(f"no customer {customer_id}")
    return CRM[customer_id]


QUERY = (f"SELECT customer_id, COUNT(*) AS orders, SUM(total_cents) AS spent_cents FROM orders "
         f"WHERE day LIKE '{MONTH}-%' GROUP BY customer_id ORDER BY spent_cents DESC, customer_id LIMIT {TOP}")

CODE = f'''
import ast, asyncio
raw = await sqlite.read_query(query="{QUERY}")
# mcp-server-sqlite answers with the text of the rows' Python repr, not JSON
rows = ast.literal_eval(raw) if isinstance(raw, str) else raw
customers = await asyncio.gather(*(lookup_customer(r["customer_id"]) for r in rows))
spent = sum(r["spent_cents"] for r in rows)
print(f"Top {{len(rows)}} customers in {MONTH} spent ${{spent / 100:,.2f}} in {{sum(r['orders'] for r in rows)}} orders")
candidates = [(c, r) for c, r in zip(customers, rows) if c["tier"] != "gold"]
print(f"Not on the gold tier yet: {{len(candidates)}} of {{len(rows)}}")
for c, r in candidates:
    print(f"- {{c['name']}} (#{{c['id']}}, {{c['country']}}, {{c['tier']}}, manager {{c['account_manager']}}): ${{r['spent_cents'] / 100:,.2f}}")
'''


def expected_candidates() -> list[int]:
    """Ground truth, computed directly on the same database and CRM."""
    with sqlite3.connect(DB_PATH) as db:
        ids = [row[0] for row in db.execute(QUERY)]
    return [cid for cid in ids if CRM[cid]["tier"] != "gold"]


async def main() -> None:
    build_database(DB_PATH)
    meter = ContextMeter()
    tools = [meter.metered(lookup_customer)]
    async with ptcd.AsyncClient() as client:
        try:
            result = await client.run(CODE, tools=tools, mcp_servers=["sqlite"])
        except ptcd.InvalidParams as exc:
            raise SystemExit(f"{exc.message}\nStart the daemon with the config next to this example: "
                             "ptcd serve --config mcp_shop.toml") from None
        except ptcd.McpServerUnavailable as exc:
            raise SystemExit(
                f"{exc.message}\nIs mcp-server-sqlite installed (pip install mcp-server-sqlite 'mcp<2')?"
            ) from None
        print(result.render())
        if not result.ok:
            raise SystemExit(1)
        # What a one-call-per-turn loop would also have read: the query's full result, measured
        # by fetching the same rows through the server once more.
        size = await client.run(f'len((await sqlite.read_query(query="{QUERY}")).encode())', mcp_servers=["sqlite"])
        assert size.ok and isinstance(size.value, int), size.render()
        meter.record_external("sqlite.read_query", {"query": QUERY}, size.value)
        await report(client, CODE, result, meter, tools, mcp_servers=["sqlite"])
    candidates = expected_candidates()
    assert f"Not on the gold tier yet: {len(candidates)} of {TOP}" in result.stdout, result.stdout
    for cid in candidates:
        assert f"(#{cid}, " in result.stdout, f"customer {cid} should be listed"


if __name__ == "__main__":
    asyncio.run(main())
