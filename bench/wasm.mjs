// Times the engine compiled to WebAssembly (crosstalk-bench's `simulate_big_run`) under Node,
// whose WebAssembly engine is Chromium's V8. Usage: node bench/wasm.mjs FILE.wasm [RUNS].
// Prints each run, then `events seconds` (the fastest) on the last line.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const [file, runsText] = process.argv.slice(2);
const runs = Number(runsText || 5);
const { instance } = await WebAssembly.instantiate(readFileSync(file), {});
const simulate = instance.exports.simulate_big_run;
simulate(); // warm-up
const times = [];
let events = 0;
for (let i = 0; i < runs; i++) {
  const started = performance.now();
  events = simulate();
  times.push((performance.now() - started) / 1000);
  console.log(`run ${i + 1}: ${events} events in ${times[i].toFixed(3)} s`);
}
console.log(`${events} ${Math.min(...times)}`);
