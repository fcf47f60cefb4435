// KaTeX render server for hooks/katex.py.
//
// Usage: node hooks/katex_render.cjs <path to node_modules/katex>
//
// Protocol: one JSON request per stdin line, one JSON reply per stdout line.
//   request: {"items": [[tex, displayMode], ...]}
//   reply:   {"results": [{"html": "...", "warnings": [...]} | {"error": "..."}, ...]}
// The process exits when stdin closes, so it cannot outlive its parent.
"use strict";

const path = require("path");
const readline = require("readline");

const katexDir = process.argv[2];
if (!katexDir) {
  process.stderr.write("katex_render.cjs: missing path to node_modules/katex\n");
  process.exit(2);
}
const katex = require(path.resolve(katexDir));

function render(tex, displayMode) {
  const warnings = [];
  try {
    const html = katex.renderToString(tex, {
      displayMode,
      throwOnError: true,
      output: "htmlAndMathml",
      // Collect strict-mode complaints and hand them to Python, which logs
      // them as warnings (so `mkdocs build --strict` fails on them).
      strict: (errorCode, errorMsg) => {
        warnings.push(`${errorCode}: ${errorMsg}`);
        return "ignore";
      },
    });
    return warnings.length ? { html, warnings } : { html };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let reply;
  try {
    const req = JSON.parse(line);
    reply = { results: req.items.map(([tex, display]) => render(tex, Boolean(display))) };
  } catch (e) {
    reply = { fatal: e instanceof Error ? e.message : String(e) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
});
rl.on("close", () => process.exit(0));
