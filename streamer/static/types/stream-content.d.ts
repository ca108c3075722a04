export type StreamPlacement = import("./src/stream-session.js").StreamPlacement;
export type StartStreamOptions = import("./src/stream-session.js").StartStreamOptions;
export type StreamContentOptions = import("./src/stream-session.js").StreamContentOptions;
export type StreamContentStorage = import("./src/stream-content.js").StreamContentStorage;
export type StreamChunkEvent = import("./src/commands.js").StreamChunkEvent;
export type StreamCompleteEvent = import("./src/commands.js").StreamCompleteEvent;
export type StreamContentCommands = import("./src/commands.js").StreamContentCommands;
export { FORCE_META, StreamContent, followClient } from "./src/stream-content.js";
export { StreamSession, streamContentKey } from "./src/stream-session.js";
