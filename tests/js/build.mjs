// Builds a JavaScript guest into a wasi:http component with componentize-js:
//   node build.mjs SOURCE.js OUT.wasm
// The guest handles requests with a `fetch` event listener; the world it is built against
// exports wasi:http/incoming-handler. Its WIT comes from the jco package componentize-js
// depends on (pinned by package-lock.json), assembled into a temporary directory.
import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The WASI 0.2 packages jco ships, and the wasi:http version componentize-js's engine
// (StarlingMonkey) exports its handler as: the world must name that version exactly.
const WASI = new URL('node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12/', import.meta.url);
const SHIPPED = '0.2.12';
const ENGINE_HTTP = '0.2.10';
const PACKAGES = ['cli', 'clocks', 'filesystem', 'http', 'io', 'random', 'sockets'];

const [source, out] = process.argv.slice(2);
if (!source || !out) {
  console.error('usage: node build.mjs SOURCE.js OUT.wasm');
  process.exit(2);
}

const wit = await mkdtemp(join(tmpdir(), 'vireo-js-wit-'));
try {
  for (const name of PACKAGES) {
    let text = await readFile(new URL(`wasi-${name}/package.wit`, WASI), 'utf8');
    if (name === 'http') {
      text = text.replaceAll(`wasi:http@${SHIPPED}`, `wasi:http@${ENGINE_HTTP}`).replace(
        new RegExp(`(wasi:http/[a-z-]+)@${SHIPPED.replaceAll('.', '\\.')}`, 'g'),
        `$1@${ENGINE_HTTP}`,
      );
    }
    await mkdir(join(wit, 'deps', name), { recursive: true });
    await writeFile(join(wit, 'deps', name, 'package.wit'), text);
  }
  await writeFile(
    join(wit, 'world.wit'),
    `package vireo:js-guest;\n\nworld http-function {\n  export wasi:http/incoming-handler@${ENGINE_HTTP};\n}\n`,
  );
  const { component } = await componentize({ sourcePath: source, witPath: wit, worldName: 'http-function' });
  await writeFile(out, component);
} finally {
  await rm(wit, { recursive: true, force: true });
}
