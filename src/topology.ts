import type { DatabaseConfig } from './config/load.js';
import { InputError } from './errors.js';

/**
 * The configured databases, by priority: the one place that answers "which
 * database is this name?" (as Patroni's `cluster.get_member(name)`), so that the
 * unknown-name answer is the same wherever a name comes in.
 */
export class Topology {
  constructor(private readonly databases: readonly DatabaseConfig[]) {}

  /** Every configured database, enabled or not, by priority. */
  all(): readonly DatabaseConfig[] {
    return this.databases;
  }

  /** The enabled databases, by priority: the ones probed, replicated, backed up and chosen. */
  enabled(): DatabaseConfig[] {
    return this.databases.filter((d) => d.enabled);
  }

  get(name: string | undefined): DatabaseConfig | undefined {
    return name === undefined ? undefined : this.databases.find((d) => d.name === name);
  }

  /** A configured database by name, or an input error naming the ones configured. */
  require(name: string): DatabaseConfig {
    const db = this.get(name);
    if (!db) throw new InputError(`unknown database "${name}" (configured: ${this.names().join(', ')})`);
    return db;
  }

  names(): string[] {
    return this.databases.map((d) => d.name);
  }

  /** The enabled database of type `primary` in the config (the primary before any switch). */
  configuredPrimary(): DatabaseConfig | undefined {
    return this.enabled().find((d) => d.type === 'primary');
  }
}
