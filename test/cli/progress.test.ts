// The progress line: on a terminal the count, the rate and an ETA, redrawn in place and always ended by a
// newline (finishProgress is what an interrupt calls); on anything else, nothing.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { finishProgress, formatDuration, progress, type CliIo } from '../../lambda/cli/io.ts';

function terminal(isTTY: boolean): { io: CliIo; text: () => string } {
  const stderr = Object.assign(new PassThrough(), { isTTY });
  let text = '';
  stderr.on('data', (d: Buffer) => (text += d.toString()));
  const io: CliIo = { stdout: new PassThrough(), stderr, stdin: new PassThrough(), env: {} };
  return { io, text: () => text };
}

describe('the progress line', () => {
  it('shows count, rate and ETA, redraws at most five times a second, and ends with one newline', () => {
    const { io, text } = terminal(true);
    let now = 1_000;
    const line = progress(io, 'scanning', 'repositories', () => now);
    now += 10_000;
    line.update(50, 200, '1,000 tags');
    expect(text()).toBe('\r\x1b[Kscanning 50/200 repositories, 1,000 tags, 5.0 repositories/s, ETA 0:30');
    now += 100;
    line.update(51, 200, '1,020 tags');
    expect(text()).not.toContain('51/200');
    now += 20_000;
    line.update(200, 200, '4,000 tags');
    line.finish();
    line.finish();
    expect(
      text().endsWith(
        '\r\x1b[Kscanning 200/200 repositories, 4,000 tags, 6.6 repositories/s, done in 0:30\n',
      ),
    ).toBe(true);
    expect(text().split('\n')).toHaveLength(2);
  });

  it('an interrupted run ends the line too: finishProgress ends whichever line is drawn', () => {
    const { io, text } = terminal(true);
    const line = progress(io, 'deleting', 'repositories');
    line.update(3, 10, '40 deleted');
    finishProgress(io);
    expect(text()).toMatch(/deleting 3\/10 repositories, 40 deleted, .*\n$/);
    line.update(4, 10);
    finishProgress(io);
    expect(text().match(/\n/g)).toHaveLength(1);
  });

  it('writes nothing when stderr is not a terminal', () => {
    const { io, text } = terminal(false);
    const line = progress(io, 'scanning', 'repositories');
    line.update(1, 2);
    line.update(2, 2);
    line.finish();
    finishProgress(io);
    expect(text()).toBe('');
  });

  it('formats durations', () => {
    expect([formatDuration(0), formatDuration(75), formatDuration(3725)]).toEqual([
      '0:00',
      '1:15',
      '1:02:05',
    ]);
  });
});
