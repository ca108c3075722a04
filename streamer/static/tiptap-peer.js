// What `#tiptap` resolves to for a bundler (package.json "imports"): the application's own
// @tiptap/core and ProseMirror, so the streamer modules and the editor share one copy.
// The demo page maps `#tiptap` to the vendored bundle (./vendor/tiptap.js) with an import map;
// both expose the same names.
export * from '@tiptap/core';
export * as pmModel from '@tiptap/pm/model';
export * as pmState from '@tiptap/pm/state';
export * as pmView from '@tiptap/pm/view';
export * as pmHistory from '@tiptap/pm/history';
export * as pmTransform from '@tiptap/pm/transform';
