// The cron parser: valid expressions round-trip through the typed ScheduleExpression unchanged; each kind of
// mistake fails with a message naming the field.
import { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lambda/core/errors.ts';
import { parseCronExpression } from '../../lib/cron.ts';

describe('parseCronExpression', () => {
  it.each([
    'cron(0 3 * * ? *)',
    'cron(15 2 ? * MON-FRI *)',
    'cron(0/30 1-5 * * ? *)',
    'cron(0 3 1,15 * ? *)',
    'cron(0 4 ? * 1 *)',
    'cron(0 4 ? * 6#3 *)',
    'cron(0 4 ? * 6L *)',
    'cron(0 4 L * ? *)',
    'cron(0 4 15W * ? *)',
    'cron(0 3 * JAN-MAR ? 2030)',
    'cron(*/10 * * * ? *)',
  ])('%s round-trips into the typed schedule', (text) => {
    const options = parseCronExpression(text);
    expect(ScheduleExpression.cron(options).expressionString).toBe(text);
  });

  it('accepts surrounding spaces and lower-case names', () => {
    const options = parseCronExpression('  cron(0 3 ? * mon *) ');
    expect(options).toEqual({ minute: '0', hour: '3', month: '*', weekDay: 'mon', year: '*' });
  });

  it.each([
    { text: '0 3 * * ? *', why: /not a cron expression; write cron\(\.\.\.\)/ },
    { text: 'rate(1 day)', why: /not a cron expression/ },
    { text: 'cron(0 3 * * ?)', why: /has 5 field\(s\); expected 6/ },
    { text: 'cron(0 3 * * ? * *)', why: /has 7 field\(s\)/ },
    { text: 'cron(60 3 * * ? *)', why: /minutes "60" is not valid \(expected 0-59/ },
    { text: 'cron(0 24 * * ? *)', why: /hours "24" is not valid/ },
    { text: 'cron(0 3 0 * ? *)', why: /day-of-month "0" is not valid/ },
    { text: 'cron(0 3 * 13 ? *)', why: /month "13" is not valid \(expected 1-12 or JAN-DEC/ },
    { text: 'cron(0 3 ? * FUNDAY *)', why: /day-of-week "FUNDAY" is not valid/ },
    { text: 'cron(0 3 * * ? 1969)', why: /year "1969" is not valid/ },
    { text: 'cron(0 3 * * MON *)', why: /both set; one of them must be "\?"/ },
    { text: 'cron(0 3 ? * ? *)', why: /both "\?"; set one of them/ },
    { text: 'cron(? 3 * * ? *)', why: /minutes "\?": "\?" is allowed only in day-of-month or day-of-week/ },
    { text: 'cron(0 5-2 * * ? *)', why: /hours "5-2" is not valid/ },
    { text: 'cron(0/0 3 * * ? *)', why: /minutes "0\/0" is not valid/ },
    { text: 'cron(0 3 * * ? *) ; rm -rf /', why: /not a cron expression/ },
  ])('rejects $text', ({ text, why }) => {
    const attempt = () => parseCronExpression(text, 'schedule');
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(why);
    expect(attempt).toThrow(/^schedule: .*e\.g\. cron\(0 3 \* \* \? \*\)/s);
  });
});
