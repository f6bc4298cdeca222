// Real-browser tests of the lti-dev demo launch, clicked as a person would:
// open /platform, pick a user, press Launch, land in /app; add content (deep
// linking); submit a score and show the roster, and see the score in the gradebook.
//
// Debian's Chromium (/usr/bin/chromium, or $LTI_CHROMIUM) driven by playwright-core;
// the dev server is $LTI_DEV_URL (tests/browser/run.sh starts one when it is unset).
// One browser for the file, a fresh context (empty profile, no cookies) per test.
//
//   LTI_DEV_URL=http://127.0.0.1:3000 node --test tests/browser/launch.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.LTI_DEV_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.LTI_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const STEP_TIMEOUT = 15_000;

// The flags this machine needs: no sandbox as root, no GPU, and no background
// connections to Google (the network is closed; they fail or slow every start).
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const USERS = {
  instructor: { welcome: 'Welcome, Ian Instructor', roles: 'instructor', email: 'ian.instructor@demo.example', sub: 'demo-instructor-1' },
  learner: { welcome: 'Welcome, Lea Learner', roles: 'learner', email: 'lea.learner@demo.example', sub: 'demo-learner-1' },
  private: { welcome: 'Welcome, Anonymous user demo-private-7f3a9c', roles: 'learner', email: '(not shared)', sub: 'demo-private-7f3a9c' },
};

const SECRET_IN_URL = /(id_token|app_token)=/;

let browser;

before(async () => {
  assert.ok(BASE.startsWith('http'), 'set LTI_DEV_URL to the dev server (tests/browser/run.sh does)');
  mkdirSync(ARTIFACTS, { recursive: true });
  // playwright-core gives every launch a new, empty temporary --user-data-dir.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
});

/**
 * A fresh context and page that records what the browser did: every main-frame
 * navigation request (redirect hops included) with its method and body, every URL the
 * frame committed, and, from the DevTools protocol, every Set-Cookie the browser
 * received (and whether it blocked it) and every cookie it sent (and whether it
 * withheld it).
 */
async function openRecorded(options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  const log = { requests: [], answered: [], committed: [], setCookies: [], sentCookies: [], urls: new Map() };
  const navigation = (request) => request.isNavigationRequest() && request.frame() === page.mainFrame();
  const entry = (request) => ({ method: request.method(), url: request.url(), body: request.postData() || '' });
  // `requests`: every navigation request Chromium started, even one it only tried
  // from its cache; `answered`: those the server answered.
  page.on('request', (request) => {
    if (navigation(request)) log.requests.push(entry(request));
  });
  page.on('response', (response) => {
    if (navigation(response.request())) log.answered.push({ ...entry(response.request()), status: response.status() });
  });
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) log.committed.push(frame.url());
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.requestWillBeSent', (e) => log.urls.set(e.requestId, e.request.url));
  cdp.on('Network.responseReceivedExtraInfo', (e) => {
    const header = Object.entries(e.headers || {}).find(([k]) => k.toLowerCase() === 'set-cookie');
    const lines = header ? header[1].split('\n') : [];
    for (const line of lines) {
      const blocked = (e.blockedCookies || []).filter((b) => b.cookieLine === line);
      log.setCookies.push({ requestId: e.requestId, line, blockedReasons: blocked.flatMap((b) => b.blockedReasons) });
    }
    for (const b of e.blockedCookies || []) {
      if (!lines.includes(b.cookieLine)) {
        log.setCookies.push({ requestId: e.requestId, line: b.cookieLine, blockedReasons: b.blockedReasons });
      }
    }
  });
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
    for (const c of e.associatedCookies || []) {
      log.sentCookies.push({
        requestId: e.requestId,
        name: c.cookie.name,
        partitionKey: c.cookie.partitionKey,
        blockedReasons: c.blockedReasons,
      });
    }
  });
  return { context, page, cdp, log };
}

/** Opens the demo platform, picks `user` (and the message type), presses Launch and
 * waits until the demo app shows who arrived. */
async function launchAs(page, user, message) {
  await page.goto(`${BASE}/platform`);
  await page.locator(`input[type=radio][name=user][value=${user}]`).check();
  if (message) await page.locator('select[name=message]').selectOption(message);
  await Promise.all([
    page.waitForURL(`${BASE}/app`, { waitUntil: 'load' }),
    page.locator('#launch').click(),
  ]);
  await page.locator('#welcome').waitFor();
}

