"""``streamer stream``'s command line: its arguments, the prompt, and the exit codes.

Light on purpose (argparse only): ``streamer serve`` builds this parser too, and must not
import ``rich`` or ``trio_websocket`` for it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

__all__ = ["EXIT_DONE", "EXIT_ERROR", "EXIT_LOST", "EXIT_STOPPED", "EXIT_USAGE", "TOKEN_ENV",
           "UsageError", "add_arguments", "read_prompt"]

#: the answer ended: ``finish_reason`` ``stop`` or ``length`` (the limit; said on stderr)
EXIT_DONE = 0
#: the server said no or the answer failed: an ``error`` event, a refused request,
#: ``finish_reason: "error"`` (the error's code is printed on stderr)
EXIT_ERROR = 1
#: bad usage: an unknown option, a missing or empty prompt (argparse's own code)
EXIT_USAGE = 2
#: the server could not be reached, or the connection was lost and every reconnect failed
EXIT_LOST = 3
#: the answer was stopped: Ctrl-C here (``stop`` was sent), or ``stop`` from another client
#: (``finish_reason: "cancelled"``); 128 + SIGINT, as shells report an interrupted command
EXIT_STOPPED = 130

#: the environment variable read when ``--token`` is not given
TOKEN_ENV = "STREAMER_TOKEN"

EPILOG = f"""\
The answer is drawn as it streams (tables, lists, highlighted code; math as its LaTeX
source) with a progress line; into a pipe or file, each part is printed once it is final.
A dropped connection is resumed where it broke (the events after the last one applied).
Ctrl-C sends 'stop' and exits once the server confirms (a second Ctrl-C exits at once).

exit status:
  {EXIT_DONE}    done (finish_reason stop or length)
  {EXIT_ERROR}    error: the server's error event, a refusal, or finish_reason error
  {EXIT_USAGE}    bad usage (unknown option, no prompt)
  {EXIT_LOST}    connection lost for good: the server unreachable, every reconnect failed
  {EXIT_STOPPED}  stopped (Ctrl-C, or stop from another client)
"""


class UsageError(Exception):
    """The command line cannot be carried out (exit :data:`EXIT_USAGE`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``streamer stream``'s options, on its sub-parser."""
    parser.description = "Stream one answer to the terminal."
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("prompt", nargs="?", default="-",
                        help="the question; omitted or '-': read from stdin")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    parser.add_argument("--provider", help="local, echo, openai, anthropic "
                        "(default: the server's)")
    parser.add_argument("--model")
    parser.add_argument("--system", help="the system prompt")
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--pacing", choices=("off", "fixed", "smooth"), default="off",
                        help="delivery pacing (default: off, as fast as it comes)")
    parser.add_argument("--cps", type=float, help="characters per second when paced")
    parser.add_argument("--session", metavar="ID",
                        help="continue this session's conversation: an id of your own (made "
                        "if new) or one the server made (sess_…); default: a new session")
    parser.add_argument("--json", action="store_true",
                        help="print each server event as one JSON line (for scripts)")
    parser.add_argument("--token", help=f"API key or JWT (default: ${TOKEN_ENV}); sent as the "
                        "WebSocket subprotocol 'bearer.<token>', on HTTP as "
                        "'Authorization: Bearer'")
    parser.add_argument("--retries", type=int, default=8, metavar="N",
                        help="reconnect attempts in a row before giving up (default: 8)")
    parser.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                        help="seconds to open a connection (default: 10)")


def read_prompt(prompt: str, stdin: TextIO = sys.stdin) -> str:
    """The prompt: the argument, or stdin's whole text for ``-``.

    Raises:
        UsageError: the prompt is empty (or only whitespace).
    """
    if prompt == "-":
        if stdin.isatty():
            print("streamer: reading the prompt from stdin (end it with Ctrl-D)",
                  file=sys.stderr)
        prompt = stdin.read().rstrip("\n")
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    return prompt
