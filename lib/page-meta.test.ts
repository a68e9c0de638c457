import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, withWatchMeta } from './page-meta.ts';

const page = '<!doctype html>\n<html><head>\n    <title>onair</title>\n  </head><body></body></html>';
const meta = {
  title: 'Quiz "night" <live>',
  description: '',
  watchUrl: 'https://tv.example.org/watch/quiz',
  imageUrl: 'https://tv.example.org/live/ev-123456/thumbnail.jpg',
  imageWidth: 320,
};

test('withWatchMeta puts the title and absolute og:image in the head, escaped', () => {
  const html = withWatchMeta(page, meta);
  assert.ok(html.includes('<title>Quiz &quot;night&quot; &lt;live&gt; · onair</title>'));
  assert.ok(html.includes('<meta property="og:image" content="https://tv.example.org/live/ev-123456/thumbnail.jpg" />'));
  assert.ok(html.includes('<meta property="og:title" content="Quiz &quot;night&quot; &lt;live&gt;" />'));
  assert.ok(html.includes('<meta property="og:url" content="https://tv.example.org/watch/quiz" />'));
  assert.ok(html.includes('og:description" content="Quiz &quot;night&quot; &lt;live&gt;, live on onair"'), 'a default description');
  assert.equal(html.match(/<title>/g)?.length, 1);
  assert.ok(!html.includes('<live>'));
});

test('withWatchMeta leaves a page without a title alone; escapeHtml covers the five characters', () => {
  assert.equal(withWatchMeta('<html></html>', meta), '<html></html>');
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});
