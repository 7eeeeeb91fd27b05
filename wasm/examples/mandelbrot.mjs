// mandelbrot.mjs - mapKernel over image rows, written as a PGM/PPM file.
//   node examples/mandelbrot.mjs out.ppm [width] [height]
import { writeFileSync } from 'node:fs';
import { mapKernel } from 'parmap-wasm';

const [file = 'mandelbrot.ppm', width = 800, height = 600] = process.argv.slice(2);
const w = +width, h = +height;
const rows = Int32Array.from({ length: h }, (_, y) => y);
const t0 = performance.now();
const rgba = await mapKernel('mandelbrot_row', rows, { width: w, height: h, maxIter: 500 });
const rgb = Buffer.alloc(w * h * 3);
for (let i = 0, j = 0; i < rgba.length; i += 4) { rgb[j++] = rgba[i]; rgb[j++] = rgba[i + 1]; rgb[j++] = rgba[i + 2]; }
writeFileSync(file, Buffer.concat([Buffer.from(`P6\n${w} ${h}\n255\n`), rgb]));
console.log(`${file}: ${w}x${h} in ${(performance.now() - t0).toFixed(0)} ms`);
