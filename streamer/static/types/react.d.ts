export type StreamSnapshot = import("./src/react.js").StreamSnapshot;
export type StreamStore = import("./src/react.js").StreamStore;
export type StreamStoreOptions = import("./src/react.js").StreamStoreOptions;
export { createStreamStore, createUseStream } from "./src/react.js";
