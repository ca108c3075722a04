// Reads streamer's POST /api/chat with the real `ai` package: its SSE parser and chunk schema
// (parseJsonEventStream + uiMessageChunkSchema) and its message assembler (readUIMessageStream).
// Usage: node read_stream.mjs URL JSON_BODY  → prints {headers, message} as JSON.
import { readUIMessageStream, uiMessageChunkSchema } from 'ai';
import { parseJsonEventStream } from '@ai-sdk/provider-utils';

const [url, body] = process.argv.slice(2);
const response = await fetch(url, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body,
});
const chunks = parseJsonEventStream({ stream: response.body, schema: uiMessageChunkSchema })
  .pipeThrough(new TransformStream({
    transform(part, controller) {
      if (!part.success) throw part.error;
      controller.enqueue(part.value);
    },
  }));
let message = null;
const errors = [];
for await (const m of readUIMessageStream({ stream: chunks, onError: (e) => errors.push(String(e)) })) {
  message = m;
}
console.log(JSON.stringify({
  header: response.headers.get('x-vercel-ai-ui-message-stream'), message, errors,
}));
