/**
 * The gate in front of the agent's operation queue, for an agent restart: `hold()` makes new
 * operations wait (those already queued run on), `open()` lets them through again (the restart
 * failed), `refuse()` fails them with a clear error (the state moved to the new agent, which will
 * take the next ones). Nothing is held by default.
 */
import { DepadError } from '../errors.ts';

/** A queue of operations (serialQueue). */
type Queue = <T>(fn: () => Promise<T>) => Promise<T>;

/** Holds, lets through or refuses the operations that reach the queue. */
export class OperationGate {
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;
  #refused: DepadError | undefined;

  /**
   * `queue` behind this gate. Its `holdWhenIdle()` waits until no operation runs or waits in the
   * queue, then holds the gate at that moment (tried again a few times when one slipped in; then
   * held anyway and the queue emptied): the hold lasts only while nothing runs.
   */
  guard(queue: Queue): Queue & { holdWhenIdle(): Promise<void> } {
    let passed = 0;
    const guarded = <T,>(fn: () => Promise<T>): Promise<T> =>
      this.pass(() => {
        passed++;
        return queue(fn).finally(() => passed--);
      });
    const idle = () => queue(async () => {});
    const holdWhenIdle = async () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        await idle();
        this.hold();
        if (passed === 0) return;
        this.open();
      }
      this.hold();
      await idle();
    };
    return Object.assign(guarded, { holdWhenIdle });
  }

  /** Runs `fn` now, after the hold ends, or not at all (rejects) once refused. */
  async pass<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#held !== undefined && this.#refused === undefined) await this.#held;
    if (this.#refused !== undefined) throw this.#refused;
    return fn();
  }

  /** New operations wait from now on. */
  hold(): void {
    this.#held ??= new Promise<void>((resolve) => (this.#release = resolve));
  }

  /** Waiting operations go on; new ones pass again. */
  open(): void {
    const release = this.#release;
    this.#held = undefined;
    this.#release = undefined;
    release?.();
  }

  /** Waiting and new operations fail with `error`. */
  refuse(error: DepadError): void {
    this.#refused = error;
    this.open();
  }
}
