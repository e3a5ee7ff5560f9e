import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { buildServer } from '../../src/server/app';
import type { Context } from '../../src/store';

/** Chromium driving the real server on loopback, for the browser flows of test/ui. */

export const CHROMIUM = '/usr/bin/chromium';
// Locally a machine without Chromium skips; under CI=true the launch runs and fails loudly.
export const runBrowser = existsSync(CHROMIUM) || process.env.CI === 'true';

export const TOKEN = 'ui-test-admin-token-abcdef';
const SHOTS = 'test-results/ui';

export interface UiSession {
  base: string;
  app: FastifyInstance;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Script errors seen by the page (a CSP violation, a broken handler): the flows expect none. */
  scriptErrors: string[];
  close(): Promise<void>;
}

export async function openUi(ctx: Context): Promise<UiSession> {
  const app = await buildServer({ ctx, adminToken: TOKEN });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const scriptErrors: string[] = [];
  page.on('pageerror', (e) => scriptErrors.push(e.message));
  page.on('console', (m) => {
    // A 4xx answer to a form is logged as a failed resource; a CSP refusal or a script error is not.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) scriptErrors.push(m.text());
  });
  // Signed in through the one-time `?token=` link, which trades the token for the session cookie.
  await page.goto(`${base}/?token=${TOKEN}`);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  return {
    base,
    app,
    browser,
    context,
    page,
    scriptErrors,
    close: async () => {
      await browser.close();
      await app.close();
    },
  };
}

/** A full-page screenshot under test-results/ui/ (gitignored), one per flow and dialect. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** At 1280 px no table is wider than the box it sits in, and the page does not scroll sideways. */
export async function expectTablesFit(page: Page): Promise<void> {
  // A string: the tests compile without the DOM library; this runs in the page.
  const overflow = (await page.evaluate(`(() => {
    const out = [];
    if (document.documentElement.scrollWidth > window.innerWidth)
      out.push('page ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
    for (const t of document.querySelectorAll('table')) {
      const width = t.getBoundingClientRect().width;
      if (width > t.parentElement.clientWidth + 1)
        out.push('table "' + (t.querySelector('th')?.textContent ?? '').trim() + '" ' + Math.round(width) + ' > ' + t.parentElement.clientWidth);
    }
    return out;
  })()`)) as string[];
  expect(overflow).toEqual([]);
}

/** The text Chromium's clipboard holds (the page was granted clipboard access). */
export function clipboardText(page: Page): Promise<string> {
  return page.evaluate('navigator.clipboard.readText()') as Promise<string>;
}

/**
 * At 1280 px nothing is wider than the card it sits in (or the main column outside cards): no
 * element's scrollWidth exceeds its card's inner width, so no table, code or text scrolls sideways
 * inside its box either. Answers the overflowing elements, described.
 */
export async function cardOverflow(page: Page): Promise<string[]> {
  return (await page.evaluate(`(() => {
    const out = [];
    const seen = new Set();
    for (const el of document.querySelectorAll('main *')) {
      if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;
      const box = el.parentElement.closest('.card') ?? document.querySelector('main');
      const room = box.clientWidth - parseFloat(getComputedStyle(box).paddingLeft) - parseFloat(getComputedStyle(box).paddingRight);
      if (el.scrollWidth <= room + 1) continue;
      seen.add(el);
      // The outermost element that overflows says where; its children would repeat it.
      if (!seen.has(el.parentElement))
        out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') + ' "' + (el.textContent ?? '').trim().slice(0, 40) + '" ' + el.scrollWidth + ' > ' + Math.round(room));
    }
    return out;
  })()`)) as string[];
}

export async function expectFitsCards(page: Page): Promise<void> {
  expect(await cardOverflow(page)).toEqual([]);
}
