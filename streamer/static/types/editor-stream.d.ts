export type EditorStreamOptions = import("./src/editor-stream.js").EditorStreamOptions;
export type RangeHooks = import("./src/editor-stream.js").RangeHooks;
export type FrameInfo = import("./src/editor-stream.js").FrameInfo;
export { EditorStream, STREAM_META, atRange, bindClientToEditor, parseBlock } from "./src/editor-stream.js";
