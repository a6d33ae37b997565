// What must run before the process ends (flushing traces), whichever command ends it.
const hooks: Array<() => Promise<void>> = [];

export function onShutdown(hook: () => Promise<void>): void {
  hooks.push(hook);
}

/** Runs every hook once, each bounded so a stuck exporter cannot hold the exit. */
export async function runShutdownHooks(timeoutMs = 5000): Promise<void> {
  const pending = hooks.splice(0);
  await Promise.allSettled(pending.map((hook) => Promise.race([hook(), new Promise<void>((r) => setTimeout(r, timeoutMs).unref())])));
}
