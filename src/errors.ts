/**
 * depad's one error type. Every failure a user can see is a `DepadError` with a stable string
 * `code`; the CLI maps codes to exit codes and the API (later) to HTTP statuses, both from the
 * table below, in this one place.
 */

/** Stable error codes, with the exit code the CLI uses and the HTTP status the API uses. */
export const ERROR_CODES = {
  DEPAD_INTERNAL: { exit: 1, status: 500 },
  DEPAD_USAGE: { exit: 2, status: 400 },
  DEPAD_NAME_INVALID: { exit: 2, status: 400 },
  DEPAD_BODY_TOO_LARGE: { exit: 2, status: 413 },
  DEPAD_CONFIG_UNREADABLE: { exit: 3, status: 400 },
  DEPAD_CONFIG_SYNTAX: { exit: 3, status: 400 },
  DEPAD_CONFIG_INVALID: { exit: 3, status: 422 },
  DEPAD_NOT_FOUND: { exit: 4, status: 404 },
  DEPAD_AMBIGUOUS: { exit: 4, status: 409 },
  DEPAD_SERVICE_NOT_FOUND: { exit: 4, status: 404 },
  DEPAD_NAME_TAKEN: { exit: 5, status: 409 },
  DEPAD_ENGINE_CONFLICT: { exit: 5, status: 409 },
  DEPAD_IMAGE_MISSING: { exit: 6, status: 422 },
  DEPAD_IMAGE_BUILD_FAILED: { exit: 6, status: 422 },
  DEPAD_ENGINE_UNAVAILABLE: { exit: 7, status: 503 },
  DEPAD_ENGINE_ERROR: { exit: 7, status: 502 },
  DEPAD_PORT_EXHAUSTED: { exit: 8, status: 507 },
  DEPAD_PORT_IN_USE: { exit: 8, status: 409 },
  DEPAD_SUBNET_EXHAUSTED: { exit: 8, status: 507 },
  DEPAD_STATE_LOCKED: { exit: 9, status: 423 },
  DEPAD_STATE_CORRUPT: { exit: 9, status: 500 },
  DEPAD_SERVICE_FAILED: { exit: 10, status: 422 },
  DEPAD_TIMEOUT: { exit: 10, status: 504 },
  DEPAD_WORKFLOW_FAILED: { exit: 10, status: 422 },
  DEPAD_TLS_INVALID: { exit: 11, status: 500 },
  DEPAD_TLS_PIN_MISMATCH: { exit: 11, status: 502 },
  DEPAD_AGENT_UNAVAILABLE: { exit: 12, status: 503 },
  DEPAD_AGENT_RESTART_FAILED: { exit: 15, status: 500 },
  DEPAD_NOT_RUNNING: { exit: 16, status: 409 },
  /** The update committed a new revision, but `failure_action: pause` stopped a service's roll part-way. */
  DEPAD_UPDATE_PAUSED: { exit: 17, status: 409 },
  /** A cluster host that runs the deployment (or was asked for) does not answer its heartbeats or calls. */
  DEPAD_HOST_DOWN: { exit: 19, status: 503 },
  /** A cluster manager found no host that can take the deployment (the message names each host's reason). */
  DEPAD_NO_HOST: { exit: 18, status: 507 },
  DEPAD_UNAUTHENTICATED: { exit: 13, status: 401 },
  DEPAD_FORBIDDEN: { exit: 13, status: 403 },
  /** Not a failure of the command: `depad doctor` found disagreements (the API answers them with 200). */
  DEPAD_DOCTOR_FINDINGS: { exit: 14, status: 409 },
  DEPAD_INTERRUPTED: { exit: 130, status: 499 },
} as const satisfies Record<string, { exit: number; status: number }>;

/**
 * The CLI's exit code when its stdout was closed by the reader (`depad ls | head -1`): what a
 * process killed by SIGPIPE reports in a shell (128 + 13). Not an error: nothing is printed.
 */
export const EXIT_OUTPUT_CLOSED = 141;

/** One of depad's stable error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options of a `DepadError`: a hint tells the user what to do next; `cause` keeps the origin. */
export interface DepadErrorOptions {
  /** What the user can do about it, one sentence. */
  hint?: string;
  /** The underlying error. Never shown verbatim if it may hold secrets. */
  cause?: unknown;
  /** Extra machine-readable facts for `--json` output (no secrets). */
  details?: Record<string, unknown>;
}

/** A failure with a stable `code`, a message for humans and an optional hint. */
export class DepadError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: DepadErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DepadError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** The CLI's exit code for this error. */
  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  /** The API's HTTP status for this error. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** A JSON-safe view for `--json` output and API bodies. */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, ...this.details };
  }
}

/** Where in a config file something is: 1-based line and column. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** One problem found in a config file, located at a key path. */
export interface ConfigIssue extends SourcePosition {
  /** The key path, e.g. `services.web.ports[0]`. */
  path: string;
  message: string;
}

/** A config file with one or more problems; carries every issue found, each with its location. */
export class ConfigError extends DepadError {
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[], hint?: string) {
    const lines = issues.map((i) => `  ${formatIssue(i)}`);
    const head = issues.length === 1 ? `${file}: 1 problem` : `${file}: ${issues.length} problems`;
    super('DEPAD_CONFIG_INVALID', `${head}\n${lines.join('\n')}`, {
      hint: hint ?? 'fix the file and run the command again; nothing was changed',
      details: { issues },
    });
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** `file:line:column path: message`, the form every config problem is reported in. */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}:${issue.column} ${issue.path}: ${issue.message}`;
}

/** True when `error` is a DepadError with the given code. */
export function isDepadError(error: unknown, code?: ErrorCode): error is DepadError {
  return error instanceof DepadError && (code === undefined || error.code === code);
}
