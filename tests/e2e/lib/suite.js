'use strict';
// Starts a private dogwatch suite (the real `agent run`, supervising the real trace-agent) on the
// local intake, and reads back what the intake decoded.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BIN_DIR = process.env.DOGWATCH_BIN_DIR || path.resolve(__dirname, '../../../build/bin');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

async function getJson(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

class Suite {
  // options.yaml: extra YAML lines (they may override dogstatsd_port / dogstatsd_socket).
  static async start(options = {}) {
    const extraYaml = typeof options === 'string' ? options : (options.yaml || '');
    const suite = new Suite();
    suite.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dogwatch-e2e-'));
    fs.chmodSync(suite.dir, 0o755);
    suite.intakePort = await freePort();
    suite.tracePort = await freePort();
    suite.healthPort = await freePort();
    suite.apmSocket = path.join(suite.dir, 'apm.socket');
    suite.config = path.join(suite.dir, 'dogwatch.yaml');
    fs.writeFileSync(suite.config, [
      `run_path: ${suite.dir}`,
      'log_level: debug',
      `health_port: ${suite.healthPort}`,
      'health_bind_host: 127.0.0.1',
      `agent_ipc:\n  socket: ${path.join(suite.dir, 'agent.sock')}`,
      `local_intake:\n  port: ${suite.intakePort}`,
      `supervisor:\n  enabled: true\n  bin_dir: ${BIN_DIR}`,
      `apm_config:\n  enabled: true\n  receiver_port: ${suite.tracePort}\n  receiver_socket: ${suite.apmSocket}`,
      /^dogstatsd_port:/m.test(extraYaml) ? '' : 'dogstatsd_port: 0',
      /^dogstatsd_socket:/m.test(extraYaml) ? '' : 'dogstatsd_socket: ""',
      extraYaml,
    ].join('\n') + '\n');
    suite.log = fs.openSync(path.join(suite.dir, 'agent.log'), 'w');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DD_')));
    suite.proc = spawn(path.join(BIN_DIR, 'agent'), ['-c', suite.config, 'run'], {
      env, stdio: ['ignore', suite.log, suite.log],
    });
    await waitFor('the trace-agent to listen', async () => {
      const res = await fetch(`http://127.0.0.1:${suite.tracePort}/info`);
      return res.ok;
    });
    return suite;
  }

  intakeUrl(p) { return `http://127.0.0.1:${this.intakePort}${p}`; }
  traceUrl() { return `http://127.0.0.1:${this.tracePort}`; }

  // Decoded payloads the local intake received on `intakePath`.
  async payloads(intakePath) {
    const list = await getJson(this.intakeUrl(`/dogwatch/intake/payloads?path=${intakePath}&limit=1000`));
    const out = [];
    for (const meta of list) {
      if (meta.path !== intakePath) continue;
      const decoded = await getJson(this.intakeUrl(`/dogwatch/intake/payloads/${meta.seq}`));
      out.push({ meta, decoded });
    }
    return out;
  }

  async status() {
    return new Promise((resolve, reject) => {
      const child = spawn(path.join(BIN_DIR, 'agent'), ['-c', this.config, 'status', '--json']);
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`status exit ${code}`))));
    });
  }

  agentLog() { return fs.readFileSync(path.join(this.dir, 'agent.log'), 'utf8'); }

  async stop() {
    if (this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      await waitFor('the agent to exit', () => this.proc.exitCode !== null, 20000);
    }
    fs.closeSync(this.log);
    if (!process.env.DOGWATCH_KEEP_E2E) fs.rmSync(this.dir, { recursive: true, force: true });
    return this.proc.exitCode;
  }
}

// Runs a node script (an app instrumented by the real dd-trace) to completion.
function runApp(script, env, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DD_')));
    const child = spawn(process.execPath, [script], { env: { ...clean, ...env }, cwd: path.dirname(script) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`app timed out\n${stderr}`)); }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

module.exports = { Suite, runApp, waitFor, freePort, sleep, BIN_DIR };
