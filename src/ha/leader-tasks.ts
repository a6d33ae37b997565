/** Work only the leader does (scheduled backups, ...): started when this sidecar leads, stopped when it no longer does. */
export interface LeaderTask {
  /** For logs and errors. */
  readonly name: string;
  start(): void;
  stop(): Promise<void> | void;
}

/** The leader-only tasks of one sidecar, following its leadership. */
export class LeaderTasks {
  constructor(private readonly tasks: LeaderTask[]) {}

  follow(leading: boolean): void {
    for (const task of this.tasks) {
      if (leading) task.start();
      else void task.stop();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.tasks.map((task) => task.stop()));
  }
}
