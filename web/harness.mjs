// harness.mjs - what the browser tests and the benchmark share: the demo
// server started as the user starts it (node web/serve.mjs, as a child
// process, URL read from its first line), and Debian's Chromium driven by
// playwright-core (which never downloads a browser of its own here).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const webDir = fileURLToPath(new URL('.', import.meta.url));

/** Chromium's path: $CHROMIUM, else the first of the usual names on PATH. */
export function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const c of ['/usr/bin/chromium', 'chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim();
    } catch { /* next */ }
  }
  return null;
}

/** node web/serve.mjs --port 0 [--no-isolation]: { url, close }. */
export async function startServer({ isolation = true } = {}) {
  const args = [path.join(webDir, 'serve.mjs'), '--port', '0'];
  if (!isolation) args.push('--no-isolation');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve.mjs printed no URL in 10 s')), 10000);
    child.once('exit', (code) => reject(new Error(`serve.mjs exited (${code}) before printing its URL`)));
    lines.once('line', (line) => { clearTimeout(timer); resolve(line.trim()); });
  });
  lines.on('line', () => {}); // keep draining
  // A test that dies must not leave the server running.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  return {
    url,
    close: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      process.off('exit', reap);
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/** Headless Chromium through playwright-core, with a fresh profile. */
export async function launchBrowser() {
  const executablePath = findChromium();
  if (!executablePath) throw new Error('no Chromium found (apt-get install chromium, or set CHROMIUM)');
  const { chromium } = await import('playwright-core');
  const profile = await mkdtemp(path.join(tmpdir(), 'parmap-web-'));
  // launchPersistentContext: a user-data-dir of our own (Playwright refuses
  // --user-data-dir in args), so nothing of another run leaks in.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    newPage: (opts) => (opts ? context.newPage().then(async (p) => { await p.setViewportSize(opts.viewport); return p; }) : context.newPage()),
    close: async () => {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Watch a page's <progress id="progress">: every value it takes, in order,
 * recorded by a MutationObserver in the page (window.__progressValues). */
export async function watchProgress(page) {
  await page.evaluate(() => {
    const bar = document.getElementById('progress');
    window.__progressValues = [];
    new MutationObserver(() => window.__progressValues.push(bar.value))
      .observe(bar, { attributes: true, attributeFilter: ['value'] });
  });
  return {
    values: () => page.evaluate(() => window.__progressValues.slice()),
    reset: () => page.evaluate(() => { window.__progressValues.length = 0; }),
  };
}
