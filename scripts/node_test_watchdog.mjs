// scripts/node_test_watchdog.mjs - preloaded into every `node --test` file of
// the Node and browser suites (--import): once a file's tests have finished,
// its process must exit by itself within EXIT_GRACE_MS. A worker, a timer or
// a socket left referenced would otherwise keep that process alive, and
// `node --test` would wait for it forever (a hung CI instead of a failure).
// The timer is unreferenced: it fires only when something else keeps the
// process alive, and then fails the file, naming what is still open.
// Per-test hangs are bounded separately (--test-timeout in the scripts).
import { after } from 'node:test';

const EXIT_GRACE_MS = Number(process.env.PARMAP_EXIT_GRACE_MS) || 20000;

after(() => {
  const timer = setTimeout(() => {
    const open = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
    console.error(`# watchdog: ${process.argv[1]} did not exit ${EXIT_GRACE_MS} ms after its tests ` +
      `(still open: ${open.join(', ') || 'nothing reported'})`);
    process.exit(1);
  }, EXIT_GRACE_MS);
  timer.unref();
});
