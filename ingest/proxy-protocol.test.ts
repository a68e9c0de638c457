import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyHeader, ProxyHeaderReader, V2_MAX_PAYLOAD_BYTES } from './proxy-protocol.ts';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: version/command byte, family byte, then the address block and TLVs. */
function v2(verCmd: number, fam: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([SIG, Buffer.from([verCmd, fam]), len, body]);
}
const ports = (s: number, d: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(s, 0);
  b.writeUInt16BE(d, 2);
  return b;
};
const tlv = (type: number, value: string) => {
  const b = Buffer.alloc(3);
  b[0] = type;
  b.writeUInt16BE(Buffer.byteLength(value), 1);
  return Buffer.concat([b, Buffer.from(value)]);
};

test('v1 TCP4, TCP6 and UNKNOWN', () => {
  const tcp4 = Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 56324 1935\r\n\x03rest');
  const r = parseProxyHeader(tcp4);
  assert.equal(r.kind, 'header');
  if (r.kind !== 'header') return;
  assert.equal(r.length, tcp4.indexOf('\x03'));
  assert.deepEqual(r.header, {
    version: 1,
    command: 'proxy',
    transport: 'tcp4',
    source: { address: '203.0.113.7', port: 56324 },
    destination: { address: '192.0.2.1', port: 1935 },
    tlvs: [],
  });

  const tcp6 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 4000 1935\r\n'));
  assert.equal(tcp6.kind === 'header' && tcp6.header.source?.address, '2001:db8::7');

  const unknown = parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'));
  assert.equal(unknown.kind === 'header' && unknown.header.transport, 'unknown');
  assert.equal(unknown.kind === 'header' && unknown.header.source, undefined);
  const unknownWithJunk = parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'));
  assert.equal(unknownWithJunk.kind === 'header' && unknownWithJunk.length, 35);
});

