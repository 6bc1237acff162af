// LocalCommandRunner: runs a script with a local shell, with a timeout (SIGTERM, then SIGKILL) and an output cap.
import { describe, expect, it } from 'vitest';
import { LocalCommandRunner } from '../../lambda/adapters/local-runner.ts';
import { ConfigError } from '../../lambda/core/errors.ts';

describe('LocalCommandRunner', () => {
  it('runs the script with /bin/sh and the given environment', async () => {
    const runner = new LocalCommandRunner({ env: { RJ_GREETING: 'hello there' } });
    // `cat` reads stdin: the script comes from a file, so nothing of it is eaten.
    const result = await runner.run('cat\necho "$RJ_GREETING"\necho oops >&2\nexit 3\n');
    expect(result).toEqual({ status: 'Failed', exitCode: 3, stdout: 'hello there\n', stderr: 'oops\n' });
  });

  it('reports success', async () => {
    expect(await new LocalCommandRunner({ shell: 'dash' }).run('echo ok')).toEqual({
      status: 'Success',
      exitCode: 0,
      stdout: 'ok\n',
      stderr: '',
    });
  });

  it('sends SIGTERM on timeout, so the script can clean up', async () => {
    const runner = new LocalCommandRunner({ shell: 'dash', killGraceSeconds: 30 });
    const result = await runner.run(
      "sleep 60 </dev/null >/dev/null 2>&1 &\ntrap 'kill $!; echo cleaned up; exit 143' TERM\necho started\nwait\n",
      { timeoutSeconds: 1 },
    );
    expect(result).toEqual({
      status: 'TimedOut',
      exitCode: 143,
      stdout: 'started\ncleaned up\n',
      stderr: '',
    });
  });

  it('sends SIGKILL when the script ignores SIGTERM past the grace period', async () => {
    const runner = new LocalCommandRunner({ shell: 'dash', killGraceSeconds: 1 });
    const result = await runner.run("trap '' TERM\necho waiting\nwhile :; do sleep 1; done\n", {
      timeoutSeconds: 1,
    });
    expect(result).toMatchObject({ status: 'TimedOut', exitCode: null, stdout: 'waiting\n' });
  });

  it('cuts output at the limit and says so', async () => {
    const result = await new LocalCommandRunner({ maxOutputBytes: 5 }).run('echo 0123456789');
    expect(result.stdout).toBe('01234\n[local-runner: 6 more bytes dropped]\n');
  });

  it('fails with a ConfigError naming a shell that does not exist', async () => {
    await expect(new LocalCommandRunner({ shell: '/nonexistent/sh' }).run('true')).rejects.toThrow(
      /cannot run the shell \/nonexistent\/sh/,
    );
    await expect(new LocalCommandRunner().run('true', { timeoutSeconds: 0 })).rejects.toThrow(ConfigError);
  });
});
