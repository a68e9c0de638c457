import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentSecurityPolicy, pageHeaders, pageKind } from './page-headers.ts';

const base = { watchFrameAncestors: '*' };

test('page paths map to their kind', () => {
  assert.equal(pageKind('/'), 'home');
  assert.equal(pageKind('/watch/a-show'), 'watch');
  assert.equal(pageKind('/console/events/x'), 'console');
  assert.equal(pageKind('/api/v1/events'), undefined);
  assert.equal(pageKind('/assets/watch.js'), undefined);
});

test('the configured ad creative origin is allowed for images and media only', () => {
  const csp = contentSecurityPolicy('watch', { ...base, adCreativeUrl: 'http://ads.example:8000/a.mp4' }, 'tv.example');
  assert.match(csp, /img-src [^;]*http:\/\/ads\.example:8000/);
  assert.match(csp, /media-src [^;]*http:\/\/ads\.example:8000/);
  assert.doesNotMatch(csp, /(script|connect)-src [^;]*ads\.example/);
});

test('the WebSocket host comes from the public URL, else a well-formed Host header', () => {
  assert.match(
    contentSecurityPolicy('home', base, 'tv.example:8080'),
    /connect-src 'self' ws:\/\/tv\.example:8080 wss:\/\/tv\.example:8080;/,
  );
  assert.match(
    contentSecurityPolicy('home', { ...base, publicUrl: 'https://live.example' }, 'internal:8080'),
    /connect-src 'self' ws:\/\/live\.example wss:\/\/live\.example;/,
  );
  assert.match(contentSecurityPolicy('home', base, 'evil; script-src *'), /connect-src 'self';/);
});

test('framing: console never, watch page as configured', () => {
  assert.equal(pageHeaders('console', base)['x-frame-options'], 'DENY');
  assert.match(pageHeaders('console', base)['content-security-policy'] ?? '', /frame-ancestors 'none'$/);
  assert.match(pageHeaders('watch', base)['content-security-policy'] ?? '', /frame-ancestors \*$/);
  assert.equal(pageHeaders('watch', base)['x-frame-options'], undefined);
  assert.equal(pageHeaders('watch', { watchFrameAncestors: "'none'" })['x-frame-options'], 'DENY');
});