test('v1 garbage is invalid, with a reason', () => {
  const bad = (s: string | Buffer) => {
    const r = parseProxyHeader(Buffer.isBuffer(s) ? s : Buffer.from(s));
    assert.equal(r.kind, 'invalid', String(s));
    return r.kind === 'invalid' ? r.reason : '';
  };
  assert.match(bad('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), /must be "PROXY/);
  assert.match(bad('PROXY TCP4 ::1 ::2 1 2\r\n'), /not TCP4 addresses/);
  assert.match(bad('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'), /not TCP6 addresses/);
  assert.match(bad('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), /TCP4, TCP6 or UNKNOWN/);
  assert.match(bad('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), /ports/);
  assert.match(bad('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n'), /ports/);
  assert.match(bad('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), /must be "PROXY/);
  assert.match(bad(`PROXY ${'x'.repeat(200)}`), /longer than 107/);
});

test('v2 TCP4, TCP6 with TLVs, LOCAL, UNSPEC', () => {
  const addr4 = Buffer.from([203, 0, 113, 7, 192, 0, 2, 1]);
  const h4 = v2(0x21, 0x11, addr4, ports(40000, 1935), tlv(0x05, 'unique-id-1'), tlv(0x01, 'h2'));
  const r4 = parseProxyHeader(Buffer.concat([h4, Buffer.from([3])]));
  assert.equal(r4.kind, 'header');
  if (r4.kind !== 'header') return;
  assert.equal(r4.length, h4.length);
  assert.deepEqual(r4.header.source, { address: '203.0.113.7', port: 40000 });
  assert.deepEqual(r4.header.destination, { address: '192.0.2.1', port: 1935 });
  assert.deepEqual(
    r4.header.tlvs.map((t) => [t.type, t.value.toString()]),
    [
      [0x05, 'unique-id-1'],
      [0x01, 'h2'],
    ],
  );

  const src6 = Buffer.from('20010db8000000000000000000000007', 'hex');
  const dst6 = Buffer.from('00000000000000000000ffffc0000201', 'hex'); // ::ffff:192.0.2.1
  const r6 = parseProxyHeader(v2(0x21, 0x21, src6, dst6, ports(1, 2)));
  assert.equal(r6.kind === 'header' && r6.header.source?.address, '2001:db8::7');
  assert.equal(r6.kind === 'header' && r6.header.destination?.address, '192.0.2.1');
  const full6 = parseProxyHeader(v2(0x21, 0x21, Buffer.from('fe800001000200030004000500060007', 'hex'), src6, ports(1, 2)));
  assert.equal(full6.kind === 'header' && full6.header.source?.address, 'fe80:1:2:3:4:5:6:7');

  // LOCAL (a health check from the balancer itself): no client address, whatever follows.
  const local = parseProxyHeader(v2(0x20, 0x11, addr4, ports(1, 2)));
  assert.equal(local.kind === 'header' && local.header.command, 'local');
  assert.equal(local.kind === 'header' && local.header.source, undefined);
  const unspec = parseProxyHeader(v2(0x21, 0x00));
  assert.equal(unspec.kind === 'header' && unspec.header.source, undefined);
  assert.equal(unspec.kind === 'header' && unspec.length, 16);
});

test('v2 garbage and truncation', () => {
  const addr4 = Buffer.concat([Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), ports(1, 2)]);
  const reason = (b: Buffer) => {
    const r = parseProxyHeader(b);
    assert.equal(r.kind, 'invalid');
    return r.kind === 'invalid' ? r.reason : '';
  };
  assert.match(reason(v2(0x11, 0x11, addr4)), /version nibble is 1/);
  assert.match(reason(v2(0x22, 0x11, addr4)), /command 2/);
  assert.match(reason(v2(0x21, 0x11, Buffer.alloc(4))), /needs 12 bytes/);
  assert.match(reason(v2(0x21, 0x11, addr4, Buffer.from([0x05, 0x00, 0x09, 0x41]))), /overruns/);
  assert.match(reason(v2(0x21, 0x11, addr4, Buffer.from([0x05, 0x00]))), /TLV header truncated/);
  assert.match(reason(v2(0x21, 0x11, addr4, Buffer.alloc(V2_MAX_PAYLOAD_BYTES))), /exceeds/);

  // A header whose declared length has not all arrived is incomplete, not invalid.
  const whole = v2(0x21, 0x11, addr4, tlv(0x05, 'abc'));
  for (let n = 1; n < whole.length; n++) assert.equal(parseProxyHeader(whole.subarray(0, n)).kind, 'incomplete', `${n} bytes`);
  const v1 = Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n');
  for (let n = 1; n < v1.length; n++) assert.equal(parseProxyHeader(v1.subarray(0, n)).kind, 'incomplete', `${n} bytes`);
});

test('bytes that cannot start a PROXY header are not one (an RTMP handshake, HTTP)', () => {
  assert.equal(parseProxyHeader(Buffer.from([3, 0, 0, 0])).kind, 'none');
  assert.equal(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'none');
  assert.equal(parseProxyHeader(Buffer.from('PROXZ')).kind, 'none');
  assert.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01])).kind, 'none');
  assert.equal(parseProxyHeader(Buffer.alloc(0)).kind, 'incomplete');
});

test('the reader takes a header split across TCP packets and hands back the bytes after it', () => {
  const header = v2(0x21, 0x11, Buffer.from([198, 51, 100, 9, 10, 0, 0, 1]), ports(5000, 1935), tlv(0x05, 'id'));
  const stream = Buffer.concat([header, Buffer.from([3, 0xaa, 0xbb])]);
  const reader = new ProxyHeaderReader();
  let out: ReturnType<ProxyHeaderReader['push']> | undefined;
  for (let i = 0; i < stream.length && out?.kind !== 'header'; i += 5) out = reader.push(stream.subarray(i, i + 5));
  assert.equal(out?.kind, 'header');
  if (out?.kind !== 'header') return;
  assert.equal(out.header.source?.address, '198.51.100.9');
  // Whatever came with the header's last packet is the client's own stream.
  assert.deepEqual([...out.rest], [...stream.subarray(header.length, Math.ceil((header.length + 1) / 5) * 5)]);

  const plain = new ProxyHeaderReader().push(Buffer.from([3, 1, 2]));
  assert.deepEqual(plain.kind === 'none' && [...plain.rest], [3, 1, 2]);
  const v1 = new ProxyHeaderReader();
  assert.equal(v1.push(Buffer.from('PROX')).kind, 'incomplete');
  assert.equal(v1.push(Buffer.from('Y TCP4 1.2.3.4 5.6')).kind, 'incomplete');
  const done = v1.push(Buffer.from('.7.8 1 2\r\n\x03'));
  assert.equal(done.kind === 'header' && done.header.source?.address, '1.2.3.4');
  assert.deepEqual(done.kind === 'header' && [...done.rest], [3]);
});
