// The demo page's sample documents (demo.js offers them in its sample list).

/** Rich documents for the echo provider (it answers with the prompt, so the prompt IS the answer). */
export const SAMPLES = {
  'Release notes (headings, lists, links, quote)': `# Release notes

Version **2.4** brings *faster* streaming, a [new protocol page](https://example.com/protocol?v=1&lang=en) and fewer surprises.

## Highlights

- Resume after a dropped connection
  - WebSocket: \`resume\` with the last \`seq\`
  - SSE: the \`Last-Event-ID\` header
- Pacing modes: *off*, *smooth* and *fixed*
- Stop really stops the model

1. Upgrade the server
2. Reload the page
   1. Old tabs reconnect on their own
   2. Nothing is lost

> Streaming should never change the result:
> the last frame equals the one-shot render.

---

Questions? Write to [the team](mailto:team@example.com).
`,
  'Table': `## Providers compared

| Provider | Transport | Latency | Notes |
| --- | :---: | ---: | --- |
| local | WebSocket | 40 ms | embedded, **no network** |
| echo | SSE | 1 ms | repeats the prompt |
| openai | WebSocket | 350 ms | needs \`OPENAI_API_KEY\` |

Rows appear as they arrive; the table's last row is the last to settle.
`,
  'Fenced code': `## Code blocks

A Python server loop:

\`\`\`python
async def serve(nursery: trio.Nursery) -> None:
    async with trio.open_nursery() as inner:
        inner.start_soon(heartbeat, 15.0)
        if 3 < 4 and "a" != 'b':
            print("<ok> & done")
\`\`\`

And the client side:

\`\`\`js
const client = new StreamClient({ transport: 'auto' });
client.on('chunk', (ev, { mirror }) => render(mirror.html));
await client.connect();
\`\`\`

Inline \`code\`, **bold \`code\`** and a last line.
`,
  'Everything': `# Streaming into an editor

A paragraph with **bold**, *italic*, \`inline code\`, ~~strikethrough~~ and a [link](https://example.com/docs?a=1&b=2).
Entities & symbols: 3 < 4 > 2, "quotes" and 'apostrophes'.

## Lists

- First item
- Second item with **emphasis**
  - Nested item one
  - Nested item two
- Third item

1. Step one
2. Step two
3. Step three

## A table

| Provider | Transport | Resume |
| --- | :---: | ---: |
| local | WebSocket | yes |
| openai | SSE | yes |

## Code

\`\`\`python
async def main() -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, "<html>")
\`\`\`

> A blockquote with a second line
> and *emphasis*.

---

Visit https://example.org for more. The end.
`,
};
