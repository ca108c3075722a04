// Drives streamer's POST /api/chat with the AI SDK's own chat: `AbstractChat` (what React's
// `useChat` wraps, with a plain state object instead of React's) and `DefaultChatTransport`,
// both from the real `ai` package. tests/e2e/test_aisdk.py runs it.
//
// Usage: node chat_session.mjs SCENARIO API_URL OPTIONS_JSON
//   send    sendMessage({text}) and wait for the answer
//   stop    sendMessage, and once the answer has `afterChars` characters of text print
//           {"event": "stopping"} (the test notes the time) and call stop()
//   resume  a fresh chat holding `messages` (what a reloaded page has) calls resumeStream():
//           GET API_URL/{id}/stream
// Options: {id, text, body (extra request body fields), afterChars, messages}.
// Prints one JSON line per event; the last is {"event": "done", status, error, messages}.
import { AbstractChat, DefaultChatTransport } from 'ai';

const [scenario, api, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson);
const print = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

/** The chat's state as `useChat`'s React state keeps it: messages replaced, never mutated. */
class PlainState {
  constructor(messages, onChange) {
    this.status = 'ready';
    this.error = undefined;
    this.messages = messages;
    this.onChange = onChange;
  }
  pushMessage(message) { this.messages = [...this.messages, message]; this.onChange(); }
  popMessage() { this.messages = this.messages.slice(0, -1); this.onChange(); }
  replaceMessage(index, message) {
    this.messages = this.messages.map((m, i) => (i === index ? message : m));
    this.onChange();
  }
  snapshot(thing) { return structuredClone(thing); }
}

class NodeChat extends AbstractChat {
  constructor({ messages = [], onChange = () => {}, ...init }) {
    super({ ...init, state: new PlainState(messages, () => onChange(this)) });
  }
}

const textOf = (message) => message.parts.filter((p) => p.type === 'text')
  .map((p) => p.text).join('');

let stopping = null;
const chat = new NodeChat({
  id: options.id,
  messages: options.messages ?? [],
  transport: new DefaultChatTransport({ api, body: options.body ?? {} }),
  onChange(self) {
    const last = self.messages.at(-1);
    if (scenario !== 'stop' || stopping || !last || last.role !== 'assistant') return;
    if (textOf(last).length >= (options.afterChars ?? 1)) {
      print({ event: 'stopping', chars: textOf(last).length });
      stopping = self.stop();
    }
  },
  onError(error) { print({ event: 'error', message: String(error) }); },
});

if (scenario === 'resume') {
  await chat.resumeStream();
} else {
  await chat.sendMessage({ text: options.text });
}
if (stopping) await stopping;
print({ event: 'done', status: chat.status, error: chat.error ? String(chat.error) : null,
        messages: chat.messages });
