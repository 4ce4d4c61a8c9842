"""Every example in examples/python runs against the real daemon and tells its story.

Each example checks its own answer against ground truth computed directly (and exits non-zero
otherwise); these tests run them as a user would, as scripts, and check what they print.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import McpDaemon

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"


def run_example(name: str, socket_path: str, **extra_env: str) -> str:
    env = {**os.environ, "PTCD_SOCKET": socket_path, **extra_env}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_example_has_a_test() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == {"revenue_by_region.py", "team_expenses.py", "recent_errors.py", "agent_loop.py",
                       "pydantic_ai_agent.py", "mcp_shop.py"}


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("revenue_by_region.py", "Top region: "),
        ("team_expenses.py", "members are over budget"),
        ("recent_errors.py", "10 most recent errors out of 10000 entries"),
    ],
)
def test_seed_examples_print_answer_turns_and_context_sizes(name: str, answer: str, socket_path: str) -> None:
    check_answer_turns_and_context_sizes(run_example(name, socket_path), answer)


def check_answer_turns_and_context_sizes(out: str, answer: str) -> None:
    assert answer in out
    ptcd_line = next(line for line in out.splitlines() if line.startswith("ptcd: "))
    classic_line = next(line for line in out.splitlines() if line.startswith("one tool call per turn: "))
    ptcd_bytes = int(ptcd_line.split()[1].replace(",", ""))
    classic_bytes = int(classic_line.split()[5].replace(",", ""))
    assert 0 < ptcd_bytes < classic_bytes
    # Turns: ptcd writes one script and answers; the classic loop takes one turn per tool call.
    assert "in 2 model turns" in ptcd_line
    calls = int(ptcd_line.split("; ")[-1].split()[0].replace(",", ""))
    assert f"in {calls + 1:,} model turn" in classic_line
    # The run_code definition the model reads carries typed stubs, and is counted.
    assert "run_code definition with typed stubs" in ptcd_line


def test_mcp_shop_example_queries_the_real_sqlite_server_then_looks_up_each_row(mcp_daemon: McpDaemon) -> None:
    """The example against the config shipped next to it (conftest swaps in the installed
    ``mcp-server-sqlite`` and a temporary database): one ``sqlite.read_query`` through the MCP
    server, ten ``lookup_customer`` calls served by the example, three lines of answer."""
    out = run_example("mcp_shop.py", mcp_daemon.socket, SHOP_DB=str(mcp_daemon.db))
    check_answer_turns_and_context_sizes(out, "Not on the gold tier yet: ")
    assert "Top 10 customers in 2025-11 spent $" in out
    # 1 MCP call + 10 client calls ran inside the one run.
    assert "11 tool calls ran inside one run_code call" in out


def test_agent_loop_example(socket_path: str) -> None:
    out = run_example("agent_loop.py", socket_path)
    assert "OpenAI-style loop:    These team members are over budget:" in out
    assert "Anthropic-style loop: These team members are over budget:" in out


def test_pydantic_ai_example_measures_turns_and_bytes_with_the_framework(socket_path: str) -> None:
    pytest.importorskip("pydantic_ai")
    out = run_example("pydantic_ai_agent.py", socket_path)
    assert out.startswith("over budget: ")
    with_ptcd = next(line for line in out.splitlines() if line.startswith("pydantic-ai with ptcd: "))
    classic = next(line for line in out.splitlines() if line.startswith("pydantic-ai, one tool call per turn: "))
    assert "2 model turns" in with_ptcd and "10 model turns" in classic
    last = [int(line.split("last request ")[1].split()[0].replace(",", "")) for line in (with_ptcd, classic)]
    assert last[0] < last[1]
