// chromium.mjs - headless Chromium for the browser tests (browser.test.mjs,
// browser.csp.test.mjs, bundlers.test.mjs): Debian's chromium, one fresh
// profile per page, killed with its whole process group when the page has
// posted its result (or after the timeout).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The browser's path, or undefined (the tests then fail saying so). */
export const chromium = ['chromium', 'chromium-browser', 'google-chrome'].map((c) => {
  try { return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim(); } catch { return null; }
}).find(Boolean);

/** Opens url in a fresh headless Chromium and waits for `result` (at most
 * timeoutMs); the browser and its profile are gone when this settles. */
export async function inChromium(url, result, timeoutMs = 60000) {
  const profile = await mkdtemp(path.join(tmpdir(), 'parmap-chromium-'));
  // Its own process group, so that the renderer and zygote processes go too.
  // (TMPDIR: Chromium's singleton socket goes in the profile, removed with it; a
  // killed browser leaves its /tmp/org.chromium.Chromium.* behind otherwise)
  const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-data-dir=${profile}`, url], { stdio: 'ignore', detached: true, env: { ...process.env, TMPDIR: profile } });
  const exited = new Promise((r) => browser.once('exit', r));
  let timer;
  const timeout = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`no result from ${url} in ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([result, timeout]);
  } finally {
    clearTimeout(timer);
    try { process.kill(-browser.pid, 'SIGKILL'); } catch { browser.kill('SIGKILL'); }
    await exited;
    // Chromium's helpers may still be letting go of the profile for a moment.
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}
