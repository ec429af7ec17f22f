// hello.js exported through the JavaScript template's serve() instead of the `fetch` event, so
// that an instance answers many requests; `x-instance-requests` says how many this one has,
// `/throw` makes the handler throw and `/teapot` answers 418 with a header the host refuses.
import { serve } from './serve.js';

let served = 0;

const handler = {
  async fetch(request) {
    served += 1;
    const path = new URL(request.url).pathname;
    if (path === '/throw') throw new Error('asked to throw');
    if (path === '/teapot') {
      // A status of its own, and a hop-by-hop header wasi:http refuses beside one it takes.
      return new Response('short and stout', {
        status: 418,
        headers: { 'x-kept': 'yes', connection: 'close' },
      });
    }
    const body = await request.text();
    return new Response(`hello from js ${path} ${body}`, {
      headers: { 'x-instance-requests': String(served) },
    });
  },
};

export const incomingHandler = serve(handler);
