import type { BackupRecord, CreateOptions } from '../backup/backups.js';
import type { DrillRequest } from '../drill/drills.js';
import type { FailoverRequest } from '../failover/procedure.js';
import type { Leadership } from '../state/leadership.js';
import type { FailoverRecord, IntentOutcome, SqliteIdentityRecord } from '../state/store.js';
import type { IntentKind } from './intent-admission.js';
import { successOutcome } from './intents.js';

/** What the leader can do for an intent: the same actions a command runs when it acts alone. */
export interface IntentActions {
  failover(request: FailoverRequest, leadership: Leadership): Promise<FailoverRecord>;
  autoFailover(enabled: boolean): Promise<void>;
  reinstate(name: string): Promise<void>;
  backup(options: CreateOptions): Promise<BackupRecord>;
  drill(request: DrillRequest, leadership: Leadership): Promise<FailoverRecord[]>;
  acceptFile(name: string): Promise<AcceptedFile>;
}

/** The identities of a SQLite file before and after an operator accepted it as its database's data. */
export interface AcceptedFile {
  before: SqliteIdentityRecord | undefined;
  after: SqliteIdentityRecord;
}

/** Carries out one admitted intent (its params checked by admitIntent) and says what it gave. */
export async function carryOutIntent(kind: IntentKind, p: Record<string, unknown>, leadership: Leadership, act: IntentActions): Promise<IntentOutcome> {
  const text = (key: string) => (typeof p[key] === 'string' ? (p[key] as string) : undefined);
  switch (kind) {
    case 'failover': {
      const r = await act.failover(
        {
          trigger: p.trigger === 'alert' ? 'alert' : 'manual',
          reason: text('reason') ?? 'manual failover',
          target: text('target'),
          expectedFrom: text('expectedFrom'),
          expectedEpoch: typeof p.expectedEpoch === 'number' ? p.expectedEpoch : undefined,
          ifPrimaryAnswers: p.ifPrimaryAnswers === 'call off' ? 'call off' : 'switch over',
        },
        leadership,
      );
      return successOutcome(`${r.from ?? '-'} -> ${r.to ?? '-'}: ${r.result}`, r);
    }
    case 'auto_failover':
      await act.autoFailover(p.enabled === true);
      return successOutcome(`automatic failover ${p.enabled === true ? 'enabled' : 'disabled'}`, null);
    case 'reinstate':
      await act.reinstate(String(p.name));
      return successOutcome(`${String(p.name)} reinstated`, null);
    case 'accept_file': {
      const accepted = await act.acceptFile(String(p.name));
      return successOutcome(`${String(p.name)}: ${accepted.after.file} accepted`, accepted);
    }
    case 'backup': {
      const database = text('database');
      const name = text('name');
      const made = await act.backup({
        ...(database ? { database } : {}),
        ...(name ? { name } : {}),
        trigger: (text('trigger') as CreateOptions['trigger']) ?? 'manual',
      });
      return successOutcome(`backup ${made.file} of ${made.database}`, made);
    }
    case 'drill': {
      const database = text('database');
      const records = await act.drill({ kinds: p.kinds as DrillRequest['kinds'], ...(database ? { database } : {}), requestedBy: 'manual' }, leadership);
      return successOutcome(records.map((r) => `${r.drill?.kind ?? 'drill'}: ${r.drill?.result ?? r.result}`).join('; '), records);
    }
  }
}
