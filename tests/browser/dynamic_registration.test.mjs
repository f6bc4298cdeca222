// Real-browser test of LTI Dynamic Registration on the dev server, clicked as a
// person would: the demo platform's "Add a tool by URL" frames the tool's
// registration URL; the tool registers itself, its page (one script, allowed by hash)
// posts {subject: "org.imsglobal.lti.close"} to the platform's window, which shows
// the way back; the new tool is then launched from the course.
//
//   LTI_DEV_URL=http://127.0.0.1:3000 node --test tests/browser/dynamic_registration.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.LTI_DEV_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.LTI_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser;

before(async () => {
  assert.ok(BASE.startsWith('http'), 'set LTI_DEV_URL to the dev server (tests/browser/run.sh does)');
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
});

test('dynamic registration: Add a tool by URL → the tool closes the dialog → launch it', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  try {
    await page.goto(`${BASE}/platform`);
    await page.click('#add-tool');
    await page.waitForURL(/\/platform\/add-tool$/);
    assert.equal(await page.inputValue('#url'), `${BASE}/lti/register`);
    await page.click('#register');

    // The tool's closing message reached the platform's window: its listener hid the
    // frame and showed the way back (a script blocked by CSP would not have run).
    await page.locator('#closed').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#registration').isHidden(), true);

    // The tool's page in the (now hidden) frame said it worked.
    const frame = page.frameLocator('#registration');
    assert.equal((await frame.locator('#registered').textContent()).trim(), 'lti-lambda is registered');
    const details = await frame.locator('dl').textContent();
    assert.match(details, /lti-dev-dynreg-\d+/);
    const clientId = details.match(/lti-dev-dynreg-\d+/)[0];
    await page.screenshot({ path: join(ARTIFACTS, 'dynamic-registration-done.png'), fullPage: true });
    assert.deepEqual(problems.filter((p) => /Content Security Policy|Refused/i.test(p)), [], 'no CSP violation');

    // Back in the course, the new tool is listed and a learner launches into it.
    await page.click('#back');
    await page.waitForURL(`${BASE}/platform`);
    const option = page.locator('select[name=tool] option', { hasText: clientId });
    assert.equal(await option.count(), 1, `the course lists ${clientId}`);
    await page.selectOption('select[name=tool]', await option.getAttribute('value'));
    await page.check('input[name=user][value=learner]');
    await Promise.all([page.waitForURL(`${BASE}/app`, { timeout: 20_000 }), page.click('#launch')]);
    assert.equal((await page.locator('#welcome').innerText()).trim(), 'Welcome, Lea Learner');
  } finally {
    await context.close();
  }
});
