// LocalCommandRunner: runs a script with a local shell, its parameters as SSM_<name> variables, with a timeout
// (SIGTERM, then SIGKILL) and an output cap.
import { describe, expect, it } from 'vitest';
import { LocalCommandRunner } from '../../lambda/adapters/local-runner.ts';
import { ConfigError } from '../../lambda/core/errors.ts';

describe('LocalCommandRunner', () => {
  it('runs the script with /bin/sh and the given environment', async () => {
    const runner = new LocalCommandRunner({
      env: { RJ_GREETING: 'hello there', SSM_inherited: 'must not reach the script' },
      // `cat` reads stdin: the script comes from a file, so nothing of it is eaten.
      script: 'cat\necho "$RJ_GREETING" "$SSM_name" "${SSM_inherited-unset}"\necho oops >&2\nexit 3\n',
    });
    const result = await runner.run({ name: 'a value' });
    expect(result).toEqual({
      status: 'Failed',
      exitCode: 3,
      stdout: 'hello there a value unset\n',
      stderr: 'oops\n',
    });
  });

  it('reports success', async () => {
    expect(await new LocalCommandRunner({ shell: 'dash', script: 'echo ok' }).run({})).toEqual({
      status: 'Success',
      exitCode: 0,
      stdout: 'ok\n',
      stderr: '',
    });
  });

  it('sends SIGTERM on timeout, so the script can clean up', async () => {
    const runner = new LocalCommandRunner({
      shell: 'dash',
      killGraceSeconds: 30,
      script:
        "sleep 60 </dev/null >/dev/null 2>&1 &\ntrap 'kill $!; echo cleaned up; exit 143' TERM\necho started\nwait\n",
    });
    const result = await runner.run({}, { timeoutSeconds: 1 });
    expect(result).toEqual({
      status: 'TimedOut',
      exitCode: 143,
      stdout: 'started\ncleaned up\n',
      stderr: '',
    });
  });

  it('sends SIGKILL when the script ignores SIGTERM past the grace period', async () => {
    const runner = new LocalCommandRunner({
      shell: 'dash',
      killGraceSeconds: 1,
      script: "trap '' TERM\necho waiting\nwhile :; do sleep 1; done\n",
    });
    const result = await runner.run({}, { timeoutSeconds: 1 });
    expect(result).toMatchObject({ status: 'TimedOut', exitCode: null, stdout: 'waiting\n' });
  });

  it('cuts output at the limit and says so', async () => {
    const result = await new LocalCommandRunner({ maxOutputBytes: 5, script: 'echo 0123456789' }).run({});
    expect(result.stdout).toBe('01234\n[local-runner: 6 more bytes dropped]\n');
  });

  it('fails with a ConfigError naming a shell that does not exist', async () => {
    await expect(
      new LocalCommandRunner({ shell: '/nonexistent/sh', script: 'true' }).run({}),
    ).rejects.toThrow(/cannot run the shell \/nonexistent\/sh/);
    await expect(new LocalCommandRunner({ script: 'true' }).run({}, { timeoutSeconds: 0 })).rejects.toThrow(
      ConfigError,
    );
  });
});
