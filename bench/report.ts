/**
 * How every benchmark script ends: its table on stdout, then the problems
 * that fail the run (exit code 1); a crash of the script itself is reported
 * on stderr under the script's name, and fails the run too.
 */

/** Writes the report's lines, then any problems under "FAILED:" (and sets exit code 1 when there are some). */
export function printReport(lines: readonly string[], problems: readonly string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
  if (problems.length > 0) {
    process.stdout.write(`\nFAILED:\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
    process.exitCode = 1;
  }
}

/** Runs a script's `main`; if it throws, says so on stderr as `name: …` and sets exit code 1. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    process.stderr.write(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
