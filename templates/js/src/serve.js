// Serves a Workers-style handler (`{ async fetch(request) }`) as the component's
// wasi:http/incoming-handler export: each request becomes a `Request` for the handler, and the
// `Response` it returns goes back. Exported this way rather than through the `fetch` event, one
// instance can answer many requests, so Vireo can reuse it (`instance_reuse`).
import {
  Fields,
  IncomingBody,
  OutgoingBody,
  OutgoingResponse,
  ResponseOutparam,
} from 'wasi:http/types@0.2.10';

// wasi:io's blocking-write-and-flush takes at most 4096 bytes a call.
const WRITE_CHUNK = 4096;
const READ_CHUNK = 65536n;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function serve(handler) {
  return {
    async handle(incoming, responseOut) {
      let response;
      try {
        response = await handler.fetch(toRequest(incoming));
      } catch (error) {
        // The message, then where it was thrown: the engine's stack has no message.
        console.error(`the handler failed: ${error}\n${error?.stack ?? ''}`);
        response = new Response('internal error\n', { status: 500 });
      }
      await send(response, responseOut);
    },
  };
}

// The request as a web `Request`, its body read whole.
function toRequest(incoming) {
  const method = incoming.method();
  const name = method.tag === 'other' ? method.val : method.tag.toUpperCase();
  const scheme = incoming.scheme()?.tag === 'HTTPS' ? 'https' : 'http';
  const url = `${scheme}://${incoming.authority() ?? 'localhost'}${incoming.pathWithQuery() ?? '/'}`;
  const headers = new Headers();
  for (const [header, value] of incoming.headers().entries()) {
    headers.append(header, decoder.decode(value));
  }
  const body = readBody(incoming);
  const bodyless = name === 'GET' || name === 'HEAD';
  return new Request(url, { method: name, headers, body: bodyless ? undefined : body });
}

function readBody(incoming) {
  const body = incoming.consume();
  const stream = body.stream();
  const chunks = [];
  let size = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(READ_CHUNK);
    } catch (error) {
      if (error?.payload?.tag === 'closed') break;
      throw error;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  stream[Symbol.dispose]();
  IncomingBody.finish(body);
  const whole = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.length;
  }
  return whole;
}

async function send(response, responseOut) {
  const fields = new Fields();
  for (const [header, value] of response.headers) {
    try {
      fields.append(header, encoder.encode(value));
    } catch {
      // A header wasi:http forbids a guest to set (hop-by-hop ones): the host sets its own.
    }
  }
  const outgoing = new OutgoingResponse(fields);
  outgoing.setStatusCode(response.status);
  const body = outgoing.body();
  ResponseOutparam.set(responseOut, { tag: 'ok', val: outgoing });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const stream = body.write();
  for (let at = 0; at < bytes.length; at += WRITE_CHUNK) {
    stream.blockingWriteAndFlush(bytes.subarray(at, at + WRITE_CHUNK));
  }
  stream[Symbol.dispose]();
  OutgoingBody.finish(body, undefined);
}
