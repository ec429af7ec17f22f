// Builds src/index.js into dist/function.wasm, a wasi:http component, with componentize-js:
//   npm run build          (or: node build.mjs [SOURCE.js] [OUT.wasm] [--wasi-only])
// The world it is built against exports wasi:http/incoming-handler and imports Spin's
// key-value and variables interfaces (wit/spin, the version Vireo serves); with --wasi-only it
// imports WASI alone, for wasi:http hosts without Spin's interfaces (wasmtime serve). The WASI
// packages come from the jco package componentize-js depends on, assembled into a temporary
// directory.
import { componentize } from '@bytecodealliance/componentize-js';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

// The WASI 0.2 packages jco ships, and the wasi:http version componentize-js's engine
// (StarlingMonkey) exports its handler as: the world must name that version exactly.
const WASI = new URL('node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12/', import.meta.url);
const SHIPPED = '0.2.12';
const ENGINE_HTTP = '0.2.10';
const PACKAGES = ['cli', 'clocks', 'filesystem', 'http', 'io', 'random', 'sockets'];
const args = process.argv.slice(2);
const wasiOnly = args.includes('--wasi-only');
const [source = 'src/index.js', out = 'dist/function.wasm'] = args.filter((arg) => !arg.startsWith('--'));
const SPIN_IMPORTS = wasiOnly
  ? ''
  : `  import fermyon:spin/key-value@2.0.0;
  import fermyon:spin/variables@2.0.0;
`;
const WORLD = `package vireo:function;

world http-function {
${SPIN_IMPORTS}  import wasi:cli/environment@${SHIPPED};
  export wasi:http/incoming-handler@${ENGINE_HTTP};
}
`;

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
  await cp(new URL('wit/spin/', import.meta.url), join(wit, 'deps', 'spin'), { recursive: true });
  await writeFile(join(wit, 'world.wit'), WORLD);
  const { component } = await componentize({ sourcePath: source, witPath: wit, worldName: 'http-function' });
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, component);
  console.log(`built ${out} (${(component.byteLength / 1048576).toFixed(1)} MiB)`);
} finally {
  await rm(wit, { recursive: true, force: true });
}
