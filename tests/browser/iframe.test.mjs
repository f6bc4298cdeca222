// Real-browser tests of launches inside the platform's iframe (issue 13): the demo
// platform on http://localhost:<port> embeds the tool on http://127.0.0.1:<port>, so
// the tool is a third party, as in an LMS.
//
// "Cookies allowed" is Chromium's default: unpartitioned third-party cookies are
// blocked, but the tool's state cookie is `Partitioned` (CHIPS) and is sent.
// "Third-party cookies blocked" blocks every cookie of the tool's site under the
// platform's site (a cookie content setting in the profile, as Safari or a strict
// privacy setting does): the launch must then go through the platform's storage
// frame (LTI postMessage Storage), or offer a new window when there is none.
//
// Each test gets its own profile (launchPersistentContext): another browser, as far as
// the tool can tell. Screenshots go to tests/browser/artifacts/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.LTI_DEV_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.LTI_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const STEP_TIMEOUT = 15_000;
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // The tool's frame crosses sites five times per launch; with out-of-process frames
  // playwright-core now and then keeps a stale frame (the screenshot shows the app,
  // the locator still the launch page). In-process frames keep it exact; cookie
  // partitioning and the cookie settings are the same either way.
  '--disable-site-isolation-trials',
  '--disable-features=IsolateOrigins,site-per-process',
];

const TOOL = BASE; // http://127.0.0.1:<port>
const PORT = new URL(BASE || 'http://x:1').port;
const PLATFORM = `http://localhost:${PORT}`;
const TOOL_FRAME = '#tool-frame';

mkdirSync(ARTIFACTS, { recursive: true });
const profiles = [];
after(() => {
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
});

/** A fresh browser profile; `blockToolCookies` blocks every cookie of the tool's site
 * when it is embedded under the platform's site (the tool's own window keeps them). */
async function openProfile({ blockToolCookies }) {
  assert.ok(BASE.startsWith('http://127.0.0.1:'), 'set LTI_DEV_URL to the dev server on 127.0.0.1 (tests/browser/run.sh does)');
  const dir = mkdtempSync(join(tmpdir(), 'lti-iframe-'));
  profiles.push(dir);
  if (blockToolCookies) {
    mkdirSync(join(dir, 'Default'), { recursive: true });
    const cookies = { [`http://127.0.0.1:*,http://localhost:*`]: { setting: 2 } };
    writeFileSync(
      join(dir, 'Default', 'Preferences'),
      JSON.stringify({ profile: { content_settings: { exceptions: { cookies } } } }),
    );
  }
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  // Every POST to the tool's launch, from any frame, with its body.
  const launches = [];
  context.on('request', (request) => {
    if (request.method() === 'POST' && request.url() === `${TOOL}/lti/launch`) {
      launches.push(request.postData() || '');
    }
  });
  const blocked = [];
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.responseReceivedExtraInfo', (e) => {
    for (const b of e.blockedCookies || []) blocked.push(b.cookieLine.split('=')[0]);
  });
  return { context, page, launches, blocked };
}

/** Opens the platform's course page on localhost and presses "Launch in an iframe". */
async function launchInIframe(page, { user = 'learner', storage = true } = {}) {
  await page.goto(`${PLATFORM}/platform`);
  const form = page.locator('form[action="/platform/iframe"]');
  await form.locator('select[name=user]').selectOption(user);
  const box = form.locator('input[name=storage]');
  if (storage) await box.check();
  else await box.uncheck();
  await Promise.all([page.waitForURL(`${PLATFORM}/platform/iframe?**`), form.locator('#iframe-launch-button').click()]);
  return page.frameLocator(TOOL_FRAME);
}

const params = (body) => new URLSearchParams(body);

