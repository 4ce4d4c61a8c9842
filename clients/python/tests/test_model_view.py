"""What the model reads: ``RunResult.render()`` and the errors it shows, against the real daemon."""

from __future__ import annotations

import ptcd


def _caret_under(rendered: str, source_line: str, expression: str) -> None:
    """The traceback shows ``source_line`` and, on the next line, markers starting under ``expression``."""
    lines = rendered.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip() == source_line)
    shown, markers = lines[index], lines[index + 1]
    start = len(markers) - len(markers.lstrip())
    assert set(markers.strip()) <= {"^", "~"}, markers
    assert shown[start:].startswith(expression), f"markers point at {shown[start:]!r}:\n{shown}\n{markers}"


async def test_traceback_markers_point_at_the_failing_expression(client: ptcd.AsyncClient) -> None:
    result = await client.run("x = {'a': 1}\ny = x['a'] + x['bb']")
    _caret_under(result.render(), "y = x['a'] + x['bb']", "x['bb']")
    # The script's last line, with no newline after it, evaluated as the run's value.
    result = await client.run("for i in range(3):\n    pass\n[1][i + 5]")
    _caret_under(result.render(), "[1][i + 5]", "[1][i + 5]")
    # Indented with a tab, trailing spaces, inside a function.
    result = await client.run("def f(d):\n\treturn d['key']   \nf({})")
    _caret_under(result.render(), "return d['key']", "d['key']")


async def test_unknown_tool_name_error_lists_the_available_tools(client: ptcd.AsyncClient) -> None:
    def get_weather(city: str) -> dict[str, int]:
        return {"temp_c": 18}

    def get_forecast(city: str, days: int) -> list[dict[str, int]]:
        return []

    result = await client.run("await get_wether('Paris')", tools=[get_weather, get_forecast])
    assert result.error is not None and result.error.type == "NameError"
    assert "available tools: get_forecast, get_weather" in result.render()
    result = await client.run("undefined_thing")
    assert "available tools: none" in result.render()


async def test_warnings_on_stderr_are_kept_on_success(client: ptcd.AsyncClient) -> None:
    result = await client.run("import warnings\nwarnings.warn('rate is an estimate')\n41 + 1")
    assert result.ok
    assert result.render().splitlines()[0] == "[stderr]"
    assert "UserWarning: rate is an estimate" in result.render()
    assert result.render().endswith("\n42")


async def test_multi_line_error_is_shown_once(client: ptcd.AsyncClient) -> None:
    result = await client.run("raise ValueError('first line\\nsecond line')")
    rendered = result.render()
    assert rendered.startswith("error: ValueError: first line\nsecond line\nTraceback")
    assert rendered.splitlines().count("second line") == 1, rendered


async def test_qualified_exception_names_are_not_repeated(client: ptcd.AsyncClient) -> None:
    result = await client.run("import json\njson.loads('{bad')")
    rendered = result.render()
    assert rendered.startswith("error: JSONDecodeError: Expecting property name")
    assert rendered.count("Expecting property name") == 1, rendered


def test_render_of_a_failed_run_without_traceback() -> None:
    result = ptcd.RunResult.from_wire({"run_id": "r-1", "status": "timeout", "stdout": "partial\n",
                                       "error": {"type": "Timeout", "message": "the run took over 5000 ms"}})
    assert result.render() == "partial\ntimeout: Timeout: the run took over 5000 ms"


def test_render_of_an_exception_without_message() -> None:
    result = ptcd.RunResult.from_wire({"run_id": "r-1", "status": "error", "error": {
        "type": "KeyError", "message": "",
        "traceback": 'Traceback (most recent call last):\n  File "<script>", line 1, in <module>\n'
                     "    raise KeyError\nKeyError\n"}})
    assert result.render() == ('error: KeyError\nTraceback (most recent call last):\n'
                               '  File "<script>", line 1, in <module>\n    raise KeyError')
