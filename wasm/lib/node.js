// node.js - the entry of the Node bundles (dist/index.mjs, dist/index.cjs;
// scripts/build-bundles.mjs): the package with host-node.js imported
// statically, so that the first call does not wait for a module of its own
// (~4 ms), and with workers started from the CommonJS bundle of their
// entry (dist/worker-node.cjs). index.js imports host-node.js only at the
// first call, by a specifier bundlers do not follow: a browser bundle must
// never see a `node:` module.
import * as host from './host-node.js';
import { useHost } from './loader.js';

useHost(host);
// (In the bundles import.meta.url is lib/loader.js's URL: build-bundles.mjs.)
host.useWorkerEntry(new URL('../dist/worker-node.cjs', import.meta.url));
export * from '../index.js';
