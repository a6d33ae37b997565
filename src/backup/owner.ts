/** Who made a leftover (a temporary file, a scratch database), and whether it is still at work. */
import fs from 'node:fs';

const processStartMs = Date.now() - process.uptime() * 1000;

/**
 * Whether the process that made a temporary file is gone. A live process with
 * that id counts only if it started before the file was made: in a container
 * the sidecar is pid 1 again after every restart.
 */
export function ownerGone(pid: number, createdMs: number): boolean {
  if (pid === process.pid) return createdMs < processStartMs - 1000;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return true;
  }
  const started = processStartedMs(pid);
  return started !== undefined && started > createdMs + 1000;
}

/** When a process started (Linux /proc), or undefined when that cannot be read. */
function processStartedMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const boot = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1]);
    // USER_HZ is 100 on every Linux architecture Node runs on.
    return Number.isFinite(ticks) && Number.isFinite(boot) ? boot * 1000 + ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}
