// The node's own ports that SNAT leaves out (src/agent/ports.ts), from /proc files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { nodePortsIn, parsePortList, parseProcNetPorts } from '../../src/agent/ports.js';

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const TCP = HEAD
  + '   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0\n'   // :8080 listening
  + '   1: 0100007F:EA60 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0\n';  // :60000 connected
const UDP = HEAD + '  10: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0\n'; // :53

test('TCP listeners and bound UDP sockets; connected TCP sockets are not listeners', () => {
  assert.deepEqual(parseProcNetPorts(TCP, true), [8080]);
  assert.deepEqual(parseProcNetPorts(UDP, false), [53]);
  assert.deepEqual(parseProcNetPorts('', true), []);
});

test('port lists: ip_local_port_range and ip_local_reserved_ports forms', () => {
  assert.deepEqual(parsePortList('32768\t60999\n'), [{ min: 32768, max: 60999 }]);
  assert.deepEqual(parsePortList('8081,9000-9002\n'), [{ min: 8081, max: 8081 }, { min: 9000, max: 9002 }]);
  assert.deepEqual(parsePortList('\n'), []);
});

test('nodePortsIn: listeners, the local port range and reserved ports, only inside the SNAT range', async () => {
  const proc = mkdtempSync(join(tmpdir(), 'xlb-proc-'));
  try {
    mkdirSync(join(proc, 'self/net'), { recursive: true });
    mkdirSync(join(proc, 'sys/net/ipv4'), { recursive: true });
    writeFileSync(join(proc, 'self/net/tcp'), TCP);
    writeFileSync(join(proc, 'self/net/udp'), UDP);
    writeFileSync(join(proc, 'sys/net/ipv4/ip_local_port_range'), '9500\t9509\n');
    writeFileSync(join(proc, 'sys/net/ipv4/ip_local_reserved_ports'), '9000-9001\n');
    const got = [...await nodePortsIn({ min: 8000, max: 9505 }, proc)].sort((a, b) => a - b);
    assert.deepEqual(got, [8080, 9000, 9001, 9500, 9501, 9502, 9503, 9504, 9505]);
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});
