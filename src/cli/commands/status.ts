import type { Command } from 'commander';
import type { DatabaseStatus, StatusReport } from '../../status.js';
import { commandLogger, loadCommandConfig, optionsOf, printJson, withService } from '../context.js';
import { renderWindow } from './restore-to-time.js';
import { formatBytes, formatSeconds, padColumns, printable, table } from '../format.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('databases, health, current primary, auto-failover state, last backup')
    .option('--json', 'print the status as JSON')
    .action(async (_options, command: Command) => {
      const config = loadCommandConfig(command);
      const report = await withService(config, commandLogger(config), async (service) => {
        await Promise.all([service.test(), service.refreshCluster()]);
        // The window of a point-in-time restore, per database, while archiving is on.
        const windows = config.backup.archive.enabled ? await service.restoreWindows() : [];
        return { report: service.status(), windows };
      });
      if (optionsOf(command).json) printJson(report.windows.length > 0 ? { ...report.report, restore_windows: report.windows } : report.report);
      else process.stdout.write(renderStatus(report.report) + (report.windows.length > 0 ? `\nPoint-in-time restore (restore --to-time):\n${report.windows.map(renderWindow).join('')}` : ''));
    });
}

export function renderStatus(report: StatusReport): string {
  const lines = [
    `Disaster recovery: ${report.enabled ? 'enabled' : 'DISABLED (disaster_recovery.enabled is false)'}`,
    `Config:            ${printable(report.config)}`,
    `State store:       ${printable(report.state_store.path)}${report.state_store.problem ? `  (PROBLEM: ${printable(report.state_store.problem)})` : ''}`,
    `Current primary:   ${printable(report.primary ?? 'none')}`,
    `Auto-failover:     ${report.auto_failover.enabled ? 'enabled' : 'disabled'}${report.auto_failover.source === 'operator' ? ' (set by an operator)' : ''}`,
    ...(report.auto_failover.held ? [`Failover held:     ${printable(report.auto_failover.held)}`] : []),
    `Last backup:       ${renderLastBackup(report.last_backup)}`,
    ...renderOffsite(report.offsite),
    ...renderCluster(report.cluster),
    '',
    table(
      ['DATABASE', 'TYPE', 'PRIORITY', 'ENGINE', 'STATUS', 'RESPONSE', 'SIZE', 'CONNS', 'LAG', 'URL'],
      report.databases.map((d) => [
        printable(d.name) + (d.is_primary ? ' *' : '') + (d.demoted ? ' (demoted)' : ''),
        d.type,
        String(d.priority),
        d.engine,
        d.status === 'up' && d.read_only ? 'up, read-only' : d.status,
        d.status === 'disabled' ? '-' : formatSeconds(d.response_time_seconds),
        formatBytes(d.size_bytes),
        d.connections === null ? '-' : String(d.connections),
        formatSeconds(d.replication_lag_seconds),
        printable(d.url),
      ]),
    ),
  ];
  const demoted = report.databases.filter((d) => d.demoted_note);
  if (demoted.length > 0) lines.push('', ...demoted.map((d) => `${d.name} (demoted): ${d.demoted_note}`));
  const warned = report.databases.filter((d) => d.replication_warning);
  if (warned.length > 0) lines.push('', ...warned.map((d) => `WARNING ${d.name}: ${d.replication_warning}`));
  const problems = report.databases.filter((d) => d.error);
  if (problems.length > 0) lines.push('', ...problems.map((d) => `${printable(d.name)}: ${printable(d.error ?? '')}`));
  return `${lines.join('\n')}\n`;
}

/** Who leads, the lease and each member's heartbeat and view (one line a member). */
function renderCluster(c: StatusReport['cluster']): string[] {
  const lease = c.lease ? `held by ${printable(c.lease.holder)} until ${c.lease.expires_at} (ttl ${c.lease.ttl_seconds} s)` : 'free';
  const lines = [
    `Leader:            ${printable(c.leader ?? 'none')}${c.member ? (c.is_leader ? '  (this sidecar)' : `  (this sidecar, ${printable(c.member)}, follows)`) : ''}`,
    `Lease:             ${lease}`,
  ];
  if (c.cut_off) lines.push(`CUT OFF:           ${printable(c.cut_off)}`);
  if (c.members.length > 0) {
    lines.push(`Members:           ${c.members.length}`);
    for (const m of c.members) {
      const dbs = (m.view as { databases?: Record<string, { status: string; response_time_seconds: number | null }> }).databases ?? {};
      const seen = Object.entries(dbs).map(([name, d]) => `${printable(name)} ${d.status}${d.response_time_seconds === null ? '' : ` ${formatSeconds(d.response_time_seconds)}`}`);
      lines.push(`  ${printable(m.name)}${(m.view as { leader?: boolean }).leader ? ' (leader)' : ''}  heartbeat ${m.last_heartbeat}  ${seen.join(', ')}`);
    }
  }
  return lines;
}

/** One line per destination: what arrived last, what is pending, the last error (credentials are never in it). */
function renderOffsite(offsite: StatusReport['offsite']): string[] {
  return offsite.map((o) => {
    const arrived = o.last_arrived ? `last arrived ${printable(o.last_arrived.key)} at ${o.last_arrived.at}` : 'nothing arrived yet';
    const pending = o.pending_files === 0 ? 'nothing pending' : `${o.pending_files} pending (next: ${o.pending.map(printable).join(', ')})`;
    const error = o.last_error ? `; LAST ERROR at ${o.last_error.at}: ${printable(o.last_error.message)}` : '';
    return `Offsite:           ${printable(o.destination)}  ${o.offsite_files} offsite, ${pending}; ${arrived}${error}`;
  });
}

function renderLastBackup(b: StatusReport['last_backup']): string {
  if (!b) return 'none';
  const verified = b.verified === null ? 'not verified yet' : b.verified ? 'verified' : 'VERIFY FAILED';
  return `${b.created_at}  ${printable(b.database)}  ${printable(b.path)}  ${formatBytes(b.size_bytes)}  (${verified})`;
}

export function renderProbeLine(d: DatabaseStatus, nameWidth: number): string {
  const mark = d.status === 'up' ? 'ok  ' : 'FAIL';
  const detail = d.status === 'up' ? `${formatSeconds(d.response_time_seconds)}  ${formatBytes(d.size_bytes)}` : printable(d.error ?? d.status);
  return `${mark}  ${padColumns(printable(d.name), nameWidth)}  ${d.engine.padEnd(10)}  ${detail}  (${printable(d.url)})`;
}
