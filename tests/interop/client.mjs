// wss:// interop check with Node's `ws` package: the client trusts only the
// test CA and verifies the host name.
//
//     node client.mjs WSS_URL CA_FILE
//
// Prints PASS/FAIL lines; exits 1 if any check failed.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.WS_MODULE_DIR + '/');
const WebSocket = require('ws');

const [url, caFile] = process.argv.slice(2);
const ca = readFileSync(caFile);
const results = [];
function check(name, ok, detail = '') {
  results.push(ok);
  console.log(`${ok ? 'PASS' : 'FAIL'} node ${name}${detail ? ': ' + detail : ''}`);
}

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca, maxPayload: 8 << 20 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function next(ws) {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data, isBinary }));
    ws.once('error', reject);
  });
}

async function main() {
  const ws = await open();
  const tls = ws._socket;
  check('tls version', ['TLSv1.2', 'TLSv1.3'].includes(tls.getProtocol()), tls.getProtocol());
  check('alpn', [false, 'http/1.1'].includes(tls.alpnProtocol), String(tls.alpnProtocol));
  ws.send('hello över wss');
  let m = await next(ws);
  check('text echo', !m.isBinary && m.data.toString() === 'hello över wss');
  for (const n of [0, 125, 126, 65535, 65536, 1 << 20]) {
    const data = Buffer.alloc(n);
    for (let i = 0; i < n; i++) data[i] = (i * 31 + n) & 0xff;
    ws.send(data);
    m = await next(ws);
    check(`binary echo ${n} B`, m.isBinary && Buffer.compare(m.data, data) === 0, `${m.data.length} bytes back`);
  }
  const pong = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping(Buffer.from('are you there'));
  check('ping answered', (await pong).toString() === 'are you there');
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  ws.close(1000, 'bye');
  const code = await closed;
  check('close 1000 answered', code === 1000, `close code ${code}`);
}

const timer = setTimeout(() => {
  check('run', false, 'timed out after 30 s');
  process.exit(1);
}, 30000);
main()
  .catch((e) => check('run', false, String(e)))
  .finally(() => {
    clearTimeout(timer);
    process.exit(results.length && results.every(Boolean) ? 0 : 1);
  });
