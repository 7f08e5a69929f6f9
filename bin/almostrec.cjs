#!/usr/bin/env node
// CLI launcher: runs the built CLI (out/main/cli.js). Build once with `npm run build`.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const cli = join(__dirname, '..', 'out', 'main', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write(`almostrec: the CLI is not built (${cli} is missing); run "npm run build" first\n`);
  process.exit(1);
}
require(cli);
