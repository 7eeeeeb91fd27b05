// The page of test/browser.csp.test.mjs: parmap on a page whose CSP forbids
// eval. Functions shipped by source must fail clearly; module mode must work.
const report = (o) => fetch('/result', { method: 'POST', body: JSON.stringify(o) });
try {
  // ?entry=bundle: the prebuilt bundle (dist/browser.mjs), else the ES modules.
  const entry = new URLSearchParams(location.search).get('entry') === 'bundle' ? '../dist/browser.mjs' : '../index.js';
  const { parmap, imap, mapKernel, info } = await import(entry);
  const i = await info();
  let evalRefused = null;
  try { await parmap((x) => x * 2, [1, 2]); } catch (e) { evalRefused = { name: e.name, message: e.message }; }
  let evalWorks = true;
  try { new Function('return 1'); } catch { evalWorks = false; }
  const work = new URL('./work.mjs', import.meta.url);
  const sq = await parmap({ module: work, export: 'square' }, [1, 2, 3]);
  const dbl = await parmap({ module: work, export: 'slowDouble' }, Array.from({ length: 40 }, (_, k) => k));
  const st = [];
  for await (const r of imap({ module: work, export: 'square' }, [4, 5])) st.push(r);
  let missing = null;
  try { await parmap({ module: work, export: 'nope' }, [1]); } catch (e) { missing = e.message; }
  const px = await mapKernel('mandelbrot_row', Int32Array.from({ length: 4 }, (_, y) => y), { width: 8, height: 4 });
  report({ ok: true, entry, build: i.build, evalWorks, evalRefused, sq, dblLast: dbl[39], st, missing, kernel: px.length });
} catch (e) {
  report({ ok: false, error: String(e && e.stack || e) });
}
