"""Tools: Python callables the model may call, registered by the embedding application.

A tool has a name, a description and a JSON Schema of its arguments (what the model sees:
OpenAI's ``tools[].function``, Anthropic's ``tools[]`` with ``input_schema``) and a function
(sync or async) that takes the arguments as keyword arguments and returns something JSON can
encode. ``start.tools`` names the tools a stream offers the model. When the model asks for
some, the stream runs them inside its own cancel scope (``stop`` cancels a running tool), each
with a timeout, sends the results back and lets the model continue, for at most
``tools.max_steps`` rounds::

    registry.tools.register(get_weather, description="Weather in a city",
                            parameters={"type": "object",
                                        "properties": {"city": {"type": "string"}},
                                        "required": ["city"]})

Sync functions run in a worker thread (``trio.to_thread.run_sync``; such a thread cannot be
interrupted, so its result is dropped when the stream is cancelled or it times out), unless
registered with ``isolated=True`` (a worker process, ``trio-parallel``: a timeout or a
``stop`` kills it, so a runaway tool really stops and never holds the GIL the event loop
needs; the function and its result must pickle, and the function be importable by name) or
``blocking=False`` (quick, pure functions run inline). The built-in ``calculate`` runs
inline because it is bounded: it refuses, before computing it, any integer result of more
than :data:`MAX_RESULT_DIGITS` digits, so no expression costs more than a fraction of a
millisecond.
:data:`BUILTIN_TOOLS` is a small example set for the demo page.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import math
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio
import trio_parallel

from streamer.errors import InvalidMessage, StreamerError
from streamer.runtime.offload import worker_call

ToolFunction = Callable[..., Any] | Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    """One callable tool. ``parameters`` is a JSON Schema object; ``timeout_s`` in seconds."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction = field(compare=False)
    timeout_s: float = 10.0
    #: a sync function that may block (I/O, heavy work) runs in a worker thread; a quick,
    #: pure one (``blocking=False``) runs inline on the event loop
    blocking: bool = True
    #: run a sync function in a worker process that a timeout or ``stop`` kills
    isolated: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call gave: ``content`` is the text sent back to the model (JSON for values)."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


class Tools:
    """The process's tool registry (names are unique)."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or ():
            self._tools[tool.name] = tool

    def register(self, function: ToolFunction, *, name: str | None = None,
                 description: str | None = None, parameters: dict[str, Any] | None = None,
                 timeout_s: float = 10.0, blocking: bool = True,
                 isolated: bool = False) -> Tool:
        """Add (or replace) a tool; ``name`` and ``description`` default to the function's
        name and docstring; ``parameters`` to an object schema with no properties;
        ``timeout_s`` in seconds; ``isolated``: a worker process, killed at the timeout."""
        tool = Tool(name or function.__name__,
                    description or inspect.getdoc(function) or "",
                    parameters or {"type": "object", "properties": {}}, function, timeout_s,
                    blocking, isolated)
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def select(self, names: tuple[str, ...]) -> tuple[Tool, ...]:
        """The tools a ``start`` names, in its order.

        Raises:
            InvalidMessage: a name is not registered.
        """
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            raise InvalidMessage(f"start: unknown tools {unknown}; this server has "
                                 f"{self.names()}")
        return tuple(self._tools[n] for n in names)

    @staticmethod
    async def call(tool: Tool | None, call_id: str, name: str,
                   arguments: dict[str, Any]) -> ToolResult:
        """Run one call; failures become an error result for the model, never an exception
        (cancellation of the stream still propagates).

        The result is shown to the model and to the clients (``tool_call`` ``result``), so
        only these failures are told in words: an unknown tool, arguments that do not fit the
        function's signature, a timeout, and a ``ValueError`` (how a tool rejects its
        arguments: its message must name nothing internal). Any other exception is a bug or
        an outage of the tool: the result says ``the tool failed`` with an ``error_id``, and
        the exception is logged under it (:meth:`streamer.errors.StreamerError.report`).
        """
        if tool is None:
            return ToolResult(call_id, name, f"error: no tool named {name!r}", True)
        misfit = _misfit(tool.function, arguments)
        if misfit:
            return ToolResult(call_id, name, f"error: invalid arguments: {misfit}", True)
        try:
            with trio.fail_after(tool.timeout_s):
                if inspect.iscoroutinefunction(tool.function):
                    value = await tool.function(**arguments)
                elif tool.isolated:
                    value = await trio_parallel.run_sync(
                        worker_call, functools.partial(tool.function, **arguments),
                        kill_on_cancel=True)
                elif not tool.blocking:
                    value = tool.function(**arguments)
                else:
                    value = await trio.to_thread.run_sync(
                        lambda: tool.function(**arguments), abandon_on_cancel=True)
        except trio.TooSlowError:
            return ToolResult(call_id, name, f"error: timed out after {tool.timeout_s:g} s",
                              True)
        except ValueError as exc:  # the tool rejects its arguments, in its own words
            return ToolResult(call_id, name, f"error: {exc}", True)
        except Exception as exc:  # the tool's own failure: the model is told, the stream lives
            failed = StreamerError(f"tool {name!r} failed: {exc!r}")
            failed.__cause__ = exc
            failed.report()
            return ToolResult(call_id, name, f"error: the tool failed ({failed.error_id})",
                              True)
        content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                  default=str)
        return ToolResult(call_id, name, content)


def _misfit(function: ToolFunction, arguments: dict[str, Any]) -> str | None:
    """Why ``arguments`` do not fit ``function``'s signature (``inspect.Signature.bind``'s
    words: parameter names only), or ``None``."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # no signature to check (some builtins)
        return None
    try:
        signature.bind(**arguments)
    except TypeError as exc:
        return str(exc)
    return None


