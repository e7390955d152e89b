import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chooseChromium, SYSTEM_CHROMIUM } from './browser.ts';

const saved = process.env.DANN_BROWSER;
afterEach(() => {
  if (saved === undefined) delete process.env.DANN_BROWSER;
  else process.env.DANN_BROWSER = saved;
});

test('DANN_BROWSER=npm: the Chromium shipped in @sparticuz/chromium, unpacked once with its own libraries and font', async () => {
  process.env.DANN_BROWSER = 'npm';
  const choice = await chooseChromium();
  assert.equal(choice.kind, 'npm');
  assert.match(choice.describe, /^@sparticuz\/chromium \d+\.\d+\.\d+ \(npm\)$/);
  assert.ok(existsSync(choice.executablePath), choice.executablePath);
  const lib = choice.env!.LD_LIBRARY_PATH.split(':')[0];
  assert.ok(existsSync(join(lib, 'libnss3.so')), `${lib} has the NSS libraries Chromium links against`);
  assert.ok(existsSync(choice.env!.FONTCONFIG_FILE));
  assert.equal(
    (await chooseChromium()).executablePath,
    choice.executablePath,
    'the second call reuses the unpacked browser',
  );
});

test('DANN_BROWSER other than system, npm or auto is one sentence', async () => {
  process.env.DANN_BROWSER = 'chrome';
  await assert.rejects(chooseChromium(), /^Error: DANN_BROWSER=chrome is not one of system, npm or auto\.$/);
});

test("DANN_BROWSER=system: Debian's Chromium where it exists, otherwise one sentence that says what to install", async () => {
  process.env.DANN_BROWSER = 'system';
  if (existsSync(SYSTEM_CHROMIUM)) assert.equal((await chooseChromium()).executablePath, SYSTEM_CHROMIUM);
  else
    await assert.rejects(
      chooseChromium(),
      /^Error: DANN_BROWSER=system but \/usr\/bin\/chromium is missing: apt-get install chromium, or leave DANN_BROWSER unset to use the npm one\.$/,
    );
});
