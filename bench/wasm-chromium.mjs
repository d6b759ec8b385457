// Times the engine compiled to WebAssembly (crosstalk-bench's `simulate_big_run`) in headless
// Chromium, the browser the page's tests and benchmarks use, whose V8 is years newer than
// Node's. Usage: node --experimental-websocket bench/wasm-chromium.mjs FILE.wasm [RUNS].
// Prints each run, then `events seconds` (the fastest) on the last line, as bench/wasm.mjs.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [file, runsText] = process.argv.slice(2);
const runs = Number(runsText || 5);
const wasm = readFileSync(file).toString("base64");
const profile = mkdtempSync(join(tmpdir(), "crosstalk-wasm-bench-"));
const port = 20000 + Math.floor(Math.random() * 20000);
const chromium = spawn("chromium", [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage", `--user-data-dir=${profile}`, `--remote-debugging-port=${port}`,
  "about:blank",
], { stdio: "ignore" });
const quit = code => {
  chromium.once("exit", () => {
    // Retried: Chromium's child processes can still write to the profile just after the browser
    // process exits, and the removal then fails with ENOTEMPTY.
    rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    process.exit(code);
  });
  chromium.kill();
};
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

let targets;
for (let i = 0; i < 100 && !targets; i++) {
  try { targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json(); } catch { await sleep(200); }
}
if (!targets) { console.error("headless Chromium gave no DevTools endpoint in 20 s"); quit(1); }
const socket = new WebSocket(targets.find(t => t.type === "page").webSocketDebuggerUrl);
await new Promise(resolve => { socket.onopen = resolve; });
const pending = new Map();
let lastId = 0;
socket.onmessage = message => {
  const reply = JSON.parse(message.data);
  pending.get(reply.id)?.(reply);
  pending.delete(reply.id);
};
const evaluate = expression => new Promise(resolve => {
  lastId += 1;
  pending.set(lastId, resolve);
  socket.send(JSON.stringify({ id: lastId, method: "Runtime.evaluate", params: { expression, awaitPromise: true, returnByValue: true } }));
});
// The same loop as bench/wasm.mjs, in the page.
const reply = await evaluate(`(async () => {
  const bytes = Uint8Array.from(atob(${JSON.stringify(wasm)}), c => c.charCodeAt(0));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const simulate = instance.exports.simulate_big_run;
  simulate(); // warm-up
  const times = [];
  let events = 0;
  for (let i = 0; i < ${runs}; i++) {
    const started = performance.now();
    events = simulate();
    times.push((performance.now() - started) / 1000);
  }
  return [events, times, navigator.userAgent];
})()`);
const value = reply.result?.result?.value;
if (!value) { console.error("the benchmark failed in Chromium:", JSON.stringify(reply)); quit(1); }
const [events, times, agent] = value;
console.error(`in ${agent.match(/(Headless)?Chrome\/[0-9.]+/)?.[0] ?? agent}`);
times.forEach((t, i) => console.log(`run ${i + 1}: ${events} events in ${t.toFixed(3)} s`));
console.log(`${events} ${Math.min(...times)}`);
quit(0);