test('iframe launch with third-party cookies blocked lands through the platform storage', async () => {
  const { context, page, launches, blocked } = await openProfile({ blockToolCookies: true });
  try {
    const frame = await launchInIframe(page, { user: 'learner', storage: true });
    await frame.locator('#welcome').waitFor();
    assert.equal((await frame.locator('#welcome').innerText()).trim(), 'Welcome, Lea Learner');
    assert.equal((await frame.locator('#message-type').innerText()).trim(), 'LtiResourceLinkRequest');
    // The browser refused the state cookie; the launch went round the platform's storage:
    // the platform's POST (no proof), then the tool's own POST with the proof.
    assert.ok(blocked.some((name) => name.startsWith('__Host-lti-state-')), `the state cookie was blocked: ${blocked}`);
    assert.equal(launches.length, 2, `two launch POSTs: ${launches.length}`);
    assert.equal(params(launches[0]).get('lti_storage_proof'), null);
    assert.match(params(launches[1]).get('lti_storage_proof') || '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(params(launches[1]).get('state'), params(launches[0]).get('state'));
    assert.ok(page.url().startsWith(`${PLATFORM}/platform/iframe`), 'the course page stayed where it was');
    await page.screenshot({ path: join(ARTIFACTS, 'iframe-storage-cookies-blocked.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('iframe launch with cookies allowed lands on the partitioned state cookie', async () => {
  const { context, page, launches, blocked } = await openProfile({ blockToolCookies: false });
  try {
    const frame = await launchInIframe(page, { user: 'instructor', storage: true });
    await frame.locator('#welcome').waitFor();
    assert.equal((await frame.locator('#welcome').innerText()).trim(), 'Welcome, Ian Instructor');
    assert.ok(!blocked.some((name) => name.startsWith('__Host-lti-state-')), `nothing blocked: ${blocked}`);
    assert.equal(launches.length, 1, 'one launch POST: the cookie bound it');
    assert.equal(params(launches[0]).get('lti_storage_proof'), null);
    await page.screenshot({ path: join(ARTIFACTS, 'iframe-cookies-allowed.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('no platform storage and cookies blocked: the tool offers a new window, which lands', async () => {
  const { context, page, launches } = await openProfile({ blockToolCookies: true });
  try {
    const frame = await launchInIframe(page, { user: 'learner', storage: false });
    const link = frame.locator('#open-new-window');
    await link.waitFor();
    assert.match(await frame.locator('h1').innerText(), /needs to open in a new window/);
    assert.match(await frame.locator('body').innerText(), /LTI_STATE_COOKIE_MISSING \(HTTP 401\)/);
    assert.equal(launches.length, 1);
    await page.screenshot({ path: join(ARTIFACTS, 'iframe-new-window-offered.png'), fullPage: true });

    const [popup] = await Promise.all([context.waitForEvent('page'), link.click()]);
    popup.setDefaultTimeout(STEP_TIMEOUT);
    await popup.waitForURL(`${TOOL}/app`, { waitUntil: 'load' });
    await popup.locator('#welcome').waitFor();
    assert.equal((await popup.locator('#welcome').innerText()).trim(), 'Welcome, Lea Learner');
    await popup.screenshot({ path: join(ARTIFACTS, 'new-window-landed.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

/** Posts `fields` to the tool's launch as a top-level form of `page`. */
async function postLaunch(page, fields) {
  await page.evaluate(({ action, fields }) => {
    const form = document.createElement('form');
    form.method = 'post';
    form.action = action;
    for (const [name, value] of fields) {
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = name;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  }, { action: `${TOOL}/lti/launch`, fields });
}

test('a launch replayed from another browser profile is refused; the real one still lands', async () => {
  const victim = await openProfile({ blockToolCookies: true });
  const attacker = await openProfile({ blockToolCookies: true });
  try {
    // Hold the victim's second POST (the one with the proof) before it reaches the tool.
    let held;
    let release;
    const heldBody = new Promise((resolve) => {
      release = resolve;
    });
    await victim.context.route(`${TOOL}/lti/launch`, async (route) => {
      const body = route.request().postData() || '';
      if (params(body).get('lti_storage_proof')) {
        held = route;
        release(body);
      } else {
        await route.continue();
      }
    });
    await launchInIframe(victim.page, { user: 'learner', storage: true });
    const real = params(await heldBody);
    const idToken = real.get('id_token');
    const state = real.get('state');
    assert.ok(idToken && state);

    // The attacker has the id_token and the state (and guesses a proof).
    await attacker.page.goto(`${TOOL}/platform`);
    await Promise.all([
      attacker.page.waitForURL(`${TOOL}/lti/launch`),
      postLaunch(attacker.page, [['id_token', idToken], ['state', state], ['lti_storage_proof', 'A'.repeat(43)]]),
    ]);
    const refused = await attacker.page.locator('body').innerText();
    assert.match(refused, /LTI_STORAGE_PROOF_INVALID \(HTTP 401\)/);
    assert.match(refused, /did not start this login/);
    assert.doesNotMatch(refused, /Welcome/);
    await attacker.page.screenshot({ path: join(ARTIFACTS, 'cross-context-replay-refused.png'), fullPage: true });
    // Without a proof: the tool's page finds no platform storage in this window and
    // ends on the new-window page, never in the app.
    await attacker.page.goto(`${TOOL}/platform`);
    await postLaunch(attacker.page, [['id_token', idToken], ['state', state]]);
    await attacker.page.locator('#open-new-window').waitFor();
    assert.match(await attacker.page.locator('body').innerText(), /LTI_STATE_COOKIE_MISSING/);

    // None of that used up the victim's login: its held POST goes on and lands.
    await held.continue();
    const frame = victim.page.frameLocator(TOOL_FRAME);
    await frame.locator('#welcome').waitFor();
    assert.equal((await frame.locator('#welcome').innerText()).trim(), 'Welcome, Lea Learner');
  } finally {
    await victim.context.close();
    await attacker.context.close();
  }
});

// A frame of another origin on the course page answers the tool's lti.get_data first,
// with the right message_id and a forged value; the tool ignores it (wrong origin,
// wrong source) and uses the storage frame's answer.
test('a storage answer from a foreign origin is ignored', async () => {
  const { context, page, launches } = await openProfile({ blockToolCookies: true });
  try {
    const FORGED = 'forged-proof-from-a-foreign-origin';
    // The storage frame, replaced by one that first hands each get_data to a frame on
    // http://foreign.test, which answers the tool directly, and answers for real 300 ms later.
    await context.route(`${PLATFORM}/platform/storage`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><iframe name="forger" src="http://foreign.test/forger"></iframe><script>
          const data = {}; window.forgeries = 0;
          window.addEventListener('message', (e) => {
            const m = e.data || {};
            if (m.forged) { window.forgeries++; return; }
            if (e.origin !== '${TOOL}') return;
            const reply = (r) => e.source.postMessage(Object.assign(r, { subject: m.subject + '.response', message_id: m.message_id }), e.origin);
            if (m.subject === 'lti.put_data') { data[m.key] = m.value; reply({ key: m.key, value: m.value }); }
            if (m.subject === 'lti.get_data') {
              frames.forger.postMessage({ message_id: m.message_id, key: m.key }, '*');
              setTimeout(() => reply({ key: m.key, value: data[m.key] }), 300);
            }
          });
        </script>`,
      }),
    );
    await context.route('http://foreign.test/**', (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><script>
          window.addEventListener('message', (e) => {
            const m = e.data;
            top.frames['lti-tool'].postMessage({ subject: 'lti.get_data.response', message_id: m.message_id, key: m.key,
              value: m.key.slice('state_'.length) + '.${FORGED}' }, '*');
            parent.postMessage({ forged: true }, '*');
          });
        </script>`,
      }),
    );
    const frame = await launchInIframe(page, { user: 'learner', storage: true });
    await frame.locator('#welcome').waitFor();
    assert.equal((await frame.locator('#welcome').innerText()).trim(), 'Welcome, Lea Learner');
    const storage = page.frames().find((f) => f.name() === 'post_message_forwarding');
    assert.equal(await storage.evaluate(() => window.forgeries), 1, 'the foreign frame did send its forged answer');
    assert.equal(launches.length, 2);
    const proof = params(launches[1]).get('lti_storage_proof');
    assert.ok(proof && proof !== FORGED, 'the tool posted the storage frame\'s proof, not the forged one');
  } finally {
    await context.close();
  }
});
