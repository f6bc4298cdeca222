// Unit tests of the tool's platform-storage script (shared/http/src/storage.js): its
// message handling, run in node's vm against a fake window, parent and storage frame.
// No browser and no server needed:
//
//   node --test tests/browser/storage-script.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { webcrypto } from 'node:crypto';
import vm from 'node:vm';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = readFileSync(join(ROOT, 'shared/http/src/storage.js'), 'utf8');
const PLATFORM = 'https://lms.example';
const STATE = 'S'.repeat(43);
const PROOF = 'P'.repeat(43);

/** Runs the script as the login (`mode: 'login'`) or launch page, in a frame whose
 * parent holds a storage frame named `post_message_forwarding`. */
function run(mode, data = {}, { framed = true } = {}) {
  const sent = [];
  const listeners = [];
  const timers = [];
  const post = (to) => ({
    name: to,
    postMessage(message, origin) {
      sent.push({ to, message: JSON.parse(JSON.stringify(message)), origin });
    },
  });
  const storage = post('storage');
  const parent = Object.assign(post('parent'), { frames: { post_message_forwarding: storage } });
  const form = {
    elements: {
      lti_storage_proof: { value: '', disabled: false },
      lti_storage_failed: { value: '1', disabled: false },
    },
    submitted: 0,
    submit() {
      this.submitted += 1;
    },
  };
  const location = { replacedWith: null, replace(url) { this.replacedWith = url; } };
  const window = {
    crypto: webcrypto,
    location,
    addEventListener: (type, listener) => type === 'message' && listeners.push(listener),
    setTimeout: (fn, ms) => timers.push({ fn, ms, cleared: false }),
    clearTimeout: (id) => {
      if (timers[id - 1]) timers[id - 1].cleared = true;
    },
  };
  window.parent = framed ? parent : window;
  const dataset =
    mode === 'login'
      ? {
          next: `${PLATFORM}/auth?state=${STATE}`,
          target: 'post_message_forwarding',
          origin: PLATFORM,
          stateKey: `state_${STATE}`,
          stateValue: `${STATE}.${PROOF}`,
          nonceKey: 'nonce_N',
          nonceValue: 'N',
          ...data,
        }
      : { target: 'post_message_forwarding', origin: PLATFORM, key: `state_${STATE}`, state: STATE, ...data };
  const document = {
    getElementById: (id) =>
      id === `lti-storage-${mode}` ? { dataset } : id === 'lti-storage-form' ? form : null,
  };
  vm.runInNewContext(SCRIPT, { window, document });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return {
    sent,
    form,
    location,
    parent,
    storage,
    settle,
    /** Delivers a message event to the script's listeners. */
    async deliver(data, { origin = PLATFORM, source = storage } = {}) {
      for (const listener of listeners) listener({ data, origin, source });
      await settle();
    },
    /** Fires every pending timer (the timeouts). */
    async expire() {
      for (const t of timers.splice(0)) if (!t.cleared) t.fn();
      await settle();
    },
    last: (subject) => [...sent].reverse().find((s) => s.message.subject === subject),
  };
}

test('launch: the proof is posted only from the storage frame\'s own answer', async () => {
  const page = run('launch');
  await page.settle();
  const ask = page.last('lti.get_data');
  assert.equal(ask.to, 'storage', 'sent to the named storage frame');
  assert.equal(ask.origin, PLATFORM, 'data requests never go to *');
  assert.equal(ask.message.key, `state_${STATE}`);
  const answer = { subject: 'lti.get_data.response', message_id: ask.message.message_id, key: `state_${STATE}`, value: `${STATE}.${PROOF}` };

  // A foreign origin, another window, another message id, another subject: ignored.
  await page.deliver({ ...answer, value: `${STATE}.FORGED` }, { origin: 'https://evil.example' });
  await page.deliver({ ...answer, value: `${STATE}.FORGED` }, { source: page.parent });
  await page.deliver({ ...answer, message_id: 'guess', value: `${STATE}.FORGED` });
  await page.deliver({ ...answer, subject: 'lti.put_data.response', value: `${STATE}.FORGED` });
  await page.deliver('not an object');
  assert.equal(page.form.submitted, 0, 'nothing submitted on a message that does not count');

  await page.deliver(answer);
  assert.equal(page.form.submitted, 1);
  assert.equal(page.form.elements.lti_storage_proof.value, PROOF);
  assert.equal(page.form.elements.lti_storage_failed.disabled, true);
  // A second answer for the same id is not acted on.
  await page.deliver(answer);
  assert.equal(page.form.submitted, 1);
});

