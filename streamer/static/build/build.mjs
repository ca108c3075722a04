// Builds ../vendor/tiptap.js: one minified ES module with Tiptap core, StarterKit, the table
// extensions, task lists (TaskList/TaskItem), math (Mathematics/InlineMath/BlockMath, KaTeX),
// code highlighting (CodeBlockLowlight with lowlight's common languages) and Image, plus
// ../vendor/THIRD_PARTY_LICENSES.txt listing every npm package that
// ended up in the bundle (found from esbuild's metafile) with its license text.
//
//   cd streamer/static/build && npm ci && node build.mjs
//
// The output is committed, so installing the Python package never needs Node.js.

import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const vendorDir = resolve(here, '..', 'vendor');
const outFile = join(vendorDir, 'tiptap.js');
const licenseFile = join(vendorDir, 'THIRD_PARTY_LICENSES.txt');

// What the browser modules import. `pm*` namespaces give raw ProseMirror access
// (editor-stream.js parses block HTML with prosemirror-model's DOMParser).
const entry = `
export * from '@tiptap/core';
export { StarterKit } from '@tiptap/starter-kit';
export { Table, TableRow, TableCell, TableHeader, TableKit } from '@tiptap/extension-table';
export { TaskList, TaskItem } from '@tiptap/extension-list';
export { Mathematics, InlineMath, BlockMath } from '@tiptap/extension-mathematics';
export { CodeBlockLowlight } from '@tiptap/extension-code-block-lowlight';
export { Image } from '@tiptap/extension-image';
export { createLowlight, common as lowlightCommon } from 'lowlight';
export * as pmModel from '@tiptap/pm/model';
export * as pmState from '@tiptap/pm/state';
export * as pmView from '@tiptap/pm/view';
export * as pmHistory from '@tiptap/pm/history';
export * as pmTransform from '@tiptap/pm/transform';
`;

mkdirSync(vendorDir, { recursive: true });

const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const pinned = Object.entries(pkg.devDependencies)
  .filter(([name]) => name !== 'esbuild')
  .map(([name, version]) => `${name}@${version}`)
  .join(', ');

const result = await build({
  stdin: { contents: entry, resolveDir: here, sourcefile: 'tiptap-entry.js', loader: 'js' },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  legalComments: 'none', // collected into THIRD_PARTY_LICENSES.txt instead
  metafile: true,
  outfile: outFile,
  banner: {
    js: `/* streamer vendor bundle: ${pinned}. Built by streamer/static/build/build.mjs; ` +
      'licenses in THIRD_PARTY_LICENSES.txt */',
  },
  logLevel: 'warning',
});

// -- third-party notices --------------------------------------------------------------------

/** Package root directory (the one holding package.json) of a bundled input path. */
function packageRoot(inputPath) {
  const parts = inputPath.split('/');
  const i = parts.lastIndexOf('node_modules');
  if (i < 0) return null;
  const depth = parts[i + 1].startsWith('@') ? 3 : 2;
  return resolve(here, parts.slice(0, i + depth).join('/'));
}

const roots = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const root = packageRoot(input);
  if (root) roots.add(root);
}

const sections = [];
for (const root of [...roots].sort()) {
  const meta = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const licenseName = readdirSync(root).find((f) => /^(license|licence|copying)/i.test(f));
  const text = licenseName
    ? readFileSync(join(root, licenseName), 'utf8').trim()
    : `(no license file shipped; package.json says: ${meta.license})`;
  sections.push(
    `${meta.name}@${meta.version} (${meta.license})\n` +
      `${meta.repository?.url ?? meta.homepage ?? ''}\n\n${text}\n`,
  );
}

const header =
  'Third-party software bundled in tiptap.js\n' +
  '=========================================\n\n' +
  `Built from: ${pinned} with esbuild@${pkg.devDependencies.esbuild}\n` +
  `${sections.length} packages follow, each with its license text.\n\n`;
writeFileSync(licenseFile, header + sections.join('\n' + '-'.repeat(78) + '\n\n'));

const bytes = readFileSync(outFile).length;
console.log(`wrote ${outFile} (${(bytes / 1024).toFixed(1)} KiB), ${sections.length} packages`);
if (!existsSync(licenseFile)) throw new Error('license file missing');
