import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCheckBatchResponse, encodeCheckResponse, type CheckBatchResponseMsg, type CheckResponseMsg } from '../../src/server/encode.js';
import { loadAuthorizerProto } from '../../src/server/proto.js';

const method = loadAuthorizerProto().authorizer['CheckBatch']!;
const check = loadAuthorizerProto().authorizer['Check']!;

const answer = fc.record({
  decision: fc.constantFrom('ALLOW' as const, 'DENY' as const),
  reason: fc.constantFrom('RULE_PERMIT', 'RULE_FORBID', 'NO_MATCHING_RULE', 'TOKEN_EXPIRED', ''),
  rules: fc.array(fc.constantFrom('document.dept_editors', 'document.keep_secrets', 'documents.policy:34'), { maxLength: 3 }),
  cached: fc.boolean(),
});
const action = fc.constantFrom('read', 'update', 'delete', '', 'ünïcödé');

/** A response whose answers are drawn from a small pool of objects, shared as the engine shares them (and some equal but distinct). */
const response: fc.Arbitrary<CheckBatchResponseMsg> = fc
  .record(
    {
      pool: fc.array(answer, { minLength: 1, maxLength: 4 }),
      items: fc.array(fc.array(fc.tuple(action, fc.nat()), { maxLength: 5 }), { maxLength: 20 }),
      policy_revision: fc.constantFrom('89ebbf499b0c046d', ''),
      request_id: fc.string({ maxLength: 20 }),
      token_reason: fc.constantFrom('TOKEN_EXPIRED', ''),
      message: fc.string({ maxLength: 30 }),
    },
    { requiredKeys: ['pool', 'items', 'policy_revision', 'request_id'] },
  )
  .map(({ pool, items, ...rest }) => ({
    ...rest,
    results: items.map((pairs) => ({ actions: pairs.map(([a]) => a), answers: pairs.map(([, i]) => pool[i % pool.length]!) })),
  }));

/** The same response in the generic serializer's shape (one ActionDecision object per answer). */
function generic(msg: CheckBatchResponseMsg): object {
  return {
    ...msg,
    results: msg.results.map((r) => ({ decisions: r.answers.map((d, i) => ({ action: r.actions[i], decision: d.decision, reason: d.reason, rules: d.rules, cached: d.cached })) })),
  };
}

describe('the CheckBatch response encoder', () => {
  it('encodes what proto-loader encodes: both decode to the same message', () => {
    fc.assert(
      fc.property(response, (msg) => {
        const ours = method.responseDeserialize(encodeCheckBatchResponse(msg));
        const theirs = method.responseDeserialize(method.responseSerialize(generic(msg)));
        expect(ours).toEqual(theirs);
      }),
      { numRuns: 300 },
    );
  });

  it('encodes each distinct (answer, action) once but writes every decision, in order, each with its own action', () => {
    const allow = { decision: 'ALLOW' as const, reason: 'RULE_PERMIT', rules: ['document.admins'], cached: false };
    const deny = { decision: 'DENY' as const, reason: 'NO_MATCHING_RULE', rules: [], cached: false };
    // One answer object under two actions: the action is not part of the answer.
    const msg: CheckBatchResponseMsg = { results: Array.from({ length: 1000 }, () => ({ actions: ['read', 'update', 'delete'], answers: [allow, allow, deny] })), policy_revision: 'r', request_id: 'q' };
    const decoded = method.responseDeserialize(encodeCheckBatchResponse(msg)) as { results: { decisions: { action: string; decision: string }[] }[] };
    expect(decoded.results).toHaveLength(1000);
    expect(decoded.results[999]!.decisions.map((x) => [x.action, x.decision])).toEqual([
      ['read', 'ALLOW'],
      ['update', 'ALLOW'],
      ['delete', 'DENY'],
    ]);
  });

  it('lengths of every varint size: a result of thousands of decisions (3-byte length), long rule lists (2-byte)', () => {
    const long = { decision: 'DENY' as const, reason: 'RULE_FORBID', rules: Array.from({ length: 10 }, (_, i) => `document.rule_with_a_long_name_${i}`), cached: true };
    const short = { decision: 'ALLOW' as const, reason: 'RULE_PERMIT', rules: ['a'], cached: false };
    const msg: CheckBatchResponseMsg = {
      results: [
        { actions: Array.from({ length: 3000 }, (_, i) => `a${i % 7}`), answers: Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? long : short)) },
        { actions: [], answers: [] },
        { actions: ['x'], answers: [long] },
      ],
      policy_revision: 'r'.repeat(200),
      request_id: 'q',
      token_reason: 'TOKEN_EXPIRED',
      message: 'm'.repeat(300),
    };
    expect(method.responseDeserialize(encodeCheckBatchResponse(msg))).toEqual(method.responseDeserialize(method.responseSerialize(generic(msg))));
  });
});

const checkResponse: fc.Arbitrary<CheckResponseMsg> = fc.record(
  {
    decision: fc.constantFrom('ALLOW' as const, 'DENY' as const),
    reason: fc.constantFrom('RULE_PERMIT', 'RULE_FORBID', 'NO_MATCHING_RULE', 'TOKEN_EXPIRED', ''),
    rules: fc.array(fc.constantFrom('document.dept_editors', 'document.keep_secrets', 'documents.policy:34', 'ü'), { maxLength: 3 }),
    policy_revision: fc.constantFrom('89ebbf499b0c046d', '', 'r2'),
    message: fc.string({ maxLength: 30 }),
    trace: fc.constant({ decided_by: 'permit', evaluated: [{ rule: 'a', effect: 'permit', applied: true, location: 'p:1:1' }], matched: ['a'], rules_for_action: 1 }),
    request_id: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 200 })),
    cached: fc.boolean(),
  },
  { requiredKeys: ['decision', 'reason', 'rules', 'policy_revision', 'request_id', 'cached'] },
);

describe('the Check response encoder', () => {
  const generic = check.responseSerialize as (m: CheckResponseMsg) => Buffer;

  it('encodes what proto-loader encodes (memoised answers included: each message is encoded twice)', () => {
    fc.assert(
      fc.property(checkResponse, (msg) => {
        const theirs = check.responseDeserialize(generic(msg));
        expect(check.responseDeserialize(encodeCheckResponse(msg, generic))).toEqual(theirs);
        expect(check.responseDeserialize(encodeCheckResponse({ ...msg }, generic))).toEqual(theirs);
      }),
      { numRuns: 400 },
    );
  });

  it('answers that differ only in the request id, or only in `cached`, each get their own', () => {
    const base: CheckResponseMsg = { decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['d.r'], policy_revision: 'rev', request_id: 'a', cached: false };
    const decode = (m: CheckResponseMsg): unknown => check.responseDeserialize(encodeCheckResponse(m, generic));
    expect(decode(base)).toMatchObject({ request_id: 'a', cached: false });
    expect(decode({ ...base, request_id: 'b', cached: true })).toMatchObject({ request_id: 'b', cached: true });
    expect(decode({ ...base, rules: ['d.r', ''] })).toMatchObject({ rules: ['d.r', ''] });
    expect(decode({ ...base, rules: ['d.r\0'] })).toMatchObject({ rules: ['d.r\0'] });
  });
});
