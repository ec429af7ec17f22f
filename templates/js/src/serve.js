// Serves a Workers-style handler (`{ async fetch(request) }`) as the component's
// wasi:http/incoming-handler export: each request becomes a `Request` for the handler, and the
// `Response` it returns goes back. Exported this way rather than through the `fetch` event, one
// instance can answer many requests, so Vireo can reuse it (`instance_reuse`).
// Each call into the host costs microseconds of binding code in the engine, more than the rest of
// a small handler: the conversions below make as few as they can.
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
  const headers = incoming
    .headers()
    .entries()
    .map(([header, value]) => [header, decoder.decode(value)]);
  // A GET or HEAD request has no body to read: the Request would refuse one.
  const bodyless = name === 'GET' || name === 'HEAD';
  return new Request(url, { method: name, headers, body: bodyless ? undefined : readBody(incoming) });
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
  const outgoing = new OutgoingResponse(toFields(response.headers));
  // A new response's status is 200: set only another.
  if (response.status !== 200) outgoing.setStatusCode(response.status);
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

// The response's headers as wasi:http fields, in one call to the host when it takes them all.
function toFields(headers) {
  const list = [];
  for (const [header, value] of headers) list.push([header, encoder.encode(value)]);
  try {
    return Fields.fromList(list);
  } catch {
    // One is a header wasi:http forbids a guest to set (a hop-by-hop one, which the host sets
    // itself): the others one by one.
    const fields = new Fields();
    for (const [header, value] of list) {
      try {
        fields.append(header, value);
      } catch {
        // That forbidden one.
      }
    }
    return fields;
  }
}