# -- the demo's example tools -----------------------------------------------------------

_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos,
}


#: ``calculate`` refuses integer results longer than this many digits (before computing them)
MAX_RESULT_DIGITS = 1_000
_LOG10_2 = math.log10(2)


def _digits(value: int) -> float:
    """An upper estimate of ``value``'s decimal digits, without converting it."""
    return abs(value).bit_length() * _LOG10_2 + 1


def _bounded(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse an operation whose integer result would exceed :data:`MAX_RESULT_DIGITS`
    digits, from its operands' sizes (so ``(9**99)**99**99`` costs nothing to refuse)."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return  # floats overflow on their own (OverflowError), in constant time
    if isinstance(op, ast.Pow) and right > 0 and abs(left) > 1:
        estimate = right * math.log10(abs(left))
    elif isinstance(op, ast.Mult):
        estimate = _digits(left) + _digits(right)
    else:
        return
    if estimate > MAX_RESULT_DIGITS:
        raise ValueError(f"the result would have more than {MAX_RESULT_DIGITS} digits")


def calculate(expression: str) -> float | int:
    """Evaluate an arithmetic expression (+ - * / // % ** and parentheses), bounded: every
    step's cost is known before it runs.

    Raises:
        ValueError: not such an expression, longer than 200 characters, an integer result
            of more than :data:`MAX_RESULT_DIGITS` digits (refused before it is computed), a
            division by zero or a float overflow (its message is told to the model).
    """
    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left), value(node.right)
            _bounded(node.op, left, right)
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.operand))
        raise ValueError("only numbers and + - * / // % ** ( ) are allowed")

    if len(expression) > 200:
        raise ValueError("expression longer than 200 characters")
    try:
        return value(ast.parse(expression, mode="eval"))  # type: ignore[no-any-return]
    except SyntaxError as exc:
        raise ValueError("not an arithmetic expression") from exc
    except ZeroDivisionError as exc:
        raise ValueError("division by zero") from exc
    except OverflowError as exc:
        raise ValueError("the result is too large") from exc
    except RecursionError as exc:  # a 200-character expression nests at most ~100 deep
        raise ValueError("the expression nests too deeply") from exc


def current_time() -> str:
    """The current date and time in UTC (ISO 8601)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


BUILTIN_TOOLS = [
    Tool("calculate", "Evaluate an arithmetic expression exactly, e.g. '(17 + 4) * 3'.",
         {"type": "object", "properties": {"expression": {"type": "string"}},
          "required": ["expression"]}, calculate, 2.0, blocking=False),
    Tool("current_time", "The current date and time in UTC.",
         {"type": "object", "properties": {}}, current_time, 2.0, blocking=False),
]

__all__ = ["BUILTIN_TOOLS", "Tool", "ToolResult", "Tools", "calculate", "current_time"]
