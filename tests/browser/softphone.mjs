// Calls a Script from voxd's /softphone in Debian's chromium, its microphone a WAV file.
// Usage: node softphone.mjs BASE KEY SCRIPT_ID CONTACT_ID WAV [QUERY] [HANGUP_AFTER_MS] [KEYS]
// QUERY (e.g. `?processing=off`) is added to the page's URL; KEYS are pressed on the page's keypad
// two seconds into the call, half a second apart.
// Prints one JSON line: what the page saw (status, live transcript, assistant audio heard, result).
import { chromium } from 'playwright-core';

const [base, key, scriptId, contactId, wav, query, hangupAfter, keys] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${wav}%noloop`,
    '--autoplay-policy=no-user-gesture-required',
  ],
});
const report = { errors: [], failed_requests: [] };
try {
  const context = await browser.newContext({ permissions: ['microphone'] });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => report.errors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) report.failed_requests.push(`${r.status()} ${r.url()}`); });
  await page.goto(`${base}/softphone${query ?? ''}`, { waitUntil: 'load' });
  await page.getByLabel('API key').fill(key);
  await page.getByLabel('API key').dispatchEvent('change');
  await page.locator(`#script option[value="${scriptId}"]`).waitFor({ state: 'attached' });
  await page.getByLabel('Script').selectOption(scriptId);
  await page.getByLabel('Contact').selectOption(contactId);
  await page.getByRole('button', { name: 'Call' }).click();
  await page.waitForFunction(() => window.softphone.status === 'confirmed' || window.softphone.status === 'failed'
    || window.softphone.status === 'error', null, { timeout: 20000 });
  for (const [i, k] of [...(keys ?? '')].entries()) {
    await page.waitForTimeout(i === 0 ? 2000 : 500);
    await page.locator('#keypad').getByRole('button', { name: k, exact: true }).click();
  }
  if (hangupAfter) {
    await page.waitForTimeout(Number(hangupAfter));
    await page.getByRole('button', { name: 'Hang up' }).click();
  }
  // The call ends (the Script hangs up, or we did), then the page shows the result.
  await page.waitForFunction(() => ['ended', 'failed', 'error'].includes(window.softphone.status), null, { timeout: 90000 });
  await page.waitForFunction(() => window.softphone.result !== null || window.softphone.status !== 'ended', null, { timeout: 30000 })
    .catch(() => report.errors.push('no result shown within 30 s'));
  Object.assign(report, await page.evaluate(() => ({ ...window.softphone })));
  report.status_text = await page.locator('#status').innerText();
  report.transcript_items = await page.locator('#transcript li').count();
  report.recording_src = await page.locator('#recording').getAttribute('src');
} catch (e) {
  report.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
process.exit(report.errors.length ? 1 : 0);
