// Answers every request with a greeting, its path and the body it was sent.
addEventListener('fetch', (event) => event.respondWith(answer(event.request)));

async function answer(request) {
  const path = new URL(request.url).pathname;
  const body = await request.text();
  return new Response(`hello from js ${path} ${body}`);
}
