export * from "@tiptap/core";
export * as pmModel from "@tiptap/pm/model";
export * as pmState from "@tiptap/pm/state";
export * as pmView from "@tiptap/pm/view";
export * as pmHistory from "@tiptap/pm/history";
export * as pmTransform from "@tiptap/pm/transform";