async function text(page, selector) {
  return (await page.locator(selector).innerText()).trim();
}

/** Every URL the browser had for this tab: requested, committed, or in its history. */
async function allUrls(cdp, log) {
  const history = await cdp.send('Page.getNavigationHistory');
  return [
    ...log.requests.map((r) => r.url),
    ...log.committed,
    ...history.entries.flatMap((e) => [e.url, e.userTypedURL]),
  ].filter(Boolean);
}

function assertNoSecretsInUrls(urls) {
  const leaks = urls.filter((u) => SECRET_IN_URL.test(u));
  assert.deepEqual(leaks, [], 'no URL may carry id_token= or app_token=');
}

/** The state cookie went the whole way: set by /lti/login and not blocked, sent back
 * on the POST to /lti/launch, and expired by the launch. */
async function assertStateCookieRoundTrip(context, log) {
  const set = log.setCookies.filter((c) => c.line.startsWith('__Host-lti-state-') && !/Max-Age=0/i.test(c.line));
  assert.equal(set.length, 1, `one state cookie set; saw ${JSON.stringify(log.setCookies)}`);
  assert.match(set[0].line, /; Secure/);
  assert.match(set[0].line, /; Partitioned/);
  assert.deepEqual(set[0].blockedReasons, [], `Chromium blocked the state cookie: ${set[0].line}`);
  const name = set[0].line.split('=')[0];

  const launchPost = [...log.urls].filter(([, url]) => url === `${BASE}/lti/launch`).map(([id]) => id);
  assert.equal(launchPost.length, 1, 'one POST to /lti/launch');
  const sent = log.sentCookies.filter((c) => c.requestId === launchPost[0] && c.name === name);
  assert.equal(sent.length, 1, `the state cookie was considered for the launch POST; cookies: ${JSON.stringify(log.sentCookies)}`);
  assert.deepEqual(sent[0].blockedReasons, [], 'Chromium sent the state cookie with the launch POST');
  assert.equal(sent[0].partitionKey?.topLevelSite, new URL(BASE).origin.replace(/:\d+$/, ''), 'partitioned under the tool\'s own site');

  const expire = log.setCookies.filter((c) => c.line.startsWith(`${name}=;`) && /Max-Age=0/i.test(c.line));
  assert.equal(expire.length, 1, 'the launch expires the state cookie');
  assert.deepEqual(expire[0].blockedReasons, []);
  const left = (await context.cookies()).filter((c) => c.name.startsWith('__Host-lti-state-'));
  assert.deepEqual(left, [], 'no state cookie left in the browser after the launch');
}

for (const [key, expected] of Object.entries(USERS)) {
  test(`${key}: platform → Launch → app, clicked in Chromium`, async () => {
    const { context, page, cdp, log } = await openRecorded();
    try {
      await launchAs(page, key);
      assert.equal(await text(page, '#welcome'), expected.welcome);
      assert.equal(await text(page, '#roles'), expected.roles);
      assert.equal(await text(page, '#course'), 'Demo Course 101');
      assert.equal(await text(page, '#sub'), expected.sub);
      assert.equal(await text(page, '#email'), expected.email);
      assert.equal(await text(page, '#message-type'), 'LtiResourceLinkRequest');
      assert.equal(await text(page, '#activity'), 'Demo Activity');
      assert.match(await text(page, '#user-id'), /\S/);
      assert.match(await text(page, '#platform'), /lti-lambda demo platform/);

      // The tokens travelled in POST bodies only, never in a URL.
      assert.ok(log.requests.some((r) => r.method === 'POST' && r.url === `${BASE}/lti/launch` && r.body.includes('id_token=')));
      assert.ok(log.requests.some((r) => r.method === 'POST' && r.url === `${BASE}/app` && r.body.includes('app_token=')));
      assertNoSecretsInUrls(await allUrls(cdp, log));
      await assertStateCookieRoundTrip(context, log);

      if (key === 'instructor') {
        await page.screenshot({ path: join(ARTIFACTS, 'app-instructor.png'), fullPage: true });
      }
      if (key === 'private') {
        await page.screenshot({ path: join(ARTIFACTS, 'app-private.png'), fullPage: true });
      }
    } finally {
      await context.close();
    }
  });
}

