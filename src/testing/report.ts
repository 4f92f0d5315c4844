/**
 * Reports of a test run: text for people, JSON for tools, JUnit XML for CI
 * systems that render test results.
 */
import type { Trace } from '../eval/evaluate.js';
import type { RunResult } from './runner.js';

/**
 * The text report: failures with expected vs actual, deciding rules and the
 * trace; passing cases too with `verbose`; coverage; and the summary line
 * `N passed, M failed`.
 */
export function textReport(result: RunResult, options: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  for (const suite of result.suites) {
    const failed = suite.cases.filter((c) => !c.passed).length;
    lines.push(`${failed === 0 ? 'PASS' : 'FAIL'} ${suite.file} (${suite.name}): ${suite.cases.length - failed}/${suite.cases.length}`);
    let lastTest = '';
    for (const c of suite.cases) {
      if (c.passed && options.verbose !== true) continue;
      if (c.test !== lastTest) {
        lines.push(`  ${c.test}  (${c.location})`);
        lastTest = c.test;
      }
      if (c.passed) {
        lines.push(`    ✓ ${c.name} → ${c.actual.decision}${c.actual.rules.length > 0 ? ` by ${c.actual.rules.join(', ')}` : ''}`);
        continue;
      }
      lines.push(`    ✗ ${c.name}: ${c.failure ?? 'failed'}`);
      if (c.actual.message !== undefined) lines.push(`        token: ${c.actual.message}`);
      if (c.trace !== undefined) lines.push(...traceLines(c.trace, '        '));
    }
  }
  const cov = result.coverage;
  lines.push('');
  lines.push(`coverage: ${cov.decisive}/${cov.rules} rules decisive (${cov.percent}%)`);
  for (const f of cov.files) lines.push(`  ${f.file}: ${f.decisive}/${f.rules} (${f.percent}%)`);
  if (cov.uncovered.length > 0) {
    lines.push('  no case made these rules decisive:');
    for (const u of cov.uncovered) lines.push(`    ${u.location} ${u.id}`);
  }
  lines.push('');
  lines.push(`${result.passed} passed, ${result.failed} failed`);
  return `${lines.join('\n')}\n`;
}

function traceLines(t: Trace, indent: string): string[] {
  const out = [`${indent}decided by: ${t.decidedBy}; ${t.rulesForAction} rule${t.rulesForAction === 1 ? '' : 's'} for this action, ${t.evaluated.length} evaluated`];
  for (const r of t.evaluated) out.push(`${indent}  ${r.applied ? 'applied    ' : 'not applied'} ${r.effect.padEnd(6)} ${r.rule}  (${r.location})`);
  return out;
}

/** The JSON report: the whole result, as data. */
export function jsonReport(result: RunResult): string {
  return `${JSON.stringify(result, null, 2)}\n`;
}

/**
 * JUnit XML: one `<testsuite>` per suite, one `<testcase>` per decision,
 * `<failure>` with expected vs actual and the trace.
 */
export function junitReport(result: RunResult): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = result.passed + result.failed;
  out.push(`<testsuites name="arbiter" tests="${total}" failures="${result.failed}" errors="0">`);
  for (const suite of result.suites) {
    const failures = suite.cases.filter((c) => !c.passed).length;
    out.push(`  <testsuite name="${xml(suite.name)}" file="${xml(suite.file)}" tests="${suite.cases.length}" failures="${failures}" errors="0" skipped="0" time="${(suite.durationMs / 1000).toFixed(3)}">`);
    for (const c of suite.cases) {
      const open = `    <testcase classname="${xml(`${suite.name}.${c.test}`)}" name="${xml(c.name)}" file="${xml(suite.file)}"`;
      if (c.passed) {
        out.push(`${open}/>`);
        continue;
      }
      out.push(`${open}>`);
      const details = [c.failure ?? 'failed', `at ${c.location}`, ...(c.actual.message === undefined ? [] : [`token: ${c.actual.message}`]), ...(c.trace === undefined ? [] : traceLines(c.trace, ''))].join('\n');
      out.push(`      <failure message="${xml(c.failure ?? 'failed')}" type="DecisionMismatch">${xml(details)}</failure>`);
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}

/** XML text and attribute escaping; characters XML 1.0 cannot carry are dropped. */
function xml(s: string): string {
  return s
    .replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
