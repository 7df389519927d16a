// BPF_PROG_TEST_RUN fixtures for xlb_xdp, xlb_tc_dev and xlb_tc (and the flow cache they
// share, and ARP/NDP for announced addresses): one test per table row.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Datapath } from './harness.js';
import { runRow, type Row } from './rows.js';
import { xdpRows } from './xdp.fixtures.js';
import { tcRows } from './tc.fixtures.js';
import { tcDevRows } from './tcdev.fixtures.js';
import { cacheRows } from './cache.fixtures.js';
import { announceNdpTcDevRows, announceNdpXdpRows, announceTcDevRows, announceXdpRows } from './announce.fixtures.js';
import { twins, unknownNoTwin } from './twin.js';
import { v6Rows } from './v6.fixtures.js';

const v4Tables: Array<[string, Row[]]> = [['xdp', xdpRows], ['tc device', tcDevRows], ['tc', tcRows], ['flow cache', cacheRows]];
const tables: Array<[string, Row[]]> = [
  ...v4Tables,
  ...v4Tables.map(([n, rows]): [string, Row[]] => [`${n} IPv6 twins`, twins(rows)]),
  ['IPv6', v6Rows],
  ['announce xdp', announceXdpRows],
  ['announce tc device', announceTcDevRows],
  ['announce NDP xdp', announceNdpXdpRows],
  ['announce NDP tc device', announceNdpTcDevRows],
];

describe('datapath fixtures (BPF_PROG_TEST_RUN)', () => {
  let d: Datapath;
  before(async () => { d = await Datapath.open('bpf'); });
  after(() => d?.close());

  test('the table has at least 60 rows and unique names', () => {
    const names = tables.flatMap(([, rows]) => rows.map((r) => r.name));
    assert.ok(names.length >= 60, `${names.length} rows`);
    assert.equal(new Set(names).size, names.length);
  });

  test('every row without an IPv6 twin is named as such on purpose', () => {
    assert.deepEqual(unknownNoTwin(v4Tables.flatMap(([, rows]) => rows)), []);
  });

  for (const [prog, rows] of tables) {
    describe(prog, () => {
      for (const row of rows) test(row.name, () => runRow(d, row));
    });
  }
});