test('deep linking: the Deep linking option lands as LtiDeepLinkingRequest', async () => {
  const { context, page, cdp, log } = await openRecorded();
  try {
    await launchAs(page, 'instructor', 'deep');
    assert.equal(await text(page, '#message-type'), 'LtiDeepLinkingRequest');
    assert.equal(await text(page, '#welcome'), 'Welcome, Ian Instructor');
    assert.equal(await text(page, '#course'), 'Demo Course 101');
    assert.equal(await text(page, '#roles'), 'instructor');
    assert.ok(log.requests.some((r) => r.url.includes('lti_message_hint=deep')));
    assertNoSecretsInUrls(await allUrls(cdp, log));
    await assertStateCookieRoundTrip(context, log);
  } finally {
    await context.close();
  }
});

test('deep linking: Add content → pick two items → back in the course → launch the added link', async () => {
  const { context, page, cdp, log } = await openRecorded();
  try {
    // The instructor presses Add content: the demo app's picker opens.
    await page.goto(`${BASE}/platform`);
    await Promise.all([
      page.waitForURL(`${BASE}/app`, { waitUntil: 'load' }),
      page.locator('#add-content').click(),
    ]);
    await page.locator('#picker').waitFor();
    assert.equal(await text(page, '#welcome'), 'Welcome, Ian Instructor');
    assert.equal(await text(page, '#message-type'), 'LtiDeepLinkingRequest');
    await page.locator('input[name=item][value=resource]').check();
    await page.locator('input[name=item][value=link]').check();
    await page.screenshot({ path: join(ARTIFACTS, 'picker.png'), fullPage: true });

    // Add selected: the app's backend answers, the browser posts the signed response
    // to the platform, and the course lists the two items.
    await Promise.all([
      page.waitForURL(`${BASE}/platform/deep-link-return`, { waitUntil: 'load' }),
      page.locator('#add-selected').click(),
    ]);
    await page.locator('#notice').waitFor();
    assert.match(await text(page, '#notice'), /2 items were added from lti-lambda\./);
    assert.match(await text(page, '#notice'), /The tool says: 2 items picked in the demo app/);
    const resource = page.locator('li.course-item[data-type=ltiResourceLink]').last();
    const link = page.locator('li.course-item[data-type=link]').last();
    assert.equal(await text(resource, '.item-title'), 'Sales scenario 7');
    assert.match(await text(resource, '.custom'), /scenario=sales-7/);
    assert.match(await text(resource, '.line-item'), /out of 100/);
    assert.equal(await text(link, '.item-title'), 'LTI 1.3 Core specification');
    assert.equal(await link.locator('a').getAttribute('href'), 'https://www.imsglobal.org/spec/lti/v1p3/');
    await page.screenshot({ path: join(ARTIFACTS, 'course-after-deep-linking.png'), fullPage: true });

    // The response went as a form POST; the service key never reached the browser.
    const returned = log.requests.find((r) => r.method === 'POST' && r.url === `${BASE}/platform/deep-link-return`);
    assert.ok(returned && returned.body.startsWith('JWT='), 'the JWT was posted to the platform');
    const picked = log.requests.find((r) => r.method === 'POST' && r.url === `${BASE}/app/deep-link`);
    assert.ok(picked, 'the picker posted to the app');
    assert.doesNotMatch(picked.body, /lsk_|app_token|launch/i, 'the picker sends only what was picked');
    assert.ok(!log.requests.some((r) => /lsk_/.test(r.url + r.body)), 'no service key in any request');
    assertNoSecretsInUrls(await allUrls(cdp, log));

    // A learner launches the added resource link: its custom parameter arrives.
    await resource.locator('select[name=user]').selectOption('learner');
    await Promise.all([
      page.waitForURL(`${BASE}/app`, { waitUntil: 'load' }),
      resource.locator('button.launch-item').click(),
    ]);
    await page.locator('#welcome').waitFor();
    assert.equal(await text(page, '#welcome'), 'Welcome, Lea Learner');
    assert.equal(await text(page, '#message-type'), 'LtiResourceLinkRequest');
    assert.equal(await text(page, '#activity'), 'Sales scenario 7');
    assert.match(await text(page, '#custom'), /scenario=sales-7/);
    await page.screenshot({ path: join(ARTIFACTS, 'app-added-link.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('grades and rosters: Submit a score and Show roster in the app, the score in the demo gradebook', async () => {
  const { context, page, cdp, log } = await openRecorded();
  try {
    await launchAs(page, 'instructor');
    const launchId = await text(page, '#launch-id');
    assert.match(launchId, /\S/);
    // The learners to choose from come from the roster, read by the app's backend.
    await page.locator('#learner').selectOption('demo-learner-1');
    await page.locator('#score').fill('87');
    await page.locator('#max').fill('100');
    await Promise.all([
      page.waitForURL(`${BASE}/app/services`, { waitUntil: 'load' }),
      page.locator('#submit-score').click(),
    ]);
    await page.locator('#score-result').waitFor();
    assert.equal(await text(page, '#posted-score'), '87 / 100');
    assert.equal(await text(page, '#posted-user'), 'Lea Learner');
    assert.equal(await text(page, '#posted-line-item'), 'Demo Activity');
    await page.screenshot({ path: join(ARTIFACTS, 'app-score-posted.png'), fullPage: true });

    // Show roster: every member of the course, with roles and app user ids.
    await Promise.all([
      page.waitForURL(`${BASE}/app/services`, { waitUntil: 'load' }),
      page.locator('#show-roster').click(),
    ]);
    await page.locator('#roster-result').waitFor();
    assert.match(await text(page, '#roster-count'), /^35 members, read from 4 page\(s\)/);
    assert.equal(await page.locator('#roster tr.member').count(), 35);
    const lea = page.locator('#roster tr.member[data-user=demo-learner-1]');
    assert.equal(await text(lea, '.name'), 'Lea Learner');
    assert.equal(await text(lea, '.roles'), 'learner');
    assert.match(await text(lea, '.app-user-id'), /^[0-9a-f-]{36}$/);
    await page.screenshot({ path: join(ARTIFACTS, 'app-roster.png'), fullPage: true });

    // The forms carried a session id: neither the service key nor the launch id went
    // through the browser.
    const posts = log.requests.filter((r) => r.method === 'POST' && r.url === `${BASE}/app/services`);
    assert.equal(posts.length, 2);
    for (const post of posts) {
      assert.doesNotMatch(post.body, /lsk_/);
      assert.ok(!post.body.includes(launchId), 'no launch id in the form');
    }
    assert.ok(!log.requests.some((r) => /lsk_/.test(r.url + r.body)), 'no service key in any request');
    assertNoSecretsInUrls(await allUrls(cdp, log));

    // The score shows in the demo gradebook.
    await page.goto(`${BASE}/platform/gradebook`);
    const activity = page.locator('section.line-item', { hasText: 'Demo Activity' }).first();
    const row = activity.locator('tr.score[data-user=demo-learner-1]');
    await row.waitFor();
    assert.equal(await text(row, '.learner'), 'Lea Learner');
    assert.equal(await text(row, '.given'), '87 / 100');
    await page.screenshot({ path: join(ARTIFACTS, 'platform-gradebook.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('direct launch: no login step, the app reads the token from the fragment', async () => {
  const { context, page, cdp, log } = await openRecorded();
  try {
    await page.goto(`${BASE}/platform`);
    await page.locator('form[action="/platform/direct"] select[name=user]').selectOption('learner');
    await Promise.all([
      page.waitForURL(`${BASE}/app`, { waitUntil: 'load' }),
      page.locator('#direct-launch').click(),
    ]);
    await page.locator('#welcome').waitFor();
    assert.equal(await text(page, '#welcome'), 'Welcome, Lea Learner');
    assert.equal(await text(page, '#message-type'), 'DirectLaunch');
    assert.ok(!log.requests.some((r) => r.url.includes('/lti/login')), 'no login step');
    assert.ok(log.requests.some((r) => r.method === 'POST' && r.url === `${BASE}/lti/launch` && !r.body.includes('state=')));
    assert.ok(!(await allUrls(cdp, log)).some((u) => u.split('#')[0].includes('app_token=')), 'never in a query');
  } finally {
    await context.close();
  }
});

test('the platform page renders its form (screenshot)', async () => {
  const { context, page } = await openRecorded();
  try {
    await page.goto(`${BASE}/platform`);
    assert.equal(await text(page, 'h1'), 'lti-lambda demo platform');
    assert.equal(await page.locator('input[type=radio][name=user]').count(), 3);
    assert.ok(await page.locator('input[name=user][value=instructor]').isChecked(), 'the instructor is picked by default');
    assert.ok(await page.locator('#launch').isVisible());
    await page.screenshot({ path: join(ARTIFACTS, 'platform.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

// Chromium replaces the history entries of forms that submit themselves while their
// page loads, so with JavaScript on, Back from /app goes straight to /platform.
test('Back after landing returns to the platform without logging in again; re-posting the launch is refused', async () => {
  const { context, page, cdp, log } = await openRecorded();
  try {
    await launchAs(page, 'learner');
    const launch = log.requests.find((r) => r.method === 'POST' && r.url === `${BASE}/lti/launch`);
    assert.ok(launch, 'the launch POST was seen');
    const posts = () => log.answered.filter((r) => r.method === 'POST').length;
    const before = posts();

    await page.goBack({ waitUntil: 'load' });
    assert.equal(page.url(), `${BASE}/platform`, 'Back leads to the platform page');
    assert.equal(await page.locator('#welcome').count(), 0);
    assert.equal(posts(), before, 'Back re-posted nothing');

    // Re-submit the very launch form the platform posted (same id_token and state),
    // from this browser, as a resubmitted form would.
    await page.evaluate(({ action, body }) => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = action;
      for (const [name, value] of new URLSearchParams(body)) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        form.append(input);
      }
      document.body.append(form);
      form.submit();
    }, { action: launch.url, body: launch.body });
    await page.waitForURL(`${BASE}/lti/launch`);
    await assertRefusedReplay(page);
    assertNoSecretsInUrls(await allUrls(cdp, log));
  } finally {
    await context.close();
  }
});

// With JavaScript off each auto-submit page shows a Continue button, and every step
// gets its own history entry: Back from /app then reaches the launch POST itself,
// Chromium shows "Confirm Form Resubmission" (the tool's pages are no-store), and a
// reload re-posts the id_token. This is the browser's own resubmission.
test('JavaScript off: Continue by hand, Back to the launch POST, reload re-posts it and is refused', async () => {
  const { context, page, cdp, log } = await openRecorded({ javaScriptEnabled: false });
  try {
    await page.goto(`${BASE}/platform`);
    await page.locator('input[type=radio][name=user][value=instructor]').check();
    await page.locator('#launch').click();
    await page.waitForURL(/\/platform\/auth\?/);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${BASE}/lti/launch`);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${BASE}/app`);
    assert.equal(await text(page, '#welcome'), 'Welcome, Ian Instructor');
    // Launch POSTs that reached the tool.
    const launches = () => log.answered.filter((r) => r.method === 'POST' && r.url === `${BASE}/lti/launch`).length;
    assert.equal(launches(), 1);

    // Back: the launch page was a POST answered with no-store, so Chromium will not
    // show it from cache nor re-post by itself.
    await assert.rejects(page.goBack(), /ERR_CACHE_MISS/);
    assert.equal(launches(), 1, 'Back alone re-posted nothing to the tool');
    // goBack settles when the load fails; Chromium's error page commits just after.
    await page.waitForURL('chrome-error://chromewebdata/');
    assert.match(await page.content(), /Confirm Form Resubmission/);
    assert.match(await page.content(), /ERR_CACHE_MISS/);
    // The person reloads ("Confirm Form Resubmission" → reload): the launch is re-posted.
    const first = log.answered.find((r) => r.method === 'POST' && r.url === `${BASE}/lti/launch`);
    const again = await page.reload();
    assert.equal(again.request().method(), 'POST', 'the reload re-posted the launch form');
    assert.equal(again.request().postData(), first.body, 'with the same id_token and state');
    assert.equal(again.status(), 401);
    assert.equal(page.url(), `${BASE}/lti/launch`);
    await assertRefusedReplay(page);
    await page.screenshot({ path: join(ARTIFACTS, 'replay-refused.png'), fullPage: true });
    assertNoSecretsInUrls(await allUrls(cdp, log));
  } finally {
    await context.close();
  }
});

/** The tool's error page for a replayed launch. The launch expired the state cookie,
 * so Chromium posts the old state without it: LTI_STATE_COOKIE_MISSING (401). Were the
 * cookie still sent, the single-use check would answer LTI_NONCE_REPLAYED (409). */
async function assertRefusedReplay(page) {
  assert.equal(await page.locator('#welcome').count(), 0, 'not logged in again');
  assert.equal(await text(page, 'h1'), 'This launch could not be completed');
  const body = await text(page, 'body');
  assert.match(body, /Error LTI_STATE_COOKIE_MISSING \(HTTP 401\)/);
  assert.doesNotMatch(body, /LTI_NONCE_REPLAYED/);
}
