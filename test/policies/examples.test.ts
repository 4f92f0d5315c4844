/**
 * The shipped example policies, decided through the engine as the CLI does.
 * Every rule in policies/ must decide at least one case here.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attributes } from '../../src/compile/index.js';
import { Engine } from '../../src/engine/engine.js';

const POLICIES = join(import.meta.dirname, '..', '..', 'policies');
const MONDAY_10 = Date.parse('2026-11-23T10:00:00Z');

let engine: Engine;
const decided = new Set<string>();

beforeAll(async () => {
  engine = await Engine.fromDirectory(POLICIES);
});

interface Case {
  name: string;
  subject: Attributes;
  action: string;
  type: string;
  attrs?: Attributes;
  context?: Attributes;
  now?: string;
  want: 'ALLOW' | 'DENY';
  rule?: string;
}

const alice = { sub: 'alice', roles: ['editor'], department: 'engineering' };
const eng = { owner: 'bob', department: 'engineering', classification: 'internal' };

const cases: Case[] = [
  // documents
  { name: 'anyone reads a public document', subject: { sub: 'zed' }, action: 'read', type: 'document', attrs: { classification: 'public' }, want: 'ALLOW', rule: 'document.public_read' },
  { name: 'an editor updates a document of her department', subject: alice, action: 'update', type: 'document', attrs: eng, want: 'ALLOW', rule: 'document.dept_editors' },
  { name: 'an editor cannot update another department', subject: alice, action: 'update', type: 'document', attrs: { ...eng, department: 'sales' }, want: 'DENY' },
  { name: 'an admin is an editor too', subject: { sub: 'ann', roles: ['admin'], department: 'sales' }, action: 'comment', type: 'document', attrs: { ...eng, department: 'sales' }, want: 'ALLOW', rule: 'document.dept_editors' },
  { name: 'the owner deletes', subject: { sub: 'bob' }, action: 'delete', type: 'document', attrs: eng, want: 'ALLOW', rule: 'document.owners' },
  { name: 'a collaborator comments', subject: { sub: 'carl' }, action: 'comment', type: 'document', attrs: { ...eng, collaborators: ['carl'] }, want: 'ALLOW', rule: 'document.collaborators' },
  { name: 'no collaborator on a locked document', subject: { sub: 'carl' }, action: 'comment', type: 'document', attrs: { ...eng, collaborators: ['carl'], locked: true }, want: 'DENY' },
  { name: 'no collaborator on a secret document', subject: { sub: 'carl' }, action: 'read', type: 'document', attrs: { ...eng, classification: 'secret', collaborators: ['carl'] }, want: 'DENY' },
  { name: 'an auditor reads classified documents', subject: { sub: 'aud', roles: ['auditor'] }, action: 'read', type: 'document', attrs: eng, want: 'ALLOW', rule: 'document.auditors' },
  { name: 'an auditor cannot read unclassified documents', subject: { sub: 'aud', roles: ['auditor'] }, action: 'read', type: 'document', attrs: { owner: 'bob' }, want: 'DENY' },
  { name: 'an admin shares', subject: { sub: 'ann', roles: ['admin'] }, action: 'share', type: 'document', attrs: eng, want: 'ALLOW', rule: 'document.admins' },
  { name: 'a suspended admin is denied', subject: { sub: 'ann', roles: ['admin'], suspended: true }, action: 'read', type: 'document', attrs: eng, want: 'DENY', rule: 'document.suspended' },
  { name: 'the owner cannot delete a secret document', subject: { sub: 'bob' }, action: 'delete', type: 'document', attrs: { ...eng, classification: 'secret' }, want: 'DENY', rule: 'document.keep_secrets' },
  { name: 'an admin deletes a secret document', subject: { sub: 'ann', roles: ['admin'] }, action: 'delete', type: 'document', attrs: { ...eng, classification: 'secret' }, want: 'ALLOW', rule: 'document.admins' },
  { name: 'no external share of untagged documents', subject: { sub: 'bob' }, action: 'share', type: 'document', attrs: { ...eng, audience: 'x@partner.example', tags: [] }, want: 'DENY', rule: 'document.external_share' },
  { name: 'external share of shareable documents', subject: { sub: 'bob' }, action: 'share', type: 'document', attrs: { ...eng, audience: 'x@partner.example', tags: ['shareable'] }, want: 'ALLOW', rule: 'document.owners' },
  { name: 'archived documents are read-only', subject: { sub: 'bob' }, action: 'update', type: 'document', attrs: { ...eng, archived: true }, want: 'DENY', rule: 'documents.policy:34' },
  { name: 'undeclared action', subject: { sub: 'ann', roles: ['admin'] }, action: 'print', type: 'document', attrs: eng, want: 'DENY' },
  // folders
  { name: 'a viewer lists a folder', subject: { sub: 'v', roles: ['viewer'] }, action: 'list', type: 'folder', attrs: { path: '/team/' }, want: 'ALLOW', rule: 'folder.folder_readers' },
  { name: 'an editor creates documents', subject: alice, action: 'create_document', type: 'folder', attrs: { path: '/team/' }, want: 'ALLOW', rule: 'folder.folder_writers' },
  { name: 'the owner deletes an empty folder', subject: { sub: 'bob' }, action: 'delete', type: 'folder', attrs: { owner: 'bob', document_count: 0 }, want: 'ALLOW', rule: 'folder.folder_owners' },
  { name: 'the owner cannot delete a full folder', subject: { sub: 'bob' }, action: 'delete', type: 'folder', attrs: { owner: 'bob', document_count: 3 }, want: 'DENY' },
  { name: 'drafts are private to their owner', subject: { sub: 'v', roles: ['viewer'] }, action: 'list', type: 'folder', attrs: { path: '/drafts/x', owner: 'bob' }, want: 'DENY', rule: 'folder.drafts_private' },
  // orders
  { name: 'a customer reads her order', subject: { sub: 'c1', scopes: ['orders:read'] }, action: 'read', type: 'order', attrs: { customer: 'c1' }, want: 'ALLOW', rule: 'order.read_own' },
  { name: 'a customer needs the scope', subject: { sub: 'c1', scopes: ['profile'] }, action: 'read', type: 'order', attrs: { customer: 'c1' }, want: 'DENY' },
  { name: 'support reads orders', subject: { sub: 's', roles: ['support'], scopes: ['orders:read'] }, action: 'read', type: 'order', attrs: { customer: 'c1' }, want: 'ALLOW', rule: 'order.read_staff' },
  { name: 'create within the limit', subject: { sub: 'c1', scopes: ['orders:write'] }, action: 'create', type: 'order', attrs: { amount: 10000 }, want: 'ALLOW', rule: 'order.create' },
  { name: 'create over the limit', subject: { sub: 'c1', scopes: ['orders:write'] }, action: 'create', type: 'order', attrs: { amount: 10001 }, want: 'DENY' },
  { name: 'finance refunds in office hours from the office', subject: { sub: 'f', department: 'finance' }, action: 'refund', type: 'order', attrs: { amount: 100 }, context: { ip: '10.2.3.4' }, want: 'ALLOW', rule: 'order.refund_staff' },
  { name: 'finance group refunds over IPv6 office network', subject: { sub: 'f', groups: ['finance-ops'] }, action: 'refund', type: 'order', attrs: { amount: 100 }, context: { ip: 'fd00::1' }, want: 'ALLOW', rule: 'order.refund_staff' },
  { name: 'no refunds after hours', subject: { sub: 'f', department: 'finance' }, action: 'refund', type: 'order', attrs: { amount: 100 }, context: { ip: '10.2.3.4' }, now: '2026-11-23T19:00:00Z', want: 'DENY' },
  { name: 'no refunds from outside', subject: { sub: 'f', department: 'finance' }, action: 'refund', type: 'order', attrs: { amount: 100 }, context: { ip: '203.0.113.9' }, want: 'DENY', rule: 'order.office_only' },
  { name: 'no refunds without a source address', subject: { sub: 'f', department: 'finance' }, action: 'refund', type: 'order', attrs: { amount: 100 }, want: 'DENY', rule: 'order.office_only' },
  { name: 'no refunds at weekends', subject: { sub: 'f', department: 'finance' }, action: 'refund', type: 'order', attrs: { amount: 100 }, context: { ip: '10.2.3.4' }, now: '2026-11-22T10:00:00Z', want: 'DENY', rule: 'order.weekend_freeze' },
  { name: 'finance exports with both scopes', subject: { sub: 'f', department: 'finance', scopes: ['orders:read', 'orders:export'] }, action: 'export', type: 'order', attrs: {}, context: { ip: '10.0.0.1' }, want: 'ALLOW', rule: 'order.export' },
  { name: 'frozen regions', subject: { sub: 'c1', scopes: ['orders:read'], frozen_regions: ['eu'] }, action: 'read', type: 'order', attrs: { customer: 'c1', region: 'eu' }, want: 'DENY', rule: 'order.frozen' },
  // reports
  { name: 'finance reads reports', subject: { sub: 'f', department: 'finance' }, action: 'read', type: 'report', attrs: {}, want: 'ALLOW', rule: 'report.finance_read' },
  { name: 'a small team reads its report', subject: { sub: 'u1' }, action: 'read', type: 'report', attrs: { readers: ['u1', 'u2'] }, want: 'ALLOW', rule: 'report.small_teams' },
  { name: 'a large team does not', subject: { sub: 'u1' }, action: 'read', type: 'report', attrs: { readers: ['u1', 'u2', 'u3', 'u4'] }, want: 'DENY' },
  { name: 'finance publishes quarterly reports', subject: { sub: 'f', department: 'finance' }, action: 'publish', type: 'report', attrs: { name: 'Q3 sales-report' }, want: 'ALLOW', rule: 'report.quarterly' },
  { name: 'embargoed reports stay unpublished', subject: { sub: 'f', department: 'finance' }, action: 'publish', type: 'report', attrs: { name: 'Q3 sales-report', labels: ['embargoed'] }, want: 'DENY', rule: 'report.no_embargo' },
  // the admin console (gateway routes)
  { name: 'an admin manages the console after a strong login', subject: { sub: 'ann', roles: ['admin'], claims: { amr: ['pwd', 'mfa'] } }, action: 'manage', type: 'admin_console', want: 'ALLOW', rule: 'admin_console.console_admins' },
  { name: 'an admin without mfa cannot manage it', subject: { sub: 'ann', roles: ['admin'], claims: { amr: ['pwd'] } }, action: 'manage', type: 'admin_console', want: 'DENY', rule: 'admin_console.console_mfa' },
  { name: 'an auditor views the console', subject: { sub: 'aud', roles: ['auditor'] }, action: 'view', type: 'admin_console', want: 'ALLOW', rule: 'admin_console.console_auditors' },
  { name: 'an editor does not', subject: alice, action: 'view', type: 'admin_console', want: 'DENY' },
  { name: 'unknown resource type', subject: { sub: 'ann', roles: ['admin'] }, action: 'read', type: 'spaceship', want: 'DENY' },
];

describe('policies/', () => {
  it.each(cases)('$name', (c) => {
    const d = engine.check(
      { subject: c.subject, action: c.action, resource: { type: c.type, id: 'r1', attributes: c.attrs ?? {} }, context: c.context ?? {} },
      { now: c.now === undefined ? MONDAY_10 : Date.parse(c.now) },
    );
    expect(d.decision).toBe(c.want);
    if (c.rule !== undefined) expect(d.rules[0]).toBe(c.rule);
    for (const r of d.rules) decided.add(r);
  });

  afterAll(() => {
    // Every shipped rule decides some case above.
    const undecided = engine.tree.rules.map((r) => r.id).filter((id) => !decided.has(id));
    expect(undecided).toEqual([]);
  });
});
