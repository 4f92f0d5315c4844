import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCheckBatchResponse, type CheckBatchResponseMsg } from '../../src/server/batch-encode.js';
import { loadAuthorizerProto } from '../../src/server/proto.js';

const method = loadAuthorizerProto().authorizer['CheckBatch']!;

const decision = fc.record({
  action: fc.constantFrom('read', 'update', 'delete', '', 'ünïcödé'),
  decision: fc.constantFrom('ALLOW' as const, 'DENY' as const),
  reason: fc.constantFrom('RULE_PERMIT', 'RULE_FORBID', 'NO_MATCHING_RULE', 'TOKEN_EXPIRED', ''),
  rules: fc.array(fc.constantFrom('document.dept_editors', 'document.keep_secrets', 'documents.policy:34'), { maxLength: 3 }),
  cached: fc.boolean(),
});

const response: fc.Arbitrary<CheckBatchResponseMsg> = fc.record(
  {
    results: fc.array(fc.record({ decisions: fc.array(decision, { maxLength: 5 }) }), { maxLength: 20 }),
    policy_revision: fc.constantFrom('89ebbf499b0c046d', ''),
    request_id: fc.string({ maxLength: 20 }),
    token_reason: fc.constantFrom('TOKEN_EXPIRED', ''),
    message: fc.string({ maxLength: 30 }),
  },
  { requiredKeys: ['results', 'policy_revision', 'request_id'] },
);

describe('the CheckBatch response encoder', () => {
  it('encodes what proto-loader encodes: both decode to the same message', () => {
    fc.assert(
      fc.property(response, (msg) => {
        const ours = method.responseDeserialize(encodeCheckBatchResponse(msg));
        const generic = method.responseDeserialize(method.responseSerialize(msg));
        expect(ours).toEqual(generic);
      }),
      { numRuns: 300 },
    );
  });

  it('encodes each distinct answer once but writes every decision, in order', () => {
    const d = { action: 'read', decision: 'ALLOW' as const, reason: 'RULE_PERMIT', rules: ['document.admins'], cached: false };
    const msg: CheckBatchResponseMsg = { results: Array.from({ length: 1000 }, () => ({ decisions: [d, { ...d, action: 'delete', decision: 'DENY', reason: 'NO_MATCHING_RULE', rules: [] }] })), policy_revision: 'r', request_id: 'q' };
    const decoded = method.responseDeserialize(encodeCheckBatchResponse(msg)) as { results: { decisions: { action: string; decision: string }[] }[] };
    expect(decoded.results).toHaveLength(1000);
    expect(decoded.results[999]!.decisions.map((x) => [x.action, x.decision])).toEqual([
      ['read', 'ALLOW'],
      ['delete', 'DENY'],
    ]);
  });
});
