import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzVerdict } from './api.ts';

const allPassed = 'Test cases:\n  7251 generated, 7251 passed\n';
const error = (type: string, message: string) =>
  JSON.stringify({ NonFatalError: { value: { type, message }, label: 'GET /api/v1/events', related_to_operation: true } });
const astBug = error('SystemError', 'AST constructor recursion depth mismatch (before=204, after=44)');

test('a clean exit passes', () => {
  assert.deepEqual(fuzzVerdict(0, allPassed, ''), { ok: true, toolErrors: [] });
});

test("the fuzzer's own interpreter failing, with every case passed, is noted and passes", () => {
  const v = fuzzVerdict(1, allPassed, `{"Initialized":{}}\n${astBug}\n`);
  assert.equal(v.ok, true);
  assert.match(v.toolErrors[0] ?? '', /GET \/api\/v1\/events: SystemError: AST constructor/);
});

test('a network error beside it still fails', () => {
  const v = fuzzVerdict(1, allPassed, `${astBug}\n${error('ConnectionError', 'Connection refused')}\n`);
  assert.equal(v.ok, false);
});

test('a failed case fails even when the only runtime error is the interpreter bug', () => {
  assert.equal(fuzzVerdict(1, 'Test cases:\n  7251 generated, 3 found 1 unique failures, 7248 passed\n', astBug).ok, false);
});

test('exit 1 with no runtime error at all fails (a failed check)', () => {
  assert.equal(fuzzVerdict(1, allPassed, '').ok, false);
});

test('a crash or a kill fails', () => {
  assert.equal(fuzzVerdict(null, allPassed, astBug).ok, false);
  assert.equal(fuzzVerdict(2, allPassed, astBug).ok, false);
});
