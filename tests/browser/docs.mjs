// Opens voxd's /docs in Debian's chromium and reports what the reader sees of create-phone-call.
// Usage: node docs.mjs http://127.0.0.1:PORT  → prints one JSON line; exits non-zero on a failure.
import { chromium } from 'playwright-core';

const base = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const report = { external_requests: [], failed_requests: [], errors: [] };
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  page.on('request', r => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:')) report.external_requests.push(r.url());
  });
  page.on('response', r => { if (r.status() >= 400) report.failed_requests.push(`${r.status()} ${r.url()}`); });
  page.on('pageerror', e => report.errors.push(String(e)));
  await page.goto(`${base}/docs`, { waitUntil: 'networkidle' });
  report.title = await page.title();
  // The reader's way in: the sidebar's Calls group, then the operation.
  await page.getByRole('link', { name: 'Calls', exact: true }).first().click();
  await page.locator('a[href="#tag/calls/POST/api/v1/create-phone-call"]').first().click();
  const section = page.locator('section[id$="tag/calls/POST/api/v1/create-phone-call"]').first();
  await section.waitFor();
  await section.getByText('from_number', { exact: true }).first().waitFor();
  report.operation_text = await section.innerText();
  report.try_it = await section.getByRole('button', { name: /test request/i }).count();
} catch (e) {
  report.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
process.exit(report.errors.length ? 1 : 0);
