// Drives voxd's dashboard in Debian's chromium as an operator would, and reports what happened.
// Usage: node dashboard.mjs BASE_URL EMAIL PASSWORD IDS_JSON [SCREENSHOT_DIR]
//   IDS_JSON: {"script_id", "execution_id", "revoke_key_id", "endpoint_id", "to_number"}
// Prints one JSON line; exits non-zero when a step failed.
import { chromium } from 'playwright-core';

const [base, email, password, idsJson, shots] = process.argv.slice(2);
const ids = JSON.parse(idsJson);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const report = { external_requests: [], failed_requests: [], errors: [], steps: [] };
const step = name => report.steps.push(name);
const shot = async (page, name) => {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: false });
};

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('request', r => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:')) report.external_requests.push(r.url());
  });
  page.on('response', r => { if (r.status() >= 400) report.failed_requests.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on('pageerror', e => report.errors.push(`page error: ${e}`));
  page.on('dialog', d => d.accept());

  // Sign in: the dashboard sends a stranger to the form.
  await page.goto(`${base}/`);
  report.sign_in_url = new URL(page.url()).pathname;
  await shot(page, 'sign-in');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);
  await page.getByRole('heading', { name: 'Calls' }).waitFor();
  step('signed in');

  // Place a call from the page and watch it reach `ended` without reloading.
  await page.evaluate(() => { window.__notReloaded = true; });
  await page.locator('summary', { hasText: 'Place a call' }).click();
  const form = page.locator('#place-call');
  await form.getByLabel('Phone number').fill(ids.to_number);
  await form.getByLabel('First name').fill('Ava');
  await form.getByRole('button', { name: 'Place call' }).click();
  await page.locator('#toast', { hasText: 'Call created' }).waitFor();
  const row = page.locator('#view tbody tr').first();
  await row.locator('.badge', { hasText: 'ended' }).waitFor({ timeout: 60000 });
  report.live_without_reload = await page.evaluate(() => window.__notReloaded === true);
  report.call_row = await row.innerText();
  await shot(page, 'calls');
  step('call ended live');

  // Its transcript, timeline and analysis.
  await row.locator('a').first().click();
  await page.locator('#transcript .turn').first().waitFor();
  report.transcript_turns = await page.locator('#transcript .turn').count();
  report.call_page = await page.locator('#view').innerText();
  await shot(page, 'call');
  step('transcript open');

  // A broken script shows its problem at its line and is not saved.
  await page.goto(`${base}/#/scripts/${ids.script_id}`);
  const editor = page.locator('#script-yaml');
  await editor.waitFor();
  const yaml = await editor.inputValue();
  await editor.fill(yaml.replace('next: feedback', 'next: nowhere'));
  await page.getByRole('button', { name: 'Check' }).click();
  await page.locator('#script-problems li', { hasText: 'nowhere' }).waitFor();
  report.script_problem = await page.locator('#script-problems li', { hasText: 'nowhere' }).innerText();
  await page.locator('#save-script').click();
  await page.locator('#toast', { hasText: 'Not saved' }).waitFor();
  await shot(page, 'script');
  // Simulated against a persona in the page.
  await editor.fill(yaml);
  await page.locator('#persona').selectOption('busy');
  await page.locator('#simulate').click();
  await page.locator('#simulation .turn').first().waitFor();
  report.simulation = await page.locator('#simulation').innerText();
  // "Try it": the softphone opens signed in (no API key), on this script.
  const [softphone] = await Promise.all([
    context.waitForEvent('page'),
    page.getByRole('link', { name: 'Try it in the softphone' }).click(),
  ]);
  await softphone.waitForFunction(() => document.getElementById('script').value !== '');
  report.softphone_script = await softphone.locator('#script').inputValue();
  report.softphone_status = await softphone.locator('#status').innerText();
  await softphone.close();
  step('script checked');

  // Retry a dead-lettered execution.
  await page.goto(`${base}/#/executions/${ids.execution_id}`);
  await page.locator('#retry-execution').click();
  await page.locator('#toast', { hasText: 'Retry queued' }).waitFor();
  await page.locator('h1 .badge').filter({ hasNotText: 'Dead Letter' }).waitFor();
  report.execution_status_after_retry = await page.locator('h1 .badge').innerText();
  await shot(page, 'execution');
  step('execution retried');

  // Revoke a key, and make one (shown once).
  await page.goto(`${base}/#/settings`);
  await page.locator(`button[data-key="${ids.revoke_key_id}"]`).click();
  await page.locator(`tr[data-key-row="${ids.revoke_key_id}"] .badge`, { hasText: 'revoked' }).waitFor();
  await page.locator('#create-key').getByLabel('Label').fill('From the dashboard');
  await page.locator('#create-key').getByRole('button', { name: 'Create key' }).click();
  report.new_key = (await page.locator('#key-secret').innerText()).trim();
  await shot(page, 'settings');
  step('keys managed');

  // A webhook endpoint's secret is rotated and shown once.
  await page.goto(`${base}/#/webhooks/${ids.endpoint_id}`);
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  report.rotated_secret = (await page.locator('#new-secret').innerText()).trim();
  step('secret rotated');

  // A campaign is paused from its page; a number goes on the do-not-call list.
  await page.goto(`${base}/#/campaigns`);
  await page.getByRole('link', { name: 'Open house follow-up' }).click();
  await page.locator('#campaign-pause').click();
  await page.locator('h1 .badge', { hasText: 'paused' }).waitFor();
  await page.locator('#campaign-resume').waitFor();
  await shot(page, 'campaign');
  await page.goto(`${base}/#/dnc`);
  await page.locator('#add-dnc').getByLabel('Number').fill('0412 999 000');
  await page.locator('#add-dnc').getByLabel('Reason').fill('asked on the phone');
  await page.locator('#add-dnc').getByRole('button', { name: 'Add to the list' }).click();
  await page.locator('#view td', { hasText: '+61412999000' }).waitFor();
  step('campaign paused, number listed');

  // The other pages render for the README.
  for (const [name, hash, heading] of [['contacts', '#/contacts', 'Contacts'], ['automations', '#/automations', 'Automations'], ['webhooks', '#/webhooks', 'Webhook endpoints']]) {
    await page.goto(`${base}/${hash}`);
    await page.getByRole('heading', { name: heading }).waitFor();
    await shot(page, name);
  }
  step('pages rendered');
} catch (e) {
  report.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
process.exit(report.errors.length ? 1 : 0);
