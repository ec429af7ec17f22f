// An HTTP function for Vireo: it greets whoever the request body names, with a greeting from a
// variable, counts its visits in the `default` key-value store and says which stage its
// environment variable names.
import { Store } from 'fermyon:spin/key-value@2.0.0';
import { get as variable } from 'fermyon:spin/variables@2.0.0';
import { getEnvironment } from 'wasi:cli/environment@0.2.12';

import { serve } from './serve.js';

const handler = {
  async fetch(request) {
    const who = (await request.text()).trim() || 'world';
    // `variables` in vireo.toml's [settings]; `vireo deploy --var greeting=...` changes it.
    const greeting = variable('greeting');
    // `env` in [settings]: plain environment variables, read at request time.
    const stage = new Map(getEnvironment()).get('STAGE') ?? 'unset';
    const visits = countVisit();
    return new Response(`${greeting}, ${who}!\nvisits: ${visits}\nstage: ${stage}\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  },
};

// Adds one to the `visits` key of the `default` store (granted by `key_value_stores`) and
// returns the new count. Two requests at the same moment may both read the same count: fine for
// a greeting, not for money.
function countVisit() {
  const store = Store.open('default');
  const stored = store.get('visits');
  const visits = stored ? Number(new TextDecoder().decode(stored)) + 1 : 1;
  store.set('visits', new TextEncoder().encode(String(visits)));
  return visits;
}

// The component's wasi:http handler: serve() (src/serve.js) hands each request to the handler
// above. An instance serves many requests, so what the module keeps outside `fetch` lasts
// between them, as in a Worker.
export const incomingHandler = serve(handler);
