// Turns an EventBridge cron expression typed by a user (`cron(0 3 * * ? *)`) into typed CronOptions, checking
// each field so a typo fails `cdk synth` with the field named instead of failing the deploy later.
import type { CronOptions } from 'aws-cdk-lib/aws-events';
import { ConfigError } from '../lambda/core/errors.ts';

const EXAMPLE = 'e.g. cron(0 3 * * ? *) for 03:00 UTC every day';

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
  /** Items only this field accepts besides numbers, ranges, steps and lists (L, W, #). */
  readonly special?: RegExp;
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31, special: /^(L|LW|([1-9]|[12]\d|3[01])W)$/ },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  {
    name: 'day-of-week',
    min: 1,
    max: 7,
    names: WEEKDAYS,
    special: /^(L|([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(L|#[1-5]))$/,
  },
  { name: 'year', min: 1970, max: 2199 },
];

/**
 * Parse `cron(minutes hours day-of-month month day-of-week year)` (EventBridge syntax, evaluated in UTC).
 * Exactly one of day-of-month and day-of-week must be `?`.
 * @param source names the setting in error messages (e.g. `schedule`).
 * @throws ConfigError naming the field that is wrong and showing a valid example.
 */
export function parseCronExpression(text: string, source = 'schedule'): CronOptions {
  const match = /^\s*cron\((.*)\)\s*$/s.exec(text);
  if (!match) {
    throw new ConfigError(
      `${source}: "${text}" is not a cron expression; write cron(...) with six fields, ${EXAMPLE}`,
    );
  }
  const fields = match[1]!.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new ConfigError(
      `${source}: "${text}" has ${fields.length} field(s); expected 6 (minutes hours day-of-month month ` +
        `day-of-week year), ${EXAMPLE}`,
    );
  }
  const [minute, hour, day, month, weekDay, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const problems = fields.flatMap((value, i) => checkField(value, FIELDS[i]!));
  if (day !== '?' && weekDay !== '?') {
    problems.push('day-of-month and day-of-week are both set; one of them must be "?"');
  } else if (day === '?' && weekDay === '?') {
    problems.push('day-of-month and day-of-week are both "?"; set one of them (use * for every day)');
  }
  if (problems.length > 0) {
    throw new ConfigError(`${source}: "${text}": ${problems.join('; ')}; ${EXAMPLE}`);
  }
  // CronOptions takes either day or weekDay and fills the other with "?" itself.
  return day === '?' ? { minute, hour, month, weekDay, year } : { minute, hour, day, month, year };
}

function checkField(value: string, spec: FieldSpec): string[] {
  const upper = value.toUpperCase();
  if (upper === '?') {
    return spec.name === 'day-of-month' || spec.name === 'day-of-week'
      ? []
      : [`${spec.name} "${value}": "?" is allowed only in day-of-month or day-of-week`];
  }
  const bad = upper.split(',').filter((item) => !validItem(item, spec));
  if (bad.length === 0) return [];
  const named = spec.names ? ` or ${spec.names[0]}-${spec.names[spec.names.length - 1]}` : '';
  return [
    `${spec.name} "${value}" is not valid (expected ${spec.min}-${spec.max}${named}, *, a range a-b or a step a/n)`,
  ];
}

function validItem(item: string, spec: FieldSpec): boolean {
  if (spec.special?.test(item)) return true;
  const step = /^(.+?)(?:\/(\d+))?$/.exec(item);
  if (!step) return false;
  const [, base, every] = step;
  if (every !== undefined && Number(every) < 1) return false;
  if (base === '*') return true;
  const range = base!.split('-');
  if (range.length > 2) return false;
  const values = range.map((part) => valueOf(part, spec));
  if (values.some((v) => v === undefined)) return false;
  return range.length === 1 || values[0]! <= values[1]!;
}

function valueOf(part: string, spec: FieldSpec): number | undefined {
  if (/^\d+$/.test(part)) {
    const n = Number(part);
    return n >= spec.min && n <= spec.max ? n : undefined;
  }
  const index = spec.names?.indexOf(part) ?? -1;
  return index < 0 ? undefined : index + spec.min;
}
