// hello.js exported through the JavaScript template's serve() instead of the `fetch` event, so
// that an instance answers many requests; `x-instance-requests` says how many this one has, and
// `/throw` makes the handler throw.
import { serve } from './serve.js';

let served = 0;

const handler = {
  async fetch(request) {
    served += 1;
    const path = new URL(request.url).pathname;
    if (path === '/throw') throw new Error('asked to throw');
    const body = await request.text();
    return new Response(`hello from js ${path} ${body}`, {
      headers: { 'x-instance-requests': String(served) },
    });
  },
};

export const incomingHandler = serve(handler);
