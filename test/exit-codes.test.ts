/**
 * The README's "Exit codes" table against the CLI's one map of error codes to exit codes
 * (src/errors.ts): every code is in the table once, in the row of its exit code, and every row
 * is true. Rows without an error code are the exits that are not errors (0, and 141 for a
 * closed stdout).
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, EXIT_OUTPUT_CLOSED, type ErrorCode } from '../src/errors.ts';
import { ROOT } from './helpers/harness.ts';

interface Row {
  exit: number;
  codes: string[];
}

/** The rows of the table under `### Exit codes`. */
async function exitCodeTable(): Promise<Row[]> {
  const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^### Exit codes$/m)[1] ?? '';
  // The table: from its first line to the first line that is not a row.
  const lines = section.split('\n').slice(section.split('\n').findIndex((l) => l.startsWith('|')));
  const table = lines.slice(0, lines.findIndex((l) => !l.startsWith('|')));
  return table
    .filter((line) => /^\|\s*\d+\s*\|/.test(line))
    .map((line) => {
      const cells = line.replace(/\\\|/g, '¦').split('|').map((c) => c.trim());
      return { exit: Number(cells[1]), codes: [...(cells[2] ?? '').matchAll(/`(DEPAD_[A-Z_]+)`/g)].map((m) => m[1] as string) };
    });
}

test('the README exit-code table is the CLI map of error codes to exit codes', async (t) => {
  const rows = await exitCodeTable();
  t.true(rows.length > 10, 'the table was found');
  t.is(new Set(rows.map((r) => r.exit)).size, rows.length, 'one row per exit code');
  const listed = rows.flatMap((r) => r.codes);
  t.deepEqual([...listed].sort(), Object.keys(ERROR_CODES).sort(), 'every error code once, and no other');
  for (const row of rows) {
    for (const code of row.codes) t.is(ERROR_CODES[code as ErrorCode].exit as number, row.exit, `${code} is in the row of exit ${ERROR_CODES[code as ErrorCode].exit}`);
  }
  const exits = new Set<number>(Object.values(ERROR_CODES).map((c) => c.exit));
  for (const row of rows) {
    if (row.codes.length === 0) t.true(row.exit === 0 || row.exit === EXIT_OUTPUT_CLOSED, `exit ${row.exit} has no error code`);
    else t.true(exits.has(row.exit));
  }
  t.true(rows.some((r) => r.exit === EXIT_OUTPUT_CLOSED), 'the closed-stdout exit is documented');
});
