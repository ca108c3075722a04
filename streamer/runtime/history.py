"""The history budget: what of a conversation one request sends upstream.

A request is ``system``, the tools' schemas (for providers that send them), the earlier turns
(the session's history, or the earlier messages of a ``start`` that gives a whole
conversation) and the new prompt (the ``start``'s last message). They are counted together
against two limits:

- ``streams.max_prompt_chars``: characters of everything sent;
- the provider's input budget (:meth:`Provider.input_budget
  <streamer.providers.base.Provider.input_budget>`), in its unit and by its count
  (:meth:`~streamer.providers.base.Provider.measure`): the ``local`` model's tokenizer and
  ``n_ctx`` less ``max_tokens``; for ``openai``/``anthropic`` an estimate (UTF-8 bytes / 4)
  against ``providers.<name>.max_input_tokens``; characters for ``echo``. Each message adds
  the provider's ``message_overhead``, the request its ``request_overhead``.

Earlier turns are left out whole, oldest first, until both fit
(:func:`streamer.conversation.turns_to_drop`); the prompt and ``system`` never are. If they
alone do not fit, the request is refused with
:class:`~streamer.errors.PayloadTooLarge`, which names the budget (the stream ends with that
error; the session goes on). Rounds of tool use added during an answer are not counted here:
an overflow they cause is the provider's ``provider_error``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from streamer.conversation import Message, chars_of, split_turns, turns_to_drop
from streamer.errors import PayloadTooLarge
from streamer.providers import Provider, ProviderRequest

#: how an error message names a budget's unit
UNIT_WORDS = {"tokens": "tokens", "chars": "characters"}


@dataclass(frozen=True, slots=True)
class Fitted:
    """What a request sends of its conversation.

    Attributes:
        messages: the earlier turns kept, then the new prompt.
        dropped: earlier turns left out (oldest first).
        size: the request's size in ``unit`` (``None``: the provider has no budget, nothing
            was counted).
        budget: the provider's input budget in ``unit``, or ``None``.
        unit: ``tokens`` or ``chars``.
        estimated: ``size`` is an estimate, not the model's own count.
    """

    messages: tuple[Message, ...]
    dropped: int
    size: int | None
    budget: int | None
    unit: str
    estimated: bool


def tool_schemas(request: ProviderRequest) -> list[str]:
    """The tools' schemas as the model is sent them (name, description, parameters)."""
    return [json.dumps({"name": t.name, "description": t.description,
                        "parameters": t.parameters}) for t in request.tools]


def _what(request: ProviderRequest, tools: bool, verb: str) -> str:
    """``the prompt needs``, ``the prompt and system need``, ``the prompt, system and the
    tools need``."""
    parts = ["the prompt", *(["system"] if request.system else []),
             *(["the tools"] if tools else [])]
    if len(parts) == 1:
        return f"the prompt {verb}s"
    return f"{', '.join(parts[:-1])} and {parts[-1]} {verb}"


async def fit_request(provider: Provider, request: ProviderRequest, max_chars: int) -> Fitted:
    """Fit ``request`` (its messages: the earlier ones, then the new prompt) to the limits.

    Returns:
        What to send (:class:`Fitted`).

    Raises:
        PayloadTooLarge: the prompt, ``system`` and tools alone pass ``max_chars`` or the
            provider's budget.
        ProviderUnavailable: the provider cannot count (the local model cannot be loaded).
    """
    *earlier, prompt = request.messages
    tools = tool_schemas(request) if provider.sends_tools else []
    fixed_texts = [*([request.system] if request.system else []), *tools, prompt.content]
    turns = split_turns(earlier)
    dropped = turns_to_drop(sum(map(len, fixed_texts)), [chars_of(t) for t in turns], max_chars)
    if dropped is None:
        raise PayloadTooLarge(f"start: {_what(request, bool(tools), 'take')} "
                              f"{sum(map(len, fixed_texts)):,} characters; a request may "
                              f"send at most {max_chars:,}")
    budget, unit = provider.input_budget(request), provider.input_unit
    size = None
    if budget is not None:
        sizes = await provider.measure([*fixed_texts, *(m.content for m in earlier)])
        per = provider.message_overhead
        fixed = sum(sizes[:len(fixed_texts)]) + per * len(fixed_texts) + provider.request_overhead
        rest = iter(sizes[len(fixed_texts):])
        turn_sizes = [sum(next(rest) + per for _ in turn) for turn in turns]
        by_budget = turns_to_drop(fixed, turn_sizes, budget)
        if by_budget is None:
            about, word = "" if provider.exact_count else "about ", UNIT_WORDS[unit]
            raise PayloadTooLarge(f"start: {_what(request, bool(tools), 'need')} {about}"
                                  f"{fixed:,} {word}; the model's input budget is "
                                  f"{max(budget, 0):,} {word}")
        dropped = max(dropped, by_budget)
        size = fixed + sum(turn_sizes[dropped:])
    kept = tuple(m for turn in turns[dropped:] for m in turn)
    return Fitted((*kept, prompt), dropped, size, budget, unit, not provider.exact_count)