test('launch: a value for another state, an error or silence reports failure, never a proof', async () => {
  for (const [name, reply] of [
    ['another state', (id) => ({ subject: 'lti.get_data.response', message_id: id, value: `OTHER.${PROOF}` })],
    ['an error', (id) => ({ subject: 'lti.get_data.response', message_id: id, error: { code: 'bad_request' } })],
    ['another key', (id) => ({ subject: 'lti.get_data.response', message_id: id, key: 'state_X', value: `${STATE}.${PROOF}` })],
    ['silence', null],
  ]) {
    const page = run('launch');
    await page.settle();
    const id = page.last('lti.get_data').message.message_id;
    if (reply) await page.deliver(reply(id));
    else await page.expire();
    assert.equal(page.form.submitted, 1, name);
    assert.equal(page.form.elements.lti_storage_proof.disabled, true, `${name}: no proof sent`);
    assert.equal(page.form.elements.lti_storage_failed.disabled, false, `${name}: failure reported`);
  }
});

test('launch: outside a frame there is no storage to ask; failure is reported', async () => {
  const page = run('launch', {}, { framed: false });
  await page.settle();
  assert.equal(page.sent.length, 0);
  assert.equal(page.form.submitted, 1);
  assert.equal(page.form.elements.lti_storage_proof.disabled, true);
});

test('login: capabilities first (no data, to any origin), then state and nonce to the platform origin, then on', async () => {
  const page = run('login');
  await page.settle();
  const caps = page.last('lti.capabilities');
  assert.equal(caps.to, 'parent');
  assert.equal(caps.origin, '*');
  assert.deepEqual(Object.keys(caps.message).sort(), ['message_id', 'subject'], 'no data with *');
  // The capabilities answer must come from the parent window.
  const capsAnswer = {
    subject: 'lti.capabilities.response',
    message_id: caps.message.message_id,
    supported_messages: [{ subject: 'lti.put_data', frame: 'post_message_forwarding' }],
  };
  await page.deliver(capsAnswer, { source: page.storage });
  assert.equal(page.last('lti.put_data'), undefined, 'an answer from another window does not count');
  await page.deliver(capsAnswer, { source: page.parent, origin: 'https://any.example' });

  const puts = page.sent.filter((s) => s.message.subject === 'lti.put_data');
  assert.equal(puts.length, 2);
  for (const put of puts) {
    assert.equal(put.to, 'storage');
    assert.equal(put.origin, PLATFORM);
  }
  assert.deepEqual(
    puts.map((p) => [p.message.key, p.message.value]),
    [[`state_${STATE}`, `${STATE}.${PROOF}`], ['nonce_N', 'N']],
  );
  assert.equal(page.location.replacedWith, null, 'waits for the acknowledgements');
  // A foreign acknowledgement does not count.
  for (const put of puts) {
    await page.deliver({ subject: 'lti.put_data.response', message_id: put.message.message_id }, { origin: 'https://evil.example' });
  }
  assert.equal(page.location.replacedWith, null);
  for (const put of puts) {
    await page.deliver({ subject: 'lti.put_data.response', message_id: put.message.message_id, key: put.message.key });
  }
  assert.equal(page.location.replacedWith, `${PLATFORM}/auth?state=${STATE}`);
});

test('login: a platform without put_data, or no answer at all, still goes on to the auth endpoint', async () => {
  const page = run('login');
  await page.settle();
  const caps = page.last('lti.capabilities');
  await page.deliver(
    { subject: 'lti.capabilities.response', message_id: caps.message.message_id, supported_messages: [{ subject: 'lti.capabilities' }] },
    { source: page.parent },
  );
  assert.equal(page.last('lti.put_data'), undefined, 'no storage offered: nothing stored');
  assert.equal(page.location.replacedWith, `${PLATFORM}/auth?state=${STATE}`);

  const silent = run('login');
  await silent.settle();
  await silent.expire(); // capabilities unanswered: put_data is tried anyway
  assert.equal(silent.sent.filter((s) => s.message.subject === 'lti.put_data').length, 2);
  assert.equal(silent.location.replacedWith, null);
  await silent.expire(); // put_data unanswered too
  assert.equal(silent.location.replacedWith, `${PLATFORM}/auth?state=${STATE}`);

  const top = run('login', {}, { framed: false });
  await top.settle();
  assert.equal(top.sent.length, 0, 'a top-level login has no storage to use');
  assert.equal(top.location.replacedWith, `${PLATFORM}/auth?state=${STATE}`);
});
