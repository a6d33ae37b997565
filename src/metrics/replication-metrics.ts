import { Counter, type Registry } from 'prom-client';
import type { ReplicationTotals } from '../engines/sqlite/replication.js';

/** `dr_replication_generations_total{database}`: whole copies that started a SQLite secondary's replication anew. */
export function registerReplicationMetrics(registry: Registry, sqliteDatabases: string[], totals: ReplicationTotals): void {
  new Counter({
    name: 'dr_replication_generations_total',
    help: 'Generations of WAL shipping started by this sidecar per SQLite secondary: each began with a whole copy (start, lost continuity, a secondary that missed too much).',
    labelNames: ['database'],
    registers: [registry],
    collect() {
      this.reset();
      for (const name of sqliteDatabases) this.inc({ database: name }, totals.generations.get(name) ?? 0);
    },
  });
}
