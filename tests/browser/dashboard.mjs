// Drives the dashboard of a running vireo server in Debian's headless Chromium, as a person
// would: log in and out, look at functions, invocations, charts and live logs, move an alias,
// split an alias, redrive a dead invocation, browse a bucket and a key-value store, pause an event source, and check what a viewer key may not do. Run by the e2e test
// `dashboard::a_browser_uses_the_dashboard`, which starts the server and prepares its state
// and passes it here through the environment:
//   VIREO_URL      the server's base URL
//   ADMIN_KEY      an admin key
//   VIEWER_KEY     a viewer key for the namespace `default`
//   DEAD_ID        an async invocation of `jobs` waiting in its dead-letter queue
// and the names it fills in: the bucket `media`, the key-value store `default`'s keys and the
// failing event source `orders` (see `dashboard.rs`).
//   SCREENSHOTS    a directory for screenshots of the main pages
// Each check prints a line; the first that fails ends the run with a non-zero status.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = need("VIREO_URL");
const ADMIN_KEY = need("ADMIN_KEY");
const VIEWER_KEY = need("VIEWER_KEY");
const DEAD_ID = need("DEAD_ID");
const SCREENSHOTS = need("SCREENSHOTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// How long a change may take to show (records and log lines are written in batches).
const WITHIN_MS = 20_000;

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through the e2e test`);
  return value;
}

let passed = 0;
async function check(name, body) {
  await body();
  passed += 1;
  console.log(`ok - ${name}`);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/// Polls `probe` until it returns a truthy value; fails with `what` and the last value seen.
async function eventually(what, probe) {
  const deadline = Date.now() + WITHIN_MS;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`not within ${WITHIN_MS} ms: ${what} (last seen: ${JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/// Calls a function from outside the browser.
async function invoke(path, init = {}) {
  const answer = await fetch(BASE + path, init);
  const body = await answer.text();
  return { status: answer.status, body, id: answer.headers.get("x-vireo-invocation-id") };
}

async function api(path) {
  const answer = await fetch(BASE + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert(answer.ok, `GET ${path} answered ${answer.status}`);
  return answer.json();
}

mkdirSync(SCREENSHOTS, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "vireo-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-quic",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    // A zone far from UTC, to see times shown in the viewer's zone.
    locale: "en-US",
    timezoneId: "Asia/Kolkata",
  });
} catch (error) {
  console.error(`Chromium did not start from ${CHROMIUM} (install Debian's chromium package): ${error.message}`);
  process.exit(2);
}

const problems = [];
function watch(page, who) {
  page.on("dialog", (dialog) => problems.push(`${who}: a dialog opened: ${dialog.message()}`));
  page.on("pageerror", (error) => problems.push(`${who}: script error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused to/.test(message.text())) {
      problems.push(`${who}: ${message.text()}`);
    }
  });
}

async function logIn(page, key) {
  await page.goto(BASE + "/ui/login");
  await page.fill("#key", key);
  await Promise.all([page.waitForLoadState("load"), page.click("form.login button")]);
}

async function shot(page, name) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

try {
  const page = context.pages()[0] ?? (await context.newPage());
  watch(page, "admin");

  await check("a wrong key is refused and no session is opened", async () => {
    await page.goto(BASE + "/ui");
    assert(page.url().endsWith("/ui/login"), `without a session /ui went to ${page.url()}`);
    await shot(page, "login");
    const answer = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/ui/login") && r.request().method() === "POST"),
      page.fill("#key", "vireo_000000000000000000_wrong").then(() => page.click("form.login button")),
    ]).then(([response]) => response);
    assert(answer.status() === 401, `a wrong key answered ${answer.status()}`);
    assert((await page.textContent("p.error")).includes("not accepted"), "no refusal shown");
    const cookies = await context.cookies(BASE + "/ui/");
    assert(!cookies.some((c) => c.name === "vireo_session"), "a session cookie was set for a wrong key");
  });

  await check("logging in with a key leaves only an HttpOnly, SameSite=Strict session cookie", async () => {
    await logIn(page, ADMIN_KEY);
    assert(new URL(page.url()).pathname === "/ui", `after login the page is ${page.url()}`);
    assert(!page.url().includes(ADMIN_KEY), "the key is in the URL");
    const session = (await context.cookies(BASE + "/ui/")).find((c) => c.name === "vireo_session");
    assert(session, "no session cookie");
    assert(session.httpOnly && session.sameSite === "Strict", `session cookie: ${JSON.stringify(session)}`);
    assert(session.expires > Date.now() / 1000, "the session cookie does not expire");
    // The secret is all after the id's `_` (it may hold `_` itself: its last piece alone can be
    // short enough to turn up in any random cookie).
    const secret = ADMIN_KEY.slice(ADMIN_KEY.indexOf("_", "vireo_".length) + 1);
    assert(!session.value.includes(secret), "the cookie holds the key's secret");
    const stored = await page.evaluate(() => document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage));
    assert(!stored.includes(ADMIN_KEY), "the key is readable by scripts");
    assert((await page.textContent("main")).includes("default"), "the namespace is not listed");
  });

  await check("the namespace page shows its functions, key-value stores and secret names", async () => {
    await page.click("text=default");
    for (const name of ["hello", "probe", "jobs"]) {
      assert(await page.isVisible(`#functions a:text-is("${name}")`), `${name} is not listed`);
    }
    assert(await page.isVisible('#stores a:text-is("default")'), "the default key-value store is not listed");
    assert(await page.isVisible('#secrets td:text-is("DB_PASSWORD")'), "the secret's name is not listed");
    assert(!(await page.content()).includes("hunter2-value"), "a secret's value reached the page");
    await shot(page, "functions");
  });

  await check("an invocation from outside appears in the invocations table within seconds", async () => {
    await page.goto(BASE + "/ui/ns/default/fn/hello/invocations");
    const called = await invoke("/fn/default/hello/from-outside");
    assert(called.status === 200 && called.id, `hello answered ${called.status}`);
    await eventually(`invocation ${called.id} in the table`, () => page.isVisible(`#invocations a:has-text("${called.id}")`));
    await shot(page, "invocations");
    const stamp = page.locator(`#invocations tr:has-text("${called.id}") time`);
    const utc = await stamp.getAttribute("datetime");
    const local = new Date(utc).toLocaleString("en-US", { timeZone: "Asia/Kolkata" });
    assert((await stamp.textContent()) === local, `${utc} is shown as ${await stamp.textContent()}, not as ${local}`);
    await page.click(`#invocations a:has-text("${called.id}")`);
    await page.waitForSelector("ol.log li");
    assert((await page.textContent("ol.log")).includes("hello called: /from-outside"), "the invocation page lacks its log line");
  });

  await check("the function's chart counts a new invocation within seconds", async () => {
    await page.goto(BASE + "/ui/ns/default/fn/hello");
    await page.waitForSelector("section.charts[data-requests] .uplot canvas");
    const before = Number(await page.getAttribute("section.charts", "data-requests"));
    await invoke("/fn/default/hello/charted");
    await eventually("the chart to count one more request", async () =>
      Number(await page.getAttribute("section.charts", "data-requests")) >= before + 1);
    await shot(page, "function");
  });

  await check("the live log tail shows a new line, and a logged <script> is text", async () => {
    await page.goto(BASE + "/ui/ns/default/fn/probe/logs");
    await eventually("the tail to connect", async () => (await page.textContent("#tail-state")) === "live");
    const marker = `<script>alert(${Date.now()})</script>`;
    const called = await invoke("/fn/default/probe/", { headers: { "ce-id": marker } });
    assert(called.status === 200, `probe answered ${called.status}`);
    await eventually("the line in the tail", async () => (await page.textContent("#log")).includes(marker));
    assert((await page.locator("#log script").count()) === 0, "the logged <script> became an element");
    assert((await page.innerHTML("#log")).includes("&lt;script&gt;"), "the line is not escaped text");
    // Paused, a line is held back; resumed, it shows.
    await page.click("#pause");
    const held = `held-${Date.now()}`;
    await invoke("/fn/default/probe/", { headers: { "ce-id": held } });
    await eventually("the held line to be counted", async () => (await page.textContent("#tail-state")).includes("1 held"));
    assert(!(await page.textContent("#log")).includes(held), "a paused tail showed a new line");
    await page.click("#pause");
    assert((await page.textContent("#log")).includes(held), "resuming did not show the held line");
    await page.fill("#filter", held);
    assert((await page.locator("#log li:visible").count()) === 1, "the filter did not narrow the lines");
    await shot(page, "logs");
    // Rendered by the server too (the invocation page), still text.
    await page.goto(BASE + `/ui/invocations/${called.id}`);
    assert((await page.textContent("ol.log")).includes(marker), "the invocation page lacks the line");
    assert((await page.locator("ol.log script").count()) === 0, "the server rendered the <script>");
  });

  await check("moving an alias from the page changes which version answers", async () => {
    const before = await invoke("/fn/default/hello@prod/");
    assert(before.body.startsWith("Hello"), `prod answered ${before.body} before the move`);
    await page.goto(BASE + "/ui/ns/default/fn/hello");
    await page.selectOption('tr[data-alias="prod"] select', "2");
    await Promise.all([page.waitForLoadState("load"), page.click('tr[data-alias="prod"] button')]);
    assert((await page.textContent('tr[data-alias="prod"] td.version')) === "v2", "the page still shows v1");
    await eventually("prod to answer from v2", async () => (await invoke("/fn/default/hello@prod/")).body.startsWith("Hi"));
  });

  await check("splitting an alias from the page sends its requests to both versions, sticky by a header", async () => {
    await page.goto(BASE + "/ui/ns/default/fn/hello");
    const forged = await page.evaluate(async () =>
      (await fetch("/ui/ns/default/fn/hello/split", { method: "POST", body: new URLSearchParams({ alias: "canary", version: "1", other: "2", other_weight: "50" }) })).status);
    assert(forged === 403, `a CSRF-less split answered ${forged}`);
    await page.selectOption("#split select[name=alias]", "canary");
    await page.selectOption("#split select[name=version]", "1");
    await page.selectOption("#split select[name=other]", "2");
    await page.fill("#split input[name=other_weight]", "50");
    await page.selectOption("#split select[name=sticky]", "header");
    await page.fill("#split input[name=sticky_name]", "x-user");
    await Promise.all([page.waitForLoadState("load"), page.click("#split button")]);
    const shown = await page.textContent('tr[data-alias="canary"] td.version');
    assert(shown === "v1 50% · v2 50%, sticky by header x-user", `the page shows canary as ${shown}`);
    const split = (await api("/v1/namespaces/default/functions/hello")).splits.canary;
    assert(JSON.stringify(split.versions) === JSON.stringify([{ version: 1, weight: 50 }, { version: 2, weight: 50 }]) &&
      split.sticky.header === "x-user", `the API holds canary as ${JSON.stringify(split)}`);
    const version = (body) => (body.startsWith("Hello") ? 1 : body.startsWith("Hi") ? 2 : body);
    const seen = new Set();
    for (let i = 0; i < 200 && seen.size < 2; i += 1) seen.add(version((await invoke("/fn/default/hello@canary/")).body));
    assert(seen.has(1) && seen.has(2), `200 requests to canary reached only ${[...seen]}`);
    const alice = new Set();
    for (let i = 0; i < 10; i += 1) alice.add(version((await invoke("/fn/default/hello@canary/", { headers: { "x-user": "alice" } })).body));
    assert(alice.size === 1, `one x-user reached ${[...alice]}`);
  });

  await check("a schedule is paused and resumed from the function page", async () => {
    await page.goto(BASE + "/ui/ns/default/fn/hello");
    const row = 'tr[data-schedule="yearly"]';
    assert((await page.textContent(`${row} td.state`)) === "active", "the schedule is not active");
    await Promise.all([page.waitForLoadState("load"), page.click(`${row} button`)]);
    assert((await page.textContent(`${row} td.state`)) === "paused", "the page does not show it paused");
    assert((await api("/v1/namespaces/default/schedules/yearly")).paused === true, "the schedule is not paused");
    await Promise.all([page.waitForLoadState("load"), page.click(`${row} button`)]);
    assert((await api("/v1/namespaces/default/schedules/yearly")).paused === false, "the schedule was not resumed");
  });

  await check("redrive from the dead-letter page queues the invocation again", async () => {
    await page.goto(BASE + "/ui/ns/default/fn/jobs/dlq");
    assert(await page.isVisible(`#dead a:has-text("${DEAD_ID}")`), "the dead invocation is not listed");
    await shot(page, "dead-letters");
    await Promise.all([page.waitForLoadState("load"), page.click(`#dead tr:has-text("${DEAD_ID}") button`)]);
    // `stable` now points at a version that answers, so the redriven invocation succeeds.
    await eventually("the redriven invocation to succeed", async () => (await api(`/v1/invocations/${DEAD_ID}`)).status === "succeeded");
    await page.reload();
    assert(!(await page.isVisible(`#dead a:has-text("${DEAD_ID}")`)), "the invocation is still listed as dead");
  });

  await check("a state change without the CSRF token is refused", async () => {
    await page.goto(BASE + "/ui/ns/default/fn/hello");
    const statuses = await page.evaluate(async () => {
      const post = (body) => fetch("/ui/ns/default/fn/hello/aliases/prod", { method: "POST", body: new URLSearchParams(body) });
      return [(await post({ version: "1" })).status, (await post({ version: "1", csrf: "forged" })).status];
    });
    assert(statuses[0] === 403 && statuses[1] === 403, `CSRF-less posts answered ${statuses}`);
    const hello = await api("/v1/namespaces/default/functions/hello");
    assert(hello.aliases.prod === 2, `the refused post moved prod to ${hello.aliases.prod}`);
  });

  await check("the usage and keys pages show their tables, and a key is made there", async () => {
    await page.goto(BASE + "/ui/ns/default/usage");
    assert(await page.isVisible('#usage td:text-is("hello")'), "hello has no usage row");
    await shot(page, "usage");
    await page.goto(BASE + "/ui/keys");
    assert((await page.locator("#keys tbody tr").count()) >= 2, "the keys are not listed");
    await shot(page, "keys");
    // A key made on the page is shown once, in the page, and works against the API.
    await page.selectOption("#new-key select[name=role]", "developer");
    await page.fill("#new-key input[name=namespaces]", "default");
    await page.fill("#new-key input[name=description]", "made in the browser test");
    await Promise.all([page.waitForLoadState("load"), page.click("#new-key button")]);
    assert(new URL(page.url()).search === "", `the new key's page has a query: ${page.url()}`);
    const made = (await page.textContent("#created-key")).trim();
    const answer = await fetch(BASE + "/v1/namespaces/default/functions", { headers: { authorization: `Bearer ${made}` } });
    assert(answer.status === 200, `the key made on the page answered ${answer.status}`);
  });

  await check("a bucket's objects are listed by folder, filtered, paged and downloaded", async () => {
    await page.goto(BASE + "/ui/ns/default");
    assert((await page.textContent('#buckets tr:has-text("media")')).includes("57"), "media's object count is not shown");
    await Promise.all([page.waitForURL("**/buckets/media"), page.click('#buckets a:text-is("media")')]);
    assert(await page.isVisible('#objects tr.folder a:text-is("docs/")'), "the docs/ folder is not listed");
    const markup = "<img src=x onerror=alert(2)>.html";
    assert((await page.textContent("#objects")).includes(markup), "the markup key is not shown as text");
    assert((await page.locator("#objects img").count()) === 0, "an object's key became an element");
    await shot(page, "bucket");
    // Its bytes download through the session, never shown in the dashboard's origin.
    const download = await page.evaluate(async (key) => {
      const link = [...document.querySelectorAll("#objects tr")].find((tr) => tr.dataset.key === key).querySelector("a.download");
      const answer = await fetch(link.href);
      return { status: answer.status, body: await answer.text(), disposition: answer.headers.get("content-disposition") };
    }, markup);
    assert(download.status === 200 && download.body === "<script>alert(3)</script>", `download: ${JSON.stringify(download)}`);
    assert(download.disposition.startsWith("attachment;"), `the object is not sent as an attachment: ${download.disposition}`);
    await Promise.all([page.waitForURL("**/buckets/media?prefix=docs%2F"), page.click('#objects a:text-is("docs/")')]);
    assert((await page.inputValue('input[name="prefix"]')) === "docs/", "the folder did not become the prefix");
    assert((await page.locator("#objects tbody tr").count()) === 1, "the folder shows more than its one object");
    assert(await page.isVisible('#objects tr[data-key="docs/readme.txt"]'), "docs/readme.txt is not listed in its folder");
    // 55 objects under many/: a first page of 50, then the rest by the cursor.
    await page.goto(BASE + "/ui/ns/default/buckets/media?prefix=many%2F");
    assert((await page.locator("#objects tbody tr").count()) === 50, "the first page does not hold 50 objects");
    await Promise.all([page.waitForLoadState("load"), page.click('nav.pager a[rel="next"]')]);
    assert((await page.locator("#objects tbody tr").count()) === 5, "the next page does not hold the other 5");
    assert(await page.isVisible('#objects tr[data-key="many/54.txt"]'), "the last object is not on the last page");
    await page.fill('input[name="prefix"]', "many/1");
    await Promise.all([page.waitForLoadState("load"), page.click("form.filters button")]);
    assert((await page.locator("#objects tbody tr").count()) === 10, "the prefix filter did not narrow to many/1*");
  });

  await check("an object is deleted from its bucket's page, and only with the CSRF token", async () => {
    await page.goto(BASE + "/ui/ns/default/buckets/media?prefix=docs%2F");
    const forged = await page.evaluate(async () =>
      (await fetch("/ui/ns/default/buckets/media/delete", { method: "POST", body: new URLSearchParams({ key: "docs/readme.txt" }) })).status);
    assert(forged === 403, `a CSRF-less delete answered ${forged}`);
    await Promise.all([page.waitForLoadState("load"), page.click('#objects tr[data-key="docs/readme.txt"] button')]);
    assert(new URL(page.url()).search === "?prefix=docs%2F", `after the delete the page is ${page.url()}`);
    assert(await page.isVisible("text=No objects under this prefix."), "the emptied folder does not say so");
    const gone = await fetch(BASE + "/v1/namespaces/default/buckets/media/objects/docs/readme.txt", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert(gone.status === 404, `the deleted object answered ${gone.status}`);
  });

  await check("a key-value store's keys are listed, filtered and paged, and values shown as text or hex", async () => {
    await page.goto(BASE + "/ui/ns/default");
    await Promise.all([page.waitForURL("**/kv/default"), page.click('#stores a:text-is("default")')]);
    // greeting, blob and user:00 to user:54: a first page of 50, then the rest by the cursor.
    assert((await page.locator("#keys tbody tr").count()) === 50, "the first page does not hold 50 keys");
    await Promise.all([page.waitForLoadState("load"), page.click('nav.pager a[rel="next"]')]);
    assert((await page.locator("#keys tbody tr").count()) === 7, "the next page does not hold the other 7");
    await page.fill('input[name="prefix"]', "user:1");
    await Promise.all([page.waitForLoadState("load"), page.click("form.filters button")]);
    assert((await page.locator("#keys tbody tr").count()) === 10, "the prefix filter did not narrow to user:1*");
    await shot(page, "key-value");
    await page.goto(BASE + "/ui/ns/default/kv/default");
    await Promise.all([page.waitForLoadState("load"), page.click('#keys a:text-is("greeting")')]);
    assert((await page.textContent("#value")) === "<script>alert(4)</script>", "the text value is not shown as it is");
    assert((await page.locator("main script").count()) === 0, "the value's <script> became an element");
    await page.goto(BASE + "/ui/ns/default/kv/default/value?key=blob");
    assert((await page.textContent("#value-size")) === "5 B", "the binary value's size is not shown");
    assert((await page.textContent("#value.hex")).startsWith("00 9f 92 96 ff"), "the binary value is not shown in hex");
  });

  await check("a key is deleted from its value's page, and only with the CSRF token", async () => {
    await page.goto(BASE + "/ui/ns/default/kv/default/value?key=greeting");
    const forged = await page.evaluate(async () =>
      (await fetch("/ui/ns/default/kv/default/delete", { method: "POST", body: new URLSearchParams({ key: "greeting" }) })).status);
    assert(forged === 403, `a CSRF-less delete answered ${forged}`);
    await Promise.all([page.waitForLoadState("load"), page.click("main form button.danger")]);
    assert(new URL(page.url()).pathname === "/ui/ns/default/kv/default", `after the delete the page is ${page.url()}`);
    assert((await page.locator('#keys tr[data-key="greeting"]').count()) === 0, "the deleted key is still listed");
    const gone = await fetch(BASE + "/v1/namespaces/default/kv/default/keys/greeting", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert(gone.status === 404, `the deleted key answered ${gone.status}`);
  });

  await check("the namespace page shows each event source's state, last error and counters", async () => {
    await page.goto(BASE + "/ui/ns/default");
    const row = '#sources tr[data-source="orders"]';
    const cells = await page.locator(`${row} td`).allTextContents();
    assert(cells[1] === "redis" && cells[2] === "probe" && cells[3] === "orders", `the source's row: ${cells}`);
    assert(cells[4].startsWith("failing") && cells[4].includes("refused the credentials"), `the source's state: ${cells[4]}`);
    assert(cells[5] === "1" && cells[6] === "1", `the source's counters: ${cells}`);
    await page.locator("#sources").scrollIntoViewIfNeeded();
    await shot(page, "sources");
  });

  await check("a source is paused and resumed from the namespace page, and only with the CSRF token", async () => {
    const row = '#sources tr[data-source="orders"]';
    const forged = await page.evaluate(async () =>
      (await fetch("/ui/ns/default/sources/orders", { method: "POST", body: new URLSearchParams({ paused: "true" }) })).status);
    assert(forged === 403, `a CSRF-less pause answered ${forged}`);
    assert((await api("/v1/namespaces/default/sources/orders")).paused === false, "the refused post paused the source");
    await Promise.all([page.waitForLoadState("load"), page.click(`${row} button`)]);
    // `pausing` until the node's runner has stopped, at its next reread of the sources.
    assert(/^paus(ed|ing)/.test(await page.textContent(`${row} td.state`)), "the page does not show the source paused");
    assert((await api("/v1/namespaces/default/sources/orders")).paused === true, "the source is not paused");
    assert((await page.textContent(`${row} button`)) === "Resume", "a paused source offers no resume");
    await Promise.all([page.waitForLoadState("load"), page.click(`${row} button`)]);
    assert((await api("/v1/namespaces/default/sources/orders")).paused === false, "the source was not resumed");
  });

  await check("every page fits a phone-width screen", async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    const pages = ["/ui", "/ui/ns/default", "/ui/ns/default/fn/hello", "/ui/ns/default/fn/hello/invocations",
      "/ui/ns/default/fn/probe/logs", "/ui/ns/default/fn/jobs/dlq", "/ui/ns/default/usage", "/ui/keys",
      "/ui/ns/default/buckets/media", "/ui/ns/default/kv/default", "/ui/ns/default/kv/default/value?key=blob"];
    for (const path of pages) {
      await page.goto(BASE + path);
      if (path === "/ui/ns/default/fn/hello") await page.waitForSelector("section.charts .uplot canvas");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 1, `${path} is ${overflow}px wider than the screen`);
      if (path === "/ui/ns/default/fn/hello") await shot(page, "function-phone");
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await check("logging out ends the session", async () => {
    await Promise.all([page.waitForLoadState("load"), page.click("form.logout button")]);
    assert(page.url().endsWith("/ui/login"), `after logout the page is ${page.url()}`);
    await page.goto(BASE + "/ui/ns/default");
    assert(page.url().endsWith("/ui/login"), "the dashboard is still open after logout");
  });

  await check("a viewer sees no write buttons, and a forged post with its cookie gets 403", async () => {
    const viewer = await context.newPage();
    watch(viewer, "viewer");
    await logIn(viewer, VIEWER_KEY);
    await viewer.goto(BASE + "/ui/ns/default/fn/hello");
    assert((await viewer.locator("main form, main button").count()) === 0, "a viewer sees a button that changes something");
    assert(!(await viewer.isVisible('a:text-is("API keys")')), "a viewer sees the keys link");
    await viewer.goto(BASE + "/ui/ns/default/fn/jobs/dlq");
    assert((await viewer.locator("main form").count()) === 0, "a viewer sees a redrive button");
    const status = await viewer.evaluate(async () => {
      const csrf = document.querySelector('input[name="csrf"]').value;
      const answer = await fetch("/ui/ns/default/fn/hello/aliases/prod", {
        method: "POST",
        body: new URLSearchParams({ version: "1", csrf }),
      });
      return answer.status;
    });
    assert(status === 403, `a viewer's forged alias move answered ${status}`);
    await viewer.goto(BASE + "/ui/ns/default/buckets/media");
    assert((await viewer.locator('main form[method="post"], main button.danger').count()) === 0, "a viewer sees a delete button");
    const bucketStatuses = await viewer.evaluate(async () => {
      const csrf = document.querySelector('input[name="csrf"]').value;
      const forged = await fetch("/ui/ns/default/buckets/media/delete", { method: "POST", body: new URLSearchParams({ key: "many/00.txt", csrf }) });
      const read = await fetch(document.querySelector("a.download").href);
      return [forged.status, read.status];
    });
    assert(bucketStatuses[0] === 403, `a viewer's forged delete answered ${bucketStatuses[0]}`);
    assert(bucketStatuses[1] === 200, `a viewer's download answered ${bucketStatuses[1]}`);
    const kept = await fetch(BASE + "/v1/namespaces/default/buckets/media/objects/many/00.txt", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert(kept.status === 200, `after the viewer's forged delete the object answered ${kept.status}`);
    await viewer.goto(BASE + "/ui/ns/default/kv/default/value?key=blob");
    assert((await viewer.locator('main form[method="post"], main button.danger').count()) === 0, "a viewer sees a key's delete button");
    await viewer.goto(BASE + "/ui/ns/default/kv/default");
    assert((await viewer.locator('main form[method="post"], main button.danger').count()) === 0, "a viewer sees delete buttons on the keys");
    const kvForged = await viewer.evaluate(async () => {
      const csrf = document.querySelector('input[name="csrf"]').value;
      return (await fetch("/ui/ns/default/kv/default/delete", { method: "POST", body: new URLSearchParams({ key: "blob", csrf }) })).status;
    });
    assert(kvForged === 403, `a viewer's forged key delete answered ${kvForged}`);
    const blob = await fetch(BASE + "/v1/namespaces/default/kv/default/keys/blob", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert(blob.status === 200, `after the viewer's forged delete the key answered ${blob.status}`);
    await viewer.goto(BASE + "/ui/ns/default");
    assert(await viewer.isVisible('#sources tr[data-source="orders"]'), "a viewer does not see the source");
    assert((await viewer.locator("main form, main button").count()) === 0, "a viewer sees a button on the namespace page");
    const sourceForged = await viewer.evaluate(async () => {
      const csrf = document.querySelector('input[name="csrf"]').value;
      return (await fetch("/ui/ns/default/sources/orders", { method: "POST", body: new URLSearchParams({ paused: "true", csrf }) })).status;
    });
    assert(sourceForged === 403, `a viewer's forged pause answered ${sourceForged}`);
    assert((await api("/v1/namespaces/default/sources/orders")).paused === false, "the viewer paused the source");
    await viewer.goto(BASE + "/ui/ns/default/fn/hello");
    const splitForged = await viewer.evaluate(async () => {
      const csrf = document.querySelector('input[name="csrf"]').value;
      return (await fetch("/ui/ns/default/fn/hello/split", { method: "POST", body: new URLSearchParams({ alias: "prod", version: "1", other: "2", other_weight: "50", csrf }) })).status;
    });
    assert(splitForged === 403, `a viewer's forged split answered ${splitForged}`);
    const keys = await viewer.goto(BASE + "/ui/keys");
    assert(keys.status() === 403, `a viewer's keys page answered ${keys.status()}`);
    await shot(viewer, "viewer-function");
    const hello = await api("/v1/namespaces/default/functions/hello");
    assert(hello.aliases.prod === 2 && !(hello.splits && hello.splits.prod), `the viewer changed prod: ${JSON.stringify(hello)}`);
  });

  await check("revoking a key from the keys page ends its open session", async () => {
    // One profile holds one session at a time: keep the viewer's to present it again later.
    const viewerSession = await context.cookies(BASE + "/ui/");
    await logIn(page, ADMIN_KEY);
    await page.goto(BASE + "/ui/keys");
    const id = VIEWER_KEY.split("_")[1];
    await Promise.all([page.waitForLoadState("load"), page.click(`#keys tr:has-text("${id}") button`)]);
    assert((await page.textContent(`#keys tr:has-text("${id}")`)).includes("revoked"), "the key is not shown revoked");
    await context.addCookies(viewerSession);
    await page.goto(BASE + "/ui/ns/default");
    assert(page.url().endsWith("/ui/login"), `the revoked key's session still opens ${page.url()}`);
  });

  await check("no page needed an inline script or style, opened a dialog or threw", async () => {
    assert(problems.length === 0, problems.join("\n"));
  });
} catch (error) {
  console.error(`not ok - ${error.stack || error}`);
  console.error(`${passed} passed, 1 failed`);
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(`${passed} passed, 0 failed`);
