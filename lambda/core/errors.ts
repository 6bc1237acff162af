// Typed errors. Each carries a message a platform engineer can act on, and the original cause.

export class JanitorError extends Error {
  public override readonly name: string = 'JanitorError';
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The policy file is invalid: the message names the path in the file and the fix. */
export class PolicyError extends JanitorError {
  public override readonly name: string = 'PolicyError';
}

/** Bad input from a user (flags, environment, payload). */
export class ConfigError extends JanitorError {
  public override readonly name: string = 'ConfigError';
}

/** The registry answered something we cannot work with, or could not be reached. */
export class RegistryError extends JanitorError {
  public override readonly name: string = 'RegistryError';
  public constructor(
    message: string,
    public readonly details: { status?: number; code?: string; url?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Credentials missing or insufficient. */
export class AuthError extends RegistryError {
  public override readonly name: string = 'AuthError';
}

/** A safety rule refused to go on (incomplete plan, delete guard, deletes disabled). */
export class SafetyError extends JanitorError {
  public override readonly name: string = 'SafetyError';
}

/** Garbage collection on the host failed. */
export class GcError extends JanitorError {
  public override readonly name: string = 'GcError';
}

/** The untagged history could not be listed (whole): that run deletes no untagged manifest. */
export class HistoryError extends JanitorError {
  public override readonly name: string = 'HistoryError';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
