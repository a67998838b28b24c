import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumHeadlessShell } from '../support/chromium.js';
import { BC_TRAIN, SHIFTS, runInferd, shiftedTestCopy, tempDir } from './support.js';

describe('the HTML drift report in a real browser', () => {
  let dir: string;
  let browser: Browser;
  let html: string;

  beforeAll(async () => {
    dir = await tempDir();
    html = path.join(dir, 'report.html');
    const shifted = await shiftedTestCopy(dir);
    const r = await runInferd(['drift', '--reference', BC_TRAIN, '--current', shifted, '--output', 'label', '--html', html, '--model', 'breast_cancer']);
    expect(r.code).toBe(0);
    browser = await chromium.launch({ executablePath: chromiumHeadlessShell(), args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is self-contained: no scripts, no external resources', async () => {
    const text = await readFile(html, 'utf8');
    expect(text).not.toMatch(/<script|<link|@import|url\(|src=/i);
    expect(text).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('renders the decision, every column and one overlaid chart per column', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    const requests: string[] = [];
    page.on('request', (req) => requests.push(req.url()));
    await page.goto(pathToFileURL(html).href);
    expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);

    await expect(page.locator('h1').textContent()).resolves.toContain('breast_cancer');
    const decision = (await page.locator('#decision').innerText()).replace(/\s+/g, ' ');
    expect(decision).toContain('3 of 30 input columns drifted');
    expect(decision).toContain('severity severe');

    const rows = page.locator('#summary tbody tr');
    expect(await rows.count()).toBe(31);
    const driftedRows = await page.locator('#summary tbody tr.drifted td:first-child').allInnerTexts();
    expect(driftedRows.sort()).toEqual(Object.keys(SHIFTS).sort());

    const cards = page.locator('#charts .card');
    expect(await cards.count()).toBe(31);
    // drifted columns come first, each with a visible chart holding both series
    const firstThree = await page.locator('#charts .card').evaluateAll((els) => els.slice(0, 3).map((e) => e.getAttribute('data-column')));
    expect(firstThree.sort()).toEqual(Object.keys(SHIFTS).sort());
    const radius = page.locator('#charts .card[data-column="mean_radius"] svg');
    expect(await radius.isVisible()).toBe(true);
    const box = await radius.boundingBox();
    expect(box!.width).toBeGreaterThan(300);
    expect(box!.height).toBeGreaterThan(100);
    expect(await radius.locator('rect.bar-ref').count()).toBe(20);
    expect(await radius.locator('rect.bar-cur').count()).toBe(20);
    const heights = await radius.locator('rect.bar-cur').evaluateAll((els) => els.map((e) => Number(e.getAttribute('height'))));
    expect(heights.some((h) => h > 10)).toBe(true);
    expect(await page.locator('#charts .card[data-column="label"] svg rect.bar-ref').count()).toBe(2);

    const screenshot = path.join(dir, 'report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    expect((await stat(screenshot)).size).toBeGreaterThan(50_000);
    if (process.env['INFERD_KEEP_SCREENSHOT']) await writeFile(process.env['INFERD_KEEP_SCREENSHOT'], await readFile(screenshot));
    await page.close();
  });
});
