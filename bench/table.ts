/** The bench's report: rows grouped by section, rendered as one plain-text table. */

export type Verdict = 'ok' | 'MISS' | 'ERROR' | '';

export interface Row {
  section: string;
  measurement: string;
  value: string;
  target: string;
  verdict: Verdict;
}

export type Op = '<' | '<=' | '=' | '>=';

const holds: Record<Op, (value: number, limit: number) => boolean> = {
  '<': (v, l) => v < l,
  '<=': (v, l) => v <= l,
  '=': (v, l) => v === l,
  '>=': (v, l) => v >= l,
};

export function formatValue(value: number, unit: string, digits = 2): string {
  return `${value.toFixed(digits)}${unit ? ` ${unit}` : ''}`;
}

export class Report {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];
  private section = '';

  begin(section: string): void {
    this.section = section;
  }

  /** A figure without a target: shown for context. */
  info(measurement: string, value: number | string, unit = '', digits = 2): void {
    const shown = typeof value === 'number' ? formatValue(value, unit, digits) : value;
    this.rows.push({ section: this.section, measurement, value: shown, target: '', verdict: '' });
  }

  /** A figure checked against a target: `value op limit` holds → ok, else MISS. */
  check(measurement: string, value: number, unit: string, op: Op, limit: number, digits = 2, limitDigits = 0): boolean {
    const ok = Number.isFinite(value) && holds[op](value, limit);
    this.rows.push({
      section: this.section,
      measurement,
      value: formatValue(value, unit, digits),
      target: `${op} ${formatValue(limit, unit, limitDigits)}`,
      verdict: ok ? 'ok' : 'MISS',
    });
    return ok;
  }

  /** The section could not measure: an ERROR row, the reason in the notes (it is often long). */
  error(measurement: string, why: string): void {
    this.notes.push(`ERROR in ${this.section}: ${why.trim()}`);
    this.rows.push({ section: this.section, measurement, value: `see note ${this.notes.length}`, target: '', verdict: 'ERROR' });
  }

  note(text: string): void {
    this.notes.push(text);
  }

  count(verdict: Verdict): number {
    return this.rows.filter((r) => r.verdict === verdict).length;
  }
}

const HEADERS = ['measurement', 'value', 'target', 'verdict'] as const;

export function renderTable(report: Report): string {
  const cells = (r: Row): string[] => [r.measurement, r.value, r.target, r.verdict];
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...report.rows.map((r) => cells(r)[i]!.length)));
  const line = (parts: readonly string[]): string =>
    parts.map((p, i) => (i === 1 ? p.padStart(widths[i]!) : p.padEnd(widths[i]!))).join(' | ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  const out: string[] = [line(HEADERS), rule];
  let section: string | undefined;
  for (const row of report.rows) {
    if (row.section !== section) {
      if (section !== undefined) out.push(rule);
      out.push(`[${row.section}]`);
      section = row.section;
    }
    out.push(line(cells(row)));
  }
  out.push(rule);
  out.push(`${report.count('ok')} ok, ${report.count('MISS')} MISS, ${report.count('ERROR')} ERROR`);
  if (report.notes.length > 0) {
    out.push('', 'notes:');
    report.notes.forEach((note, i) => out.push(`  ${i + 1}. ${note}`));
  }
  return `${out.join('\n')}\n`;
}
