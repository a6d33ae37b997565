/**
 * Everything the bench creates (temp dirs, servers, child processes) registers
 * here. `runAll()` undoes it in reverse order, each step bounded in time;
 * `runSync()` is the last resort on process exit (error, watchdog, signal).
 */

interface Task {
  what: string;
  run: () => Promise<void> | void;
  sync: (() => void) | undefined;
}

export class Cleanup {
  private tasks: Task[] = [];

  /** Registers an undo step; returns a function that runs it now (once) and forgets it. */
  add(what: string, run: () => Promise<void> | void, sync?: () => void): () => Promise<void> {
    const task: Task = { what, run, sync };
    this.tasks.push(task);
    return async () => {
      if (!this.tasks.includes(task)) return;
      this.tasks = this.tasks.filter((t) => t !== task);
      await task.run();
    };
  }

  /** Runs every step, newest first; returns the failures as lines (never throws). */
  async runAll(timeoutMs = 20_000): Promise<string[]> {
    const failures: string[] = [];
    while (this.tasks.length > 0) {
      const task = this.tasks.pop()!;
      try {
        await withTimeout(Promise.resolve().then(task.run), timeoutMs, `cleanup: ${task.what}`);
      } catch (error) {
        failures.push(`${task.what}: ${(error as Error).message}`);
        try {
          task.sync?.();
        } catch { /* best effort */ }
      }
    }
    return failures;
  }

  /** Synchronous best effort, for the `exit` event. */
  runSync(): void {
    for (const task of this.tasks.reverse()) {
      try {
        task.sync?.();
      } catch { /* best effort */ }
    }
    this.tasks = [];
  }
}

/** Rejects when `promise` has not settled within `ms` (the work itself goes on). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
