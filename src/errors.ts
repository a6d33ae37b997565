/**
 * Errors a user can act on. The CLI prints `message` (never a stack) and exits
 * with `exitCode`; the HTTP server answers with `status`.
 */
export class DrError extends Error {
  readonly exitCode: number = 1;
  readonly status: number = 500;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The configuration file is missing, unreadable or invalid: one line per problem. */
export class ConfigError extends DrError {
  override readonly exitCode = 2;
  override readonly status = 500;
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${file}:\n` + problems.map((p) => `  - ${p}`).join('\n'));
  }
}

/** A request names something that does not exist or cannot be used (unknown database, bad argument). */
export class InputError extends DrError {
  override readonly exitCode = 2;
  override readonly status = 400;
}

/** The request is valid but the world refuses it right now (target down, lock held, ...). */
export class ConflictError extends DrError {
  override readonly status = 409;
}
